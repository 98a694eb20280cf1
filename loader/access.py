"""Waiting out IAM propagation before the loader's first S3 write.

For a few seconds after PutRolePolicy, requests may still be refused: the handler lists its prefix
and retries `AccessDenied` with backoff, bounded; a refusal past the bound names bucket and prefix
before anything is written, and any other answer is left to the packaging steps.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from botocore.exceptions import ClientError

from loader.errors import UploadError

log = logging.getLogger(__name__)

# IAM changes usually reach S3 within seconds; the AWS provider waits up to 2 minutes for its own
# IAM propagation retries. One minute keeps a real denial quick to report.
ACCESS_WAIT_SECONDS = 60.0
_FIRST_DELAY_SECONDS = 1.0
_MAX_DELAY_SECONDS = 8.0
_DENIED = ("AccessDenied",)


def wait_for_access(s3: Any, bucket: str, prefix: str, *, model: str) -> int:
    """List `prefix` until S3 stops answering AccessDenied; return how many times it did."""
    bound = ACCESS_WAIT_SECONDS
    deadline = time.monotonic() + bound
    delay = _FIRST_DELAY_SECONDS
    denied = 0
    while True:
        try:
            s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
            if denied:
                log.info("access to s3://%s/%s granted after %d refusal(s)", bucket, prefix, denied)
            return denied
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if code not in _DENIED:
                return denied
            denied += 1
            if time.monotonic() + delay > deadline:
                raise UploadError(
                    f"s3://{bucket}/{prefix} still answers AccessDenied after {bound:.0f} s "
                    f"({denied} attempts): the role needs s3:ListBucket on the bucket and write "
                    "access under the prefix (a policy just put can take seconds to apply)",
                    step="check-access",
                    model=model,
                ) from error
            log.info("s3://%s/%s answered AccessDenied; retrying in %.0f s", bucket, prefix, delay)
            time.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY_SECONDS)
