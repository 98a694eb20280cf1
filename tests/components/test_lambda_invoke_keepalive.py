"""The 15-minute synchronous invoke keeps its silent connection alive through NATs and proxies.

An AWS NAT gateway drops a connection idle for 350 s. The loader's invoke is silent until the
loader answers, so its socket must send TCP keepalive probes well before that. The real
`run_lambda` invokes the Lambda API fixture; every socket urllib3 opens is recorded with the
keepalive options the kernel reports for it.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import urllib3.util.connection

from components.packaging_runs import PackagingRequest, run_lambda
from tests.fixtures.lambda_api import LOADER_FUNCTION_NAME, LambdaApiServer
from tests.support.packager import TINY_COMMIT, TINY_MODEL_ID, resource_inputs

# AWS NAT gateways close a connection after 350 s without traffic.
NAT_IDLE_TIMEOUT_SECONDS = 350


def canned_result(event: dict[str, Any], context: object) -> dict[str, Any]:
    """What the loader answers, without packaging anything (only the connection matters here)."""
    url = f"s3://{event['bucket']}/{event['key_prefix']}{TINY_MODEL_ID}/{TINY_COMMIT}/model.tar.gz"
    return {
        "model_data_url": url,
        "revision": TINY_COMMIT,
        "sha256": "0" * 64,
        "size_bytes": 1,
        "weights_bytes": 1,
        "files": ["config.json"],
        "format_version": "1",
    }


@pytest.fixture
def invoke_sockets(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Keepalive settings of every socket urllib3 connects from now on, with its peer port."""
    seen: list[dict[str, Any]] = []
    real = urllib3.util.connection.create_connection

    def recording(address, *args, **kwargs):
        sock = real(address, *args, **kwargs)
        entry = {
            "port": address[1],
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        }
        if hasattr(socket, "TCP_KEEPIDLE"):
            entry["idle"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        seen.append(entry)
        return sock

    monkeypatch.setattr(urllib3.util.connection, "create_connection", recording)
    return seen


def test_the_invoke_connection_sends_keepalive_probes_before_a_nat_drops_it(
    lambda_api: LambdaApiServer, invoke_sockets: list[dict[str, Any]], aws
) -> None:
    lambda_api.handler = canned_result
    inputs = resource_inputs(
        "artifacts-bucket",
        runner="lambda",
        function_name=LOADER_FUNCTION_NAME,
        requested_revision=TINY_COMMIT,
        aws_endpoints={"lambda": lambda_api.url},
    )
    run_lambda(PackagingRequest.from_inputs(inputs))
    port = int(lambda_api.url.rsplit(":", 1)[1])
    (connection,) = [entry for entry in invoke_sockets if entry["port"] == port]
    assert connection["keepalive"] != 0
    if "idle" not in connection:
        pytest.skip("this OS does not report TCP_KEEPIDLE")
    assert connection["idle"] < NAT_IDLE_TIMEOUT_SECONDS
