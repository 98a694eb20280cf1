"""What the DLC's toolkit does around the inference hooks, so the local endpoint answers as it does.

`HuggingFaceHandlerService.handle` (toolkit 2.4.0): `Accept` defaults to JSON, JSON and CSV bodies
are decoded as UTF-8 before `input_fn`, and every exception is a 400 (docs/inference.md).
tests/dlc/ compares this endpoint with the real model server.
"""

from __future__ import annotations

import json

ANY = "*/*"
DEFAULT_ACCEPT = "application/json"
DECODED_TYPES = ("application/json", "text/csv")
ERROR_STATUS = 400
ERROR_TYPE = "InternalServerException"


def effective_accept(accept: str | None) -> str:
    """The accept the hooks see and the answer is labelled with."""
    return DEFAULT_ACCEPT if not accept or accept == ANY else accept


def hook_input(body: bytes, content_type: str | None) -> bytes | str:
    """The body as `input_fn` receives it; UnicodeDecodeError as the toolkit raises it."""
    return body.decode("utf-8") if content_type in DECODED_TYPES else body


def error_body(message: str) -> bytes:
    """The model server's answer to a failed request: always 400, whatever the hooks raised."""
    document = {"code": ERROR_STATUS, "type": ERROR_TYPE, "message": message}
    return json.dumps(document).encode("utf-8")
