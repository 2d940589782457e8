"""uvicorn's h11 protocol with a deadline for reading each request.

uvicorn closes a keep-alive connection that stays idle after a response, but a new connection that
sends nothing, or a request whose headers or body stop half-way, is held for ever; 256 of them (the
server's connection limit) would lock every client out. Here such a connection is closed once it has
not delivered a whole request within the deadline. A request that has arrived whole is never cut:
the deadline covers reading, not the work of the operation. At shutdown, connections still reading a
request are closed at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["protocol_with_read_deadline"]

# h11's states of the peer while a request is still being read: before its request line and
# headers are complete (IDLE), or during its body (SEND_BODY).
_READING = (h11.IDLE, h11.SEND_BODY)


class _ReadDeadlineProtocol(H11Protocol):
    read_seconds: float = 20.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.read_seconds, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._deadline = None
        if not self.transport.is_closing() and self.conn.their_state in _READING:
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_deadline()  # for the next request on this connection

    def shutdown(self) -> None:
        # A request still being read has not started: close it now rather than wait for the
        # rest (uvicorn would give it the whole graceful period, then cancel it with a traceback).
        if not self.transport.is_closing() and self.conn.their_state in _READING:
            self.transport.close()
            return
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)


def protocol_with_read_deadline(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol class, closing a connection that has not sent a whole request within ``seconds``
    of its opening (or of the previous response)."""
    return type("ReadDeadlineProtocol", (_ReadDeadlineProtocol,), {"read_seconds": float(seconds)})
