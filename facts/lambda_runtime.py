"""The runtime of the stack's Lambda functions (the loader and the HTTP API's proxy and authorizer).

Their code is written for this runtime's Python and the boto3 it bundles; the loader's wheels are
chosen for it (components/loader_bundle.py).
"""

from __future__ import annotations

LAMBDA_RUNTIME = "python3.12"
