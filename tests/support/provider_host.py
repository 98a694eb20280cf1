"""Run a dynamic resource's provider the way Pulumi's provider host does, in a fresh process.

The provider is unpickled from the `__provider` input in a Python process started outside the
project (the provider host may not have the project on its path), then driven through one
`pulumi up`: `check`, then `create` for a new resource, or `diff` and, when it reports changes,
`create` of the replacement when it names inputs to replace, else `update` with the recorded
outputs as olds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from pulumi.runtime import rpc

PROVIDER_TIMEOUT_S = 600

_HOST = textwrap.dedent(
    """
    import base64, json, sys
    import dill
    request = json.load(sys.stdin)
    news, olds = request["news"], request["olds"]
    provider = dill.loads(base64.b64decode(news["__provider"]))
    checked = provider.check(olds, news)
    if checked.failures:
        raise SystemExit("check failed: " + "; ".join(f.reason for f in checked.failures))
    props = dict(checked.inputs, __provider=news["__provider"])
    if not olds:
        created = provider.create(props)
        answer = {"id": created.id, "outs": created.outs, "operation": "create"}
    elif (decision := provider.diff(request["id"], olds, props)).replaces:
        created = provider.create(props)
        answer = {"id": created.id, "outs": created.outs, "operation": "replace"}
    elif decision.changes:
        updated = provider.update(request["id"], olds, props)
        answer = {"id": request["id"], "outs": updated.outs, "operation": "update"}
    else:
        answer = {"id": request["id"], "outs": olds, "operation": "same"}
    json.dump(answer, sys.stdout)
    """
)


def reveal(value: Any) -> Any:
    """Unwrap secret values as the provider host receives them (the mocks keep the wrapper)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return reveal(value["value"])
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def run_provider(
    inputs: dict[str, Any],
    work_dir: Path,
    olds: dict[str, Any] | None = None,
    resource_id: str = "",
) -> dict[str, Any]:
    """One `pulumi up` of a dynamic resource: {"id", "outs", "operation"}."""
    host = subprocess.run(
        [sys.executable, "-c", _HOST],
        input=json.dumps({"news": reveal(inputs), "olds": olds or {}, "id": resource_id}),
        capture_output=True,
        text=True,
        cwd=work_dir,  # not the project: the provider must find its own code
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        timeout=PROVIDER_TIMEOUT_S,
    )
    if host.returncode != 0:
        raise RuntimeError(f"dynamic provider failed:\n{host.stderr[-4000:]}")
    return json.loads(host.stdout)
