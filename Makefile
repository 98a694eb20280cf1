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

.PHONY: venv wheels test lint up down promote bench serve

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

# The ONNX Runtime wheels the tests vendor into archives (this venv's Python and the 3.9 of the
# compat test), fetched from PyPI once into .build/wheels and checked by sha256; tests never fetch.
wheels: venv
	$(PY) -m components.runtime_wheels $$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') 3.9

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: venv wheels lint
	$(PY) -m pytest -q

up: venv
	STACK=$(STACK) bash scripts/up.sh

down:
	bash scripts/down.sh

promote: venv
	$(PY) scripts/promote.py --from $(FROM) --to $(TO)

bench: venv wheels
	$(PY) -m benchmarks

serve: venv
	@test -n "$(ARTIFACT)" || { echo "usage: make serve ARTIFACT=s3://…/model.tar.gz|file.tar.gz|folder [PORT=8080] [MODEL_ID=org/name]"; exit 2; }
	$(PY) -m embedding_client serve "$(ARTIFACT)" --port $(PORT) $(if $(MODEL_ID),--model-id "$(MODEL_ID)")
