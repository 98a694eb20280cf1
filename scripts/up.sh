#!/usr/bin/env bash
# Deploy a stack. `make up` (STACK=local): AWS emulator in the background, file state backend in
# the repo, `pulumi up`, then serve the packaged artifact locally and smoke-test it.
# `make up STACK=dev`: a plain `pulumi up -s dev` with your own credentials and backend.
set -euo pipefail
cd "$(dirname "$0")/.."

STACK="${STACK:-local}"
PY="${PY:-.venv/bin/python}"

source scripts/need_pulumi.sh
if [[ ! -x "$PY" ]]; then
    echo "error: $PY not found; run 'make venv' first (or 'make up', which does)." >&2
    exit 1
fi

if [[ "$STACK" != "local" ]]; then
    # Your credentials, your backend, Pulumi's usual preview-and-confirm.
    exec pulumi up -s "$STACK"
fi

# --- the local stack: nothing below reaches a real AWS account -------------------------------
mkdir -p .pulumi-state .emulator
trap 'echo "make up failed; logs: .emulator/*.log. Fix and rerun make up, or stop it all: make down" >&2' ERR
# shellcheck source=scripts/local_env.sh
source scripts/local_env.sh

started="$("$PY" scripts/emulator.py start)"
echo "AWS emulator: $started (log .emulator/moto.log)"
export AWS_ENDPOINT_URL="${started#* }"

pulumi stack select --create local
if [[ "$started" == started* ]]; then
    # A fresh emulator holds nothing, so any state left from an earlier emulator describes
    # resources that are gone: forget them and let `pulumi up` create everything again.
    resources="$(pulumi stack export -s local | "$PY" -c \
        'import json,sys; print(len((json.load(sys.stdin).get("deployment") or {}).get("resources") or []))')"
    if [[ "$resources" != "0" ]]; then
        echo "Dropping $resources resource(s) of an earlier emulator from the local stack's state."
        pulumi state delete --all --force --yes -s local
    fi
fi

pulumi up -s local --yes

model_data_url="$(pulumi stack output -s local modelDataUrl)"
# The stack's runtimeEndpointUrl: where sagemaker-runtime calls of this stack go.
runtime_url="$("$PY" scripts/emulator.py runtime-url)"
serve_port="${runtime_url##*:}"
"$PY" scripts/emulator.py stop serve >/dev/null
"$PY" scripts/emulator.py --timeout 600 serve --port "$serve_port" --ready-path /ping -- \
    "$PY" -m embedding_client serve "$model_data_url" --host 127.0.0.1 --port "$serve_port"
echo "Local endpoint: $runtime_url (log .emulator/serve.log) serving $model_data_url"

# The stack's own post-deploy check, through SageMaker Runtime's API, against the real model.
# Its command line is a stack output: split into words (never eval'd by a shell) and run only as
# the smoke module under this checkout's Python.
smoke_command="$(pulumi stack output -s local smokeTestCommand)"
"$PY" -c 'import shlex, subprocess, sys
words = shlex.split(sys.argv[1])
if words[1:3] != ["-m", "embedding_client.smoke"]:
    sys.exit(f"smokeTestCommand is not the smoke check, not run: {sys.argv[1]!r}")
sys.exit(subprocess.call([sys.executable, *words[1:]]))' "$smoke_command"
echo
echo "Try it:  .venv/bin/embed --stack local \"hello world\""
echo "         curl -s $runtime_url/v1/embeddings -H 'Content-Type: application/json' \\"
echo "              -d '{\"input\": [\"hello world\"], \"model\": \"local\"}'"
echo "Stop:    make down"
