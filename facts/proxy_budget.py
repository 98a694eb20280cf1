"""The HTTP API proxy's time budget: API Gateway's limit, the Lambda's timeout, one upstream call.

API Gateway stops waiting after 30 s; every upstream attempt and backoff must end before the
Lambda does, so a slow endpoint is the proxy's own 504, never a Lambda timeout.
"""

from __future__ import annotations

INTEGRATION_TIMEOUT_SECONDS = 30
LAMBDA_TIMEOUT_SECONDS = 30
UPSTREAM_CONNECT_TIMEOUT_SECONDS = 2
# A serverless cold start (container start and model load) answers late: one attempt gets all the
# time there is. A throttled or failed call returns at once (429 / 502) and the caller retries.
UPSTREAM_READ_TIMEOUT_SECONDS = 25
UPSTREAM_MAX_ATTEMPTS = 1
# Parsing, logging and a cold start's imports, besides the upstream call.
HANDLER_MARGIN_SECONDS = 2
# botocore's standard mode sleeps random() * min(2 ** (n - 1), 20) s before retry n (throttling;
# other errors sleep less), stretched by up to 5 s more when the answer carries x-amz-retry-after.
_BACKOFF_BASE = 2
_BACKOFF_MAX_SECONDS = 20
_RETRY_AFTER_MAX_ADDITIONAL_SECONDS = 5


def retry_backoff_bound(max_attempts: int) -> float:
    """The longest botocore's standard mode sleeps between `max_attempts` attempts."""
    return float(
        sum(
            min(_BACKOFF_BASE ** (n - 1), _BACKOFF_MAX_SECONDS)
            + _RETRY_AFTER_MAX_ADDITIONAL_SECONDS
            for n in range(1, max_attempts)
        )
    )


def upstream_worst_case_seconds(
    connect_timeout: float, read_timeout: float, max_attempts: int
) -> float:
    """How long one upstream call can take before botocore gives up."""
    return max_attempts * (connect_timeout + read_timeout) + retry_backoff_bound(max_attempts)


def budget_problem(
    lambda_timeout: float, connect_timeout: float, read_timeout: float, max_attempts: int
) -> str | None:
    """Why an upstream call could outlast the Lambda, or None when it cannot."""
    worst = upstream_worst_case_seconds(connect_timeout, read_timeout, max_attempts)
    if worst + HANDLER_MARGIN_SECONDS <= lambda_timeout:
        return None
    return (
        f"an upstream call can take {worst:g} s ({max_attempts} attempt(s) of "
        f"{connect_timeout:g} s connect + {read_timeout:g} s read, plus backoff) and the "
        f"handler needs {HANDLER_MARGIN_SECONDS} s more: that exceeds the Lambda timeout of "
        f"{lambda_timeout:g} s"
    )
