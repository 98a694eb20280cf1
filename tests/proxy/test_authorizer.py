"""The API-key authorizer against moto's Secrets Manager: which keys it accepts, and until when.

Each test drives `authorize` with an explicit clock (epoch seconds), so the windows it checks
(the secret cache, the rotation overlap) do not depend on how fast the machine is.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from facts.http_api import (
    API_KEY_CACHE_SECONDS,
    API_KEY_REVOCATION_SECONDS,
    API_KEY_ROTATION_OVERLAP_SECONDS,
)
from proxy import authorizer


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _allowed(secret, key: str, now: float) -> bool:
    return authorizer.authorize(_bearer(key), secret.arn, now)


def test_the_key_is_accepted_and_anything_else_refused(api_key_secret):
    now = time.time()
    assert _allowed(api_key_secret, api_key_secret.key, now)
    assert not _allowed(api_key_secret, api_key_secret.key + "x", now)
    assert not authorizer.authorize({}, api_key_secret.arn, now)


def test_handler_reads_the_secret_named_in_its_environment(api_key_secret):
    event = {"type": "REQUEST", "headers": _bearer(api_key_secret.key)}
    assert authorizer.handler(event, None) == {"isAuthorized": True}


def test_revocation_takes_effect_within_the_stated_window(api_key_secret):
    # API Gateway's result cache comes on top of the authorizer's; the sum is the documented window.
    assert API_KEY_REVOCATION_SECONDS <= 30
    start = time.time()
    assert _allowed(api_key_secret, api_key_secret.key, start)
    api_key_secret.rotate()
    api_key_secret.revoke_previous()
    assert not _allowed(api_key_secret, api_key_secret.key, start + API_KEY_CACHE_SECONDS)


def test_a_warm_authorizer_rereads_the_secret_only_after_its_cache_time(api_key_secret):
    start = time.time()
    assert _allowed(api_key_secret, api_key_secret.key, start)
    new_key = api_key_secret.rotate()
    # Still the value read at `start`: one Secrets Manager call per cache period, not per request.
    assert not _allowed(api_key_secret, new_key, start + API_KEY_CACHE_SECONDS - 1)
    assert _allowed(api_key_secret, new_key, start + API_KEY_CACHE_SECONDS)


def test_after_a_rotation_both_keys_work_for_the_overlap(api_key_secret):
    old_key = api_key_secret.key
    new_key = api_key_secret.rotate()
    created = api_key_secret.current_created()
    during = max(time.time(), created)
    assert _allowed(api_key_secret, new_key, during)
    assert _allowed(api_key_secret, old_key, during)
    # The cached answer, and a fresh read, both end the overlap on time.
    end = created + API_KEY_ROTATION_OVERLAP_SECONDS
    assert not _allowed(api_key_secret, old_key, end)
    assert not _allowed(api_key_secret, old_key, end + API_KEY_CACHE_SECONDS)
    assert _allowed(api_key_secret, new_key, end + API_KEY_CACHE_SECONDS)


def test_a_key_two_rotations_old_is_refused(api_key_secret):
    first = api_key_secret.key
    api_key_secret.rotate()
    api_key_secret.rotate()
    assert not _allowed(api_key_secret, first, time.time())


@pytest.mark.parametrize("header", ["Basic abc", "Bearer ", "bearer", ""])
def test_malformed_authorization_headers_have_no_token(header):
    assert authorizer.bearer_token({"Authorization": header}) is None


def test_bearer_scheme_and_header_name_are_case_insensitive():
    assert authorizer.bearer_token({"AUTHORIZATION": "bearer  tok "}) == "tok"


def test_the_docs_state_the_windows_the_code_keeps():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "bedrock-and-http-api.md").read_text()
    assert f"within {API_KEY_REVOCATION_SECONDS} s" in doc
    assert f"for {API_KEY_CACHE_SECONDS} s" in doc
    assert f"{API_KEY_ROTATION_OVERLAP_SECONDS // 60} minutes" in doc
