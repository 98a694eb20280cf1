#!/usr/bin/env bash
# Exit 127 with the install line when the Pulumi CLI is missing: `make up` and `make promote`
# run it before they build the virtualenv, and scripts/up.sh sources it.
if ! command -v pulumi >/dev/null 2>&1; then
    echo "error: the Pulumi CLI ('pulumi') is not installed or not on PATH; 'make ${MAKE_TARGET:-up}' needs it." >&2
    echo "Install it with the official installer, then open a new shell and rerun 'make ${MAKE_TARGET:-up}':" >&2
    echo "    curl -fsSL https://get.pulumi.com | sh" >&2
    exit 127
fi
