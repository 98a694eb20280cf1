"""What the DLC's toolkit does around the inference hooks, so the local endpoint answers as it does.

`HuggingFaceHandlerService.handle` (sagemaker-huggingface-inference-toolkit 2.4.0, in the DLC)
wraps `input_fn` → `predict_fn` → `output_fn`:
- a missing `Accept` or `*/*` becomes `application/json`, and the answer is labelled with it;
- a body whose `Content-Type` is exactly `application/json` or `text/csv` is decoded as UTF-8
  before `input_fn` sees it (an invalid byte fails there, with Python's own message);
- every exception becomes `PredictionException(str(e), 400)`, which multi-model-server sends as
  `{"code": 400, "type": "InternalServerException", "message": ...}`.
tests/dlc/ runs the same requests through the real model server and this endpoint and compares.
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
