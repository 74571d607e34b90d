"""A request whose transaction lost a race (serialization failure, deadlock) runs once more.

Safe because the request's writes are its one transaction (the unit of work), rolled back whole before
the error answer is built, and because nothing has been sent yet: the failed attempt's answer is held
back and dropped. Jobs and events leave only after a commit. Bodies up to BUFFER_LIMIT are kept for the
second run; a larger upload is not run twice (the client gets the 409 and sends it again).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import RETRY_UNIT_OF_WORK

BUFFER_LIMIT = 1 << 20
ATTEMPTS = 2


class TransactionRetryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _small_body(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        for attempt in range(1, ATTEMPTS + 1):
            if await self._run(scope, receive, send, body, last=attempt == ATTEMPTS):
                return

    async def _run(self, scope: Scope, receive: Receive, send: Send, body: bytes, last: bool) -> bool:
        """One run of the request; False when it lost a race and its answer was held back for another run."""
        state = scope.setdefault("state", {})
        state.pop(RETRY_UNIT_OF_WORK, None)
        dropped = False

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def hold(message: Message) -> None:
            nonlocal dropped
            if message["type"] == "http.response.start" and not last and state.get(RETRY_UNIT_OF_WORK):
                dropped = True
            if not dropped:
                await send(message)

        await self.app(scope, _once(replay, receive), hold)
        return not dropped


def _small_body(headers: Headers) -> bool:
    declared = headers.get("content-length")
    if declared is None:
        return "transfer-encoding" not in headers  # no body at all; a chunked one may be any size
    return declared.isdigit() and int(declared) <= BUFFER_LIMIT


async def _read_body(receive: Receive) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def _once(first: Receive, then: Receive) -> Receive:
    """The buffered body once, then the client's own stream (a disconnect, for streaming responses)."""
    done = False

    async def receive() -> Message:
        nonlocal done
        if not done:
            done = True
            return await first()
        return await then()

    return receive
