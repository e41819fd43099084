"""`responses`: every early answer's shape; the end-to-end paths are in tests/security/."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qlik_sso_middleware.errors import (
    CloudRateLimited,
    NotAuthenticated,
    QlikUnavailable,
    RequestRefused,
)
from qlik_sso_middleware.responses import error_body, refuse_websocket, respond_error


class Sent(list[dict[str, Any]]):
    async def __call__(self, message: dict[str, Any]) -> None:
        self.append(message)


def test_an_error_page_escapes_the_message_and_json_carries_the_status() -> None:
    page, kind = error_body(403, "<script>x</script>", html=True)
    assert kind.startswith("text/html")
    assert b"<script>" not in page and b"&lt;script&gt;" in page
    assert b"<h1>403</h1>" in page
    titled, _ = error_body(411, "send a length", html=True, title="Length Required")
    assert b"<h1>411 Length Required</h1><p>send a length</p>" in titled
    data, kind = error_body(502, "Qlik Sense is not available", html=False)
    assert kind == "application/json"
    assert json.loads(data) == {"error": "Qlik Sense is not available", "status": 502}


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ([(b"accept", b"text/html,*/*")], "text/html; charset=utf-8"),
        ([(b"accept", b"text/html"), (b"x-requested-with", b"XMLHttpRequest")], "application/json"),
        ([(b"accept", b"application/json")], "application/json"),
    ],
)
async def test_errors_are_pages_for_page_loads_and_json_otherwise(
    headers: list[tuple[bytes, bytes]], kind: str
) -> None:
    sent = Sent()
    await respond_error({"headers": headers}, sent, QlikUnavailable("down at 10.0.0.1"))
    start = sent[0]
    assert start["status"] == 502
    assert (b"content-type", kind.encode()) in start["headers"]
    assert (b"cache-control", b"no-store") in start["headers"]
    assert b"10.0.0.1" not in sent[1]["body"]  # only the public message


async def test_a_503_says_when_to_retry() -> None:
    sent = Sent()
    await respond_error({"headers": []}, sent, RequestRefused("renewed", status_code=503))
    assert (b"retry-after", b"1") in sent[0]["headers"]


@pytest.mark.parametrize(("wait", "header"), [(61.2, b"62"), (0.0, b"1")])
async def test_a_qlik_cloud_429_passes_its_wait_on(wait: float, header: bytes) -> None:
    sent = Sent()
    await respond_error({"headers": []}, sent, CloudRateLimited("429", retry_after=wait))
    assert sent[0]["status"] == 503
    assert (b"retry-after", header) in sent[0]["headers"]


async def test_hostile_handshakes_are_denied_and_others_closed_with_a_reason() -> None:
    hostile = Sent()
    scope = {"extensions": {"websocket.http.response": {}}}
    await refuse_websocket(scope, hostile, RequestRefused("foreign origin", status_code=403))
    assert [m["type"] for m in hostile] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert hostile[0]["status"] == 403
    no_extension = Sent()
    await refuse_websocket({}, no_extension, RequestRefused("foreign origin", status_code=403))
    assert [m["type"] for m in no_extension] == ["websocket.close"]
    nobody = Sent()
    await refuse_websocket(scope, nobody, NotAuthenticated("no user"))
    assert [m["type"] for m in nobody] == ["websocket.accept", "websocket.close"]
    assert nobody[1]["code"] == 1008
    assert nobody[1]["reason"] == "Not logged in"
