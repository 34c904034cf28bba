"""A raw TCP server on 127.0.0.1 that answers each request with exact bytes: ``raw_server``.

The aiohttp feed server always speaks valid HTTP. This one writes what a test gives it,
byte for byte (a Content-Length that lies, a broken status line, a huge header), so the
fetcher meets what a broken or hostile feed host really sends. It runs its own event loop
in a thread, so sync CLI tests reach it too; every read and write has a time bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

_TIMEOUT = 10.0  # seconds for any read, write or start; no connection lives longer
_MAX_HEAD = 64 * 1024  # bytes of request head read before giving up on the request


class RawServer:
    """Answers a request for ``path`` with the bytes set by ``reply``, then closes."""

    def __init__(self) -> None:
        self.base_url = ""
        self._replies: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="raw", daemon=True)
        self._server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    def reply(self, path: str, data: bytes) -> None:
        with self._lock:
            self._replies[path] = data

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.base_url = f"http://127.0.0.1:{future.result(timeout=_TIMEOUT)}"

    def stop(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
        try:
            future.result(timeout=_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_TIMEOUT)
            if not self._thread.is_alive():
                self._loop.close()

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=_MAX_HEAD)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _TIMEOUT)
            path = head.split(b" ", 2)[1].decode("latin-1")
            with self._lock:
                data = self._replies.get(
                    path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                )
            writer.write(data)
            await asyncio.wait_for(writer.drain(), _TIMEOUT)
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            IndexError,
        ):
            pass  # the client went away or sent no request: nothing to answer
        finally:
            writer.close()


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
