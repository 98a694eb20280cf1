#!/usr/bin/env bash
# `make down`: stop the local endpoint, destroy the local stack while the emulator still answers
# (so its state matches an empty emulator), then stop the emulator. Never touches other stacks.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PY:-.venv/bin/python}"
if [[ ! -x "$PY" ]]; then
    PY=python3
fi

"$PY" scripts/emulator.py stop serve

if [[ -d .pulumi-state ]] && "$PY" scripts/emulator.py status | grep -q '^moto: running'; then
    if command -v pulumi >/dev/null 2>&1; then
        # shellcheck source=scripts/local_env.sh
        source scripts/local_env.sh
        AWS_ENDPOINT_URL="$("$PY" scripts/emulator.py url)"
        export AWS_ENDPOINT_URL
        if pulumi stack ls --json 2>/dev/null | grep -q '"name": *"local"'; then
            # Still stop the emulator when this fails: the next `make up` starts a fresh one and
            # drops the stale state then.
            pulumi destroy -s local --yes ||
                echo "warning: 'pulumi destroy -s local' failed; stopping the emulator anyway." >&2
        fi
    else
        echo "note: no pulumi CLI; the local stack's state is left as is (the next 'make up'" \
            "notices the fresh emulator and starts over)."
    fi
fi

"$PY" scripts/emulator.py stop moto
