"""Wake-ups by PostgreSQL NOTIFY, on a LISTEN connection that comes back after it is lost.

A `Waker` holds one dedicated connection (never a pooled one: LISTEN belongs to a session) and
sets its event on every notification of its channel. When the connection ends (the server
restarted, the backend was terminated, the network dropped it) asyncpg calls the termination
listener, and a periodic check catches a connection closed without it; the waker then connects
again, every `retry_s` until it succeeds, and sets the event once it listens again, because
notifications sent meanwhile are lost. Workers also poll, so a waker that is down delays work
by at most a poll interval, never loses it.

The DSN may carry a password: it is never logged; neither are the driver's messages, which may
name the user or host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

log = logging.getLogger("paygrid.queueing")

_FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Waker:
    def __init__(
        self,
        dsn: str,
        channel: str,
        wake: asyncio.Event,
        *,
        name: str,
        retry_s: float = 1.0,
        check_s: float = 5.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._wake = wake
        self._name = name
        self._retry_s = retry_s
        self._check_s = check_s
        self._connect_timeout_s = connect_timeout_s
        self._down = False

    async def run(self) -> None:
        """Listen forever, reconnecting whenever the connection is lost. Cancel to stop."""
        while True:
            try:
                await self._listen_once()
            except _FAILURES as exc:
                self._lost(exc)
            await asyncio.sleep(self._retry_s)

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout_s,
            server_settings={"application_name": f"paygrid-waker:{self._name}"},
        )
        try:
            ended = asyncio.Event()
            conn.add_termination_listener(lambda _: ended.set())
            await conn.add_listener(self._channel, self._notified)
            if self._down:
                self._down = False
                log.warning("%s: listening for wake-ups again", self._name)
            self._wake.set()
            while not ended.is_set() and not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), timeout=self._check_s)
            self._lost(None)
        finally:
            if conn.is_closed():
                conn.terminate()
            else:
                with contextlib.suppress(*_FAILURES):
                    await conn.close(timeout=self._connect_timeout_s)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _lost(self, exc: BaseException | None) -> None:
        """Logged once per outage, not once per reconnection attempt."""
        if not self._down:
            self._down = True
            why = type(exc).__name__ if exc is not None else "connection closed"
            log.warning("%s: no wake-up connection (%s); polling until it is back", self._name, why)
