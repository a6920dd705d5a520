"""Property tests generated from the service's own OpenAPI document: whatever a client sends, the answer
is never a server error, and every documented route answers within its documented status codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from appban.service.app import create_app
from appban.service.settings import ServiceSettings
from appban.store import AuditStore


@schemathesis.serializer("application/x-ndjson", "application/vnd.apache.arrow.stream")
def as_bytes(ctx: object, value: object) -> bytes:
    """Batch bodies are raw text or bytes; whatever the generator makes is sent as it is."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    folder = tmp_path_factory.mktemp("schema")
    url = f"sqlite:///{Path(folder) / 'audit.db'}"
    with AuditStore(url) as store:
        _, secret = store.create_token(name="schemathesis", scope="write")
    app = create_app(ServiceSettings(db_url=url, upload_dir=folder, max_upload_bytes=1 << 20))
    with TestClient(app):  # runs the lifespan: the store and the desk exist while the tests run
        yield app, secret


def test_no_request_makes_a_server_error(service: tuple[FastAPI, str]) -> None:
    app, secret = service
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=[not_a_server_error])

        no_server_error()


def test_malformed_and_unauthorised_requests_are_4xx(service: tuple[FastAPI, str]) -> None:
    client = TestClient(service[0], raise_server_exceptions=False)
    token = {"Authorization": f"Bearer {service[1]}"}
    cases = [
        client.post("/v1/decide", content=b"\xff\xfe not json", headers=token | {"content-type": "application/json"}),
        client.post("/v1/decide", json={"app": 1, "transaction": [], "where": None, "at": {}}, headers=token),
        client.post("/v1/decide", json={"app": "tiktok"}, headers={"Authorization": "Bearer nope"}),
        client.post("/v1/decide", json={"app": "tiktok"}, headers={"Authorization": "Basic abc"}),
        client.get("/v1/runs/not-a-run", headers=token),
        client.get("/v1/audit/not-a-decision/replay", headers=token),
        client.get("/v1/timeline", params={"app": "tiktok", "from": "yesterday"}, headers=token),
        client.get("/v1/audit", params={"from": "2020-13-45"}, headers=token),
        client.put("/v1/decide", json={}, headers=token),
        client.post(
            "/v1/decide/batch",
            content=b"\x00\x01garbage",
            headers=token | {"content-type": "application/vnd.apache.arrow.stream"},
        ),
        client.post(
            "/v1/decide/batch", content=b'{"app": "tiktok"}\n', headers=token | {"content-type": "application/x-ndjson"}
        ),
    ]
    statuses = [response.status_code for response in cases]
    assert all(400 <= status < 500 for status in statuses), statuses
    for response in cases:
        assert response.json()["error"]["message"]
