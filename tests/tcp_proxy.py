"""A loopback TCP proxy a test can cut: every connection through it is dropped and new ones are
refused until it is restored. It stands between a client and a real server to show what the
client does when its server goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit, urlunsplit


class CuttableProxy:
    """Listens on 127.0.0.1; forwards to `host:port`, or to a Unix socket when `unix_path` is
    given (an embedded PostgreSQL listens on a socket only)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, unix_path: str | None = None
    ) -> None:
        self._host, self._port, self._unix_path = host, port, unix_path
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.cut = False
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def sever(self) -> None:
        """Drop every connection and refuse new ones."""
        self.cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.cut = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        try:
            if self._unix_path is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(self._unix_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)


def proxy_for_dsn(dsn: str) -> CuttableProxy:
    """A proxy to the server behind `dsn` (PostgreSQL or Redis): TCP, or the Unix socket of an
    embedded PostgreSQL (named in the DSN's `host` query parameter)."""
    parts = urlsplit(dsn)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    if socket_dir.startswith("/"):
        return CuttableProxy(unix_path=f"{socket_dir}/.s.PGSQL.{parts.port or 5432}")
    return CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)


def through_proxy(dsn: str, port: int) -> str:
    """`dsn` pointed at a proxy: same user and database, TCP to 127.0.0.1:`port`."""
    parts = urlsplit(dsn)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc, query=""))
