"""A limit on the size of request bodies (``Settings.max_body_bytes``; 413 beyond it).

A declared ``Content-Length`` over the limit is refused before the application sees the request; a body
sent without one (chunked) is counted as it arrives and cut off at the limit, so no endpoint ever holds
more than the limit in memory because of one request.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theradose.service.errors import error_json


class BodyTooLarge(HTTPException):
    """Raised while reading a body that exceeds the limit (answered 413 by the error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes: send a smaller file or split it")


class BodyLimit:
    """ASGI middleware refusing request bodies larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    message = (
                        f"request body larger than {self.max_bytes} bytes: send a smaller file or split it"
                        if declared > self.max_bytes
                        else "Content-Length is not a number"
                    )
                    status = 413 if declared > self.max_bytes else 400
                    response = error_json(
                        status, "request_too_large" if status == 413 else "bad_request", message
                    )
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)
