"""The Airflow plugin that makes the UI's Test button work on Airflow 3.3.1/3.3.2 (port 0 bug).

The browser test (tests_ui/) shows the button working end to end; these check the middleware's
rules directly with a plain ASGI app behind it, and that the plugin is registered with Airflow.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points

from airflow_provider_sfjwt.plugins import SalesforceJWTPlugin
from airflow_provider_sfjwt.plugins.connection_test import (
    PortlessConnectionTestFix,
    drop_port_zero,
)


def _post(middleware: PortlessConnectionTestFix, path: str, body: dict) -> tuple[bytes, dict]:
    """Send one POST through the middleware; return what the app behind it received."""
    raw = json.dumps(body).encode()
    seen: dict = {}

    async def app(scope, receive, send):
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen["body"] = b"".join(chunks)
        seen["headers"] = dict(scope["headers"])

    middleware.app = app
    half = len(raw) // 2
    messages = iter(
        [
            {"type": "http.request", "body": raw[:half], "more_body": True},
            {"type": "http.request", "body": raw[half:], "more_body": False},
        ]
    )

    async def receive():
        return next(messages)

    async def send(message):
        raise AssertionError("the test app sends nothing")

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))],
    }
    _complete(middleware(scope, receive, send))
    return seen["body"], seen["headers"]


def _complete(coroutine) -> None:
    """Run a coroutine that awaits nothing outside this test (no event loop needed, so this
    also works beside Playwright's loop when both suites run in one session)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise AssertionError("the middleware waited on something outside the request")


def _middleware(active: bool = True) -> PortlessConnectionTestFix:
    middleware = PortlessConnectionTestFix(app=None)  # type: ignore[arg-type]
    middleware.active = active
    return middleware


UI_BODY = {"connection_id": "sf", "conn_type": "salesforce_jwt", "host": "h", "port": 0}


def test_port_zero_is_dropped_for_salesforce_jwt_tests_only():
    body, headers = _post(_middleware(), "/api/v2/connections/test", UI_BODY)
    assert json.loads(body) == {k: v for k, v in UI_BODY.items() if k != "port"}
    assert headers[b"content-length"] == str(len(body)).encode()


def test_other_types_routes_and_real_ports_pass_unchanged():
    for path, body in [
        ("/api/v2/connections/test", {**UI_BODY, "conn_type": "http"}),
        ("/api/v2/connections/test", {**UI_BODY, "port": 8443}),
        ("/api/v2/connections", UI_BODY),
    ]:
        received, _ = _post(_middleware(), path, body)
        assert json.loads(received) == body
    received, _ = _post(_middleware(active=False), "/api/v2/connections/test", UI_BODY)
    assert json.loads(received) == UI_BODY


def test_drop_port_zero_leaves_anything_unparsable_alone():
    for raw in (b"not json", b"[1, 2]", b""):
        assert drop_port_zero(raw) == raw


def test_plugin_is_registered_for_airflow():
    registered = {ep.name: ep.value for ep in entry_points(group="airflow.plugins")}
    assert registered.get("salesforce_jwt") == "airflow_provider_sfjwt.plugins:SalesforceJWTPlugin"
    (middleware,) = SalesforceJWTPlugin.fastapi_root_middlewares
    assert middleware["middleware"] is PortlessConnectionTestFix
