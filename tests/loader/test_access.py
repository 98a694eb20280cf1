"""IAM propagation: the loader waits out AccessDenied on its first S3 call, for a bounded time.

S3 is reached through tests/fixtures/aws_proxy.py, which refuses requests exactly as S3 refuses a
role whose new policy has not reached it yet (403 AccessDenied), then forwards to moto.
"""

from __future__ import annotations

import pytest

import loader.access
from loader.errors import UploadError
from loader.handler import handler
from tests.fixtures.aws_proxy import AwsProxy
from tests.support.loader import TINY_MODEL_ID, hub_event, leftovers, tiny_repo


@pytest.fixture
def s3_through_proxy(aws, aws_proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch) -> AwsProxy:
    """The loader's S3 calls go through the proxy (the Hub and the test's own calls do not)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_proxy.url)
    monkeypatch.setattr(loader.access, "_FIRST_DELAY_SECONDS", 0.05)
    return aws_proxy


def test_access_denied_while_the_policy_propagates_is_waited_out(
    hub, s3_through_proxy: AwsProxy, s3_bucket: str, aws
) -> None:
    hub.register(tiny_repo())
    s3_through_proxy.deny(3)  # the first three S3 requests, whatever they are
    result = handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None)
    denied = [r for r in s3_through_proxy.requests if r.denied]
    assert len(denied) == 3
    assert result["model_data_url"].startswith(f"s3://{s3_bucket}/models/{TINY_MODEL_ID}/")
    keys = [item["Key"] for item in aws.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert any(key.endswith("model.tar.gz") for key in keys)


def test_a_denial_that_outlasts_the_bound_stops_before_anything_is_written(
    hub, s3_through_proxy: AwsProxy, s3_bucket: str, aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader.access, "ACCESS_WAIT_SECONDS", 0.5)
    hub.register(tiny_repo())
    s3_through_proxy.deny(1_000_000)
    with pytest.raises(UploadError, match="step 'check-access'") as caught:
        handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None)
    assert f"s3://{s3_bucket}/models/" in str(caught.value)
    assert "AccessDenied" in str(caught.value)
    # Only listings were tried (every one refused), so nothing can have been written.
    assert {r.method for r in s3_through_proxy.requests} == {"GET"}
    assert all(r.denied for r in s3_through_proxy.requests)
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])
