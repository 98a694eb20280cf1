# Two entry points from a fresh clone: `make up` (main job) and `make test` (all tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= local
FROM ?= dev
TO ?= prod
ARTIFACT ?=
PORT ?= 8080
MODEL_ID ?=

.PHONY: venv wheels dlc-env test lint up down promote bench bench-cold-start serve

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

# The ONNX Runtime and orjson wheels the tests vendor into archives (this venv's Python, the 3.9
# of the compat test and the 3.10 of the DLC's model server), fetched from PyPI once into
# .build/wheels and checked by sha256; tests never fetch.
wheels: venv
	$(PY) -m components.runtime_wheels $$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') 3.9 3.10

# The DLC's serving stacks (Python 3.10 with torch 2.1.0, and the oldest image's Python 3.9 with
# torch 1.13.1; the toolkit and multi-model-server; Java from the system), built once per machine
# into ~/.cache/embedding-endpoint (about 7 GB); tests/dlc/ runs the container under both. EMBEDDING_ENDPOINT_SKIP_DLC=1 skips building it and its tests.
dlc-env: venv
	@if [ "$$EMBEDDING_ENDPOINT_SKIP_DLC" = 1 ]; then echo "EMBEDDING_ENDPOINT_SKIP_DLC=1: not building the DLC's stack"; else $(PY) -m scripts.dlc_env build py310 && $(PY) -m scripts.dlc_env build py39; fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: venv wheels dlc-env lint
	$(PY) -m pytest -q

# The CLI is checked first: without it nothing is installed or started.
up:
	@bash scripts/need_pulumi.sh
	@$(MAKE) --no-print-directory venv
	STACK=$(STACK) bash scripts/up.sh

down:
	bash scripts/down.sh

promote:
	@MAKE_TARGET=promote bash scripts/need_pulumi.sh
	@$(MAKE) --no-print-directory venv
	$(PY) -m scripts.promote --from $(FROM) --to $(TO)

# The peers of the inference benchmark go into .build/peers (the venv is left as it is); without
# an index the benchmark reports them missing and goes on.
bench: venv wheels dlc-env
	-$(PY) -m benchmarks.peers
	$(PY) -m benchmarks

# Cold start and worker memory under the DLC's own model server (benchmarks/results/cold_start.md).
bench-cold-start: venv wheels dlc-env
	$(PY) -m benchmarks cold_start

# DLC=1 serves the archive under the DLC's own model server instead (after `make dlc-env`).
serve: venv
	@test -n "$(ARTIFACT)" || { echo "usage: make serve ARTIFACT=s3://…/model.tar.gz|file.tar.gz|folder [PORT=8080] [MODEL_ID=org/name] [DLC=1]"; exit 2; }
	@if [ "$(DLC)" = 1 ]; then $(PY) -m scripts.dlc_server "$(ARTIFACT)" --port $(PORT) $(if $(MODEL_ID),--model-id "$(MODEL_ID)"); else $(PY) -m embedding_client serve "$(ARTIFACT)" --port $(PORT) $(if $(MODEL_ID),--model-id "$(MODEL_ID)"); fi
