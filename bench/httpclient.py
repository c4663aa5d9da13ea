"""A minimal HTTP/1.1 keep-alive client for load generation.

httpx costs about a millisecond of CPU per request; on two cores shared with the broker, the
database and the services, a load generator that heavy would measure itself. This one writes
the request line and headers by hand and reads a Content-Length (or chunked) answer, which is
all the services send.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass


class HttpError(RuntimeError):
    pass


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


IDLE_REUSE_S = 3.0
"""uvicorn closes a keep-alive connection idle for 5 s; one idle this long is opened anew, never raced."""


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_used = 0.0

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Answer:
        if self._writer is not None and time.monotonic() - self._last_used > IDLE_REUSE_S:
            self.close()
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            answer = await self._read_answer(self._reader)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            self.close()
            raise HttpError(f"{method} {path}: connection lost ({error})") from error
        except BaseException:
            self.close()  # cancelled mid-answer: the rest of it must not be read as the next answer
            raise
        self._last_used = time.monotonic()
        return answer

    async def _read_answer(self, reader: asyncio.StreamReader) -> Answer:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for header in header_lines:
            name, _, value = header.partition(":")
            fields[name.strip().lower()] = value.strip()
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked(reader)
        else:
            body = await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, body)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class Pool:
    """Up to `size` keep-alive connections to one server; a request waits for a free one."""

    def __init__(self, base_url: str, size: int = 64) -> None:
        host_port = base_url.removeprefix("http://").rstrip("/")
        host, _, port = host_port.partition(":")
        self._all = [Connection(host, int(port or 80)) for _ in range(size)]
        self._idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
        for conn in self._all:
            self._idle.put_nowait(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        conn = await self._idle.get()
        try:
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Answer:
        async with self.connection() as conn:
            return await conn.request(method, path, body, headers)

    def close(self) -> None:
        for conn in self._all:
            conn.close()
