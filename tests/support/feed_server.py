"""A real local HTTP server for feed tests: the ``feed_server`` fixture.

It runs aiohttp.web in a background thread with its own event loop on 127.0.0.1 and a
free port, so sync tests, async tests and in-process CLI runs can all reach it. Tests
register what each path does (serve a body, redirect, hang, trickle, stream forever)
and read back every request it received. Every wait in a handler is bounded and ends
when the fixture tears down, so a test that forgets a hanging request cannot hang
the suite.
"""

from __future__ import annotations

import asyncio
import gzip as gzip_module
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import NamedTuple, Protocol

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

_LONGEST_WAIT = 60.0  # seconds any handler may stall, even if teardown never comes
_ENDLESS_CAP = 1024**3  # bytes an "endless" body stops at, so no run is truly unbounded
_START_TIMEOUT = 10.0


class RecordedRequest(NamedTuple):
    """One request as the server saw it; ``headers`` look up case-insensitively."""

    path: str  # path and query string
    headers: Mapping[str, str]


class _Behaviour(Protocol):
    async def respond(
        self, request: web.Request, stopping: asyncio.Event
    ) -> web.StreamResponse: ...


async def _stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; True when the server is stopping."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _etag_matches(header: str, etag: str) -> bool:
    def opaque(tag: str) -> str:
        return tag.strip().removeprefix("W/")

    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or any(opaque(tag) == opaque(etag) for tag in tags)


def _not_modified_since(header: str, last_modified: str) -> bool:
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class _Static:
    body: bytes
    status: int
    headers: CIMultiDict[str]
    etag: str | None
    last_modified: str | None
    delay: float

    async def respond(self, request: web.Request, stopping: asyncio.Event) -> web.StreamResponse:
        if self.delay and await _stopped_within(stopping, self.delay):
            return web.Response(status=503)
        if self.status == 200 and self._not_modified(request):
            validators = CIMultiDict[str]()
            if self.etag:
                validators["ETag"] = self.etag
            if self.last_modified:
                validators["Last-Modified"] = self.last_modified
            return web.Response(status=304, headers=validators)
        return web.Response(status=self.status, body=self.body, headers=self.headers)

    def _not_modified(self, request: web.Request) -> bool:
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None:  # RFC 9110: it overrides If-Modified-Since
            return self.etag is not None and _etag_matches(if_none_match, self.etag)
        if_modified_since = request.headers.get("If-Modified-Since")
        return bool(
            if_modified_since
            and self.last_modified
            and _not_modified_since(if_modified_since, self.last_modified)
        )


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str
    status: int

    async def respond(self, request: web.Request, stopping: asyncio.Event) -> web.StreamResponse:
        return web.Response(status=self.status, headers={"Location": self.location})


@dataclass(frozen=True, slots=True)
class _Hang:
    async def respond(self, request: web.Request, stopping: asyncio.Event) -> web.StreamResponse:
        await _stopped_within(stopping, _LONGEST_WAIT)
        return web.Response(status=503)


@dataclass(frozen=True, slots=True)
class _Trickle:
    chunk: bytes
    every: float

    async def respond(self, request: web.Request, stopping: asyncio.Event) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        for _ in range(int(_LONGEST_WAIT / self.every) + 1):
            try:
                await response.write(self.chunk)
            except ConnectionError:
                return response
            if await _stopped_within(stopping, self.every):
                break
        return response


@dataclass(frozen=True, slots=True)
class _Endless:
    chunk: bytes = field(default=b"<item><title>more</title></item>\n" * 2048)

    async def respond(self, request: web.Request, stopping: asyncio.Event) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        sent = 0
        while sent < _ENDLESS_CAP and not stopping.is_set():
            try:
                await response.write(self.chunk)  # waits for the client: back-pressure
            except ConnectionError:
                break
            sent += len(self.chunk)
        return response


class FeedServer:
    """A local feed server; configure paths with ``add``, ``redirect``, ``hang``..."""

    def __init__(self) -> None:
        self.base_url = ""
        self._routes: dict[str, _Behaviour] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="feed-server", daemon=True)
        self._stopping: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._open = 0  # requests being answered now
        self._most_open = 0

    @property
    def most_concurrent(self) -> int:
        """The most requests this server was answering at one time."""
        with self._lock:
            return self._most_open

    # -- configuration (called from the test's thread) ------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: str | None = None,
        last_modified: str | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        gzip: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Serve ``body``; answer 304 when the request's validators match ours."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        response_headers = CIMultiDict[str]({"Content-Type": content_type})
        if etag:
            response_headers["ETag"] = etag
        if last_modified:
            response_headers["Last-Modified"] = last_modified
        if gzip:
            data = gzip_module.compress(data, mtime=0)
            response_headers["Content-Encoding"] = "gzip"
        response_headers.update(headers or {})
        self._set(path, _Static(data, status, response_headers, etag, last_modified, delay))

    def redirect(self, path: str, location: str, status: int = 301) -> None:
        self._set(path, _Redirect(location, status))

    def hang(self, path: str) -> None:
        """Accept the request and never answer (until the server stops)."""
        self._set(path, _Hang())

    def trickle(self, path: str, chunk: bytes = b"<", every: float = 0.2) -> None:
        """Send ``chunk`` every ``every`` seconds, forever: defeats per-read timeouts."""
        self._set(path, _Trickle(chunk, every))

    def endless(self, path: str) -> None:
        """Stream a body as fast as the client reads it, without end."""
        self._set(path, _Endless())

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if path in (r.path, r.path.partition("?")[0])]

    def _set(self, path: str, behaviour: _Behaviour) -> None:
        with self._lock:
            self._routes[path] = behaviour

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        port = future.result(timeout=_START_TIMEOUT)
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
        try:
            future.result(timeout=_START_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_START_TIMEOUT)
            if not self._thread.is_alive():
                self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())

    async def _start(self) -> int:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port: int = self._runner.addresses[0][1]
        return port

    async def _stop(self) -> None:
        assert self._stopping is not None and self._runner is not None
        self._stopping.set()
        await self._runner.cleanup()
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._stopping is not None
        recorded = RecordedRequest(request.path_qs, CIMultiDictProxy(CIMultiDict(request.headers)))
        with self._lock:
            self._requests.append(recorded)
            behaviour = self._routes.get(request.path_qs) or self._routes.get(request.path)
        if behaviour is None:
            return web.Response(status=404, text=f"no route for {request.path_qs}")
        with self._lock:
            self._open += 1
            self._most_open = max(self._most_open, self._open)
        try:
            return await behaviour.respond(request, self._stopping)
        finally:
            with self._lock:
                self._open -= 1


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A running ``FeedServer``, stopped (hanging handlers released) after the test."""
    server = FeedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
