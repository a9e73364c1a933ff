"""Make the UI's Test button work for ``salesforce_jwt`` connections on Airflow 3.3.1 and 3.3.2.

Why: the connection list's Test button posts ``port: Number(connection.port)``, which is ``0`` for
a connection without a port, and those releases' ``POST /api/v2/connections/test`` treats ``0`` as
"a different destination than the stored connection". It then refuses to reuse the stored,
masked private key and answers ``400 Bad Request`` (apache/airflow#73298, fixed upstream after
3.3.2). Our connection type hides the port, so every ``salesforce_jwt`` connection hits this.

What: an ASGI middleware that, for that one route and only for ``salesforce_jwt`` bodies, drops
``"port": 0`` (which can never be meant: the form has no port field), exactly as the upstream fix
normalises it. It switches itself off when the running Airflow already accepts port 0, so it
disappears with the upgrade; nothing else passes through it changed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

CONN_TYPE = "salesforce_jwt"
TEST_ROUTE = "/api/v2/connections/test"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def airflow_rejects_port_zero() -> bool:
    """True on the Airflow releases whose Test route mistakes ``port: 0`` for another host."""
    try:
        from airflow.api_fastapi.core_api.routes.public.connections import _same_endpoint
    except ImportError:  # releases before the host/port check, or after a refactoring
        return False
    return not _same_endpoint(0, None)


def drop_port_zero(body: bytes) -> bytes:
    """The request body without ``"port": 0`` when it tests a ``salesforce_jwt`` connection."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or data.get("conn_type") != CONN_TYPE or data.get("port") != 0:
        return body
    del data["port"]
    return json.dumps(data).encode()


class PortlessConnectionTestFix:
    """ASGI middleware: see the module docstring. Inactive where Airflow is already fixed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.active = airflow_rejects_port_zero()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            self.active
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].endswith(TEST_ROUTE)
        ):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = drop_port_zero(b"".join(chunks))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # e.g. http.disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, replay, send)
