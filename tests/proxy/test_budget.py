"""The proxy's upstream calls end before its own Lambda does (facts/proxy_budget.py).

Read from the boto3 client the handler really builds and the Lambda timeout the program really
declares: a read timeout plus retries that outlast the Lambda would turn a slow endpoint into a
Lambda timeout (API Gateway's bare 503) instead of the proxy's 504 with a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from components.http_api import EmbeddingHttpApiArgs
from facts import proxy_budget
from proxy import handler as proxy_handler
from tests.fixtures.pulumi_mocks import ProgramRun
from tests.support.stacks import stack_config

# botocore's legacy retry mode, its default when a client sets none: 5 attempts in all.
BOTOCORE_DEFAULT_ATTEMPTS = 5


@pytest.fixture
def sagemaker_client(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    proxy_handler._cached_client.cache_clear()
    yield proxy_handler._cached_client("sagemaker-runtime", "us-east-1", None)
    proxy_handler._cached_client.cache_clear()


def test_an_upstream_call_ends_before_the_proxy_lambda_times_out(
    sagemaker_client, pulumi_program: Callable[..., ProgramRun]
) -> None:
    config = sagemaker_client.meta.config
    retries = config.retries or {}
    attempts = retries.get("total_max_attempts", BOTOCORE_DEFAULT_ATTEMPTS)
    run = pulumi_program(stack_config("dev", httpApi="true"), stack="dev")
    (proxy,) = [f for f in run.of_type("aws:lambda/function:Function") if f.name == "http-proxy"]
    lambda_timeout = proxy.inputs["timeout"]
    worst = proxy_budget.upstream_worst_case_seconds(
        config.connect_timeout, config.read_timeout, attempts
    )
    assert worst + proxy_budget.HANDLER_MARGIN_SECONDS <= lambda_timeout
    assert lambda_timeout <= proxy_budget.INTEGRATION_TIMEOUT_SECONDS


def test_the_client_retries_in_standard_mode_with_a_fixed_number_of_attempts(
    sagemaker_client,
) -> None:
    assert sagemaker_client.meta.config.retries == {
        "mode": "standard",
        "total_max_attempts": proxy_budget.UPSTREAM_MAX_ATTEMPTS,
    }


def test_the_backoff_bound_follows_botocores_standard_mode() -> None:
    # Before retry n botocore sleeps random() * min(2 ** (n - 1), 20) s, plus up to 5 s when the
    # answer asks for it (x-amz-retry-after).
    assert proxy_budget.retry_backoff_bound(1) == 0
    assert proxy_budget.retry_backoff_bound(2) == 1 + 5
    assert proxy_budget.retry_backoff_bound(4) == (1 + 2 + 4) + 3 * 5
    assert proxy_budget.retry_backoff_bound(7) == (1 + 2 + 4 + 8 + 16 + 20) + 6 * 5


def test_the_default_retries_would_outlast_the_lambda() -> None:
    # What the proxy had before: 5 s connect, 25 s read and botocore's default retries.
    problem = proxy_budget.budget_problem(30, 5, 25, BOTOCORE_DEFAULT_ATTEMPTS)
    assert problem is not None and "exceeds the Lambda timeout of 30 s" in problem


def test_a_lambda_timeout_too_short_for_the_upstream_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds the Lambda timeout of 20 s"):
        EmbeddingHttpApiArgs(
            backend="sagemaker", target_name="e", target_arn="arn", timeout_seconds=20
        )
