"""Fetch feed bodies over HTTP(S) with hard limits; never parse them.

Our own client rather than feedparser's: feedparser follows redirects to internal
addresses, reads ``file://`` paths and has no timeout. Here every hop is checked
(scheme, loops, address guard), the whole fetch has a deadline, the decoded body has a
size cap enforced while reading, and every expected failure becomes one ``FetchError``
whose message says what to do. Anything else is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from types import TracebackType

import aiohttp
from aiohttp.resolver import DefaultResolver
from multidict import CIMultiDictProxy
from yarl import URL

from monitor.config import Settings
from monitor.errors import FetchError, shorten
from monitor.feeds.guard import AddressPolicy, AddressRefusedError, GuardedResolver

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})  # the feed moved: the store fetches the new URL from now on
_RETRY_AFTER = frozenset({429, 503})  # statuses whose Retry-After the scheduler honours
_CHUNK = 64 * 1024
_KNOWN_URLS = 2**16  # parsed feed URLs kept: more than one machine's feeds
_SHOWN_URL = 200  # longest URL quoted in a message: Location headers are untrusted text
_SHOWN_DETAIL = 100  # longest library or header text quoted: it may quote the server's bytes
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
# The body we return is decoded, so these would describe bytes the caller never sees.
_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """Limits and identity for one poll cycle's fetches; see the MONITOR_* settings."""

    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    # Total seconds for one feed, all redirects included: Miniflux's 20 s. A healthy feed
    # server answers in well under a second, and one that takes longer is retried next
    # cycle, while a drip-feeding server can hold a cycle only this long.
    deadline: float = 20.0
    max_bytes: int = 10 * 1024 * 1024  # cap on the DECODED (gunzipped) body
    max_redirects: int = 5
    concurrency: int = 50  # global limit of simultaneous fetches
    user_agent: str = "media-monitor/0.1.0 (self-hosted news alerting)"
    allow_private_addresses: bool = False
    allowed_networks: tuple[str, ...] = ()  # CIDRs allowed although non-public

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchOptions:
        return cls(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=settings.feed_deadline,
            max_bytes=settings.max_feed_bytes,
            max_redirects=settings.max_redirects,
            concurrency=settings.concurrency,
            user_agent=settings.user_agent,
            allow_private_addresses=settings.allow_private_addresses,
            allowed_networks=settings.allowed_networks,
        )


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """A feed URL and the validators stored from its last successful fetch."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A 200 with its decoded body, or a 304 with none."""

    url: str  # as requested
    final_url: str  # after redirects
    moved_to: str | None  # where the leading 301/308 hops led, if the first hop was one
    status: int  # 200 or 304 (other statuses raise FetchError)
    body: bytes | None  # None on 304
    headers: Mapping[str, str]  # final response headers, keys lower-case
    etag: str | None  # from this response, or carried over from the request on 304
    last_modified: str | None
    elapsed: float  # seconds

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher:
    """Async context manager owning one aiohttp.ClientSession for a whole poll cycle.

    One session means keep-alive connections are reused across feeds; its cookie jar
    keeps nothing, so one feed's cookies never reach another.
    """

    def __init__(self, options: FetchOptions) -> None:
        self._options = options
        self._policy = AddressPolicy.build(
            options.allow_private_addresses, options.allowed_networks
        )
        # The connector limits connections; this also keeps queued feeds from spending
        # their deadline waiting for a free connection.
        self._slots = asyncio.Semaphore(options.concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        # A cycle asks the same questions of every feed on a host: answered once per cycle.
        self._refusals: dict[str, str | None] = {}

    async def __aenter__(self) -> Fetcher:
        options = self._options
        self._resolver = GuardedResolver(DefaultResolver(), self._policy)
        connector = aiohttp.TCPConnector(limit=options.concurrency, resolver=self._resolver)
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,  # we decode ourselves, to cap the decoded size as it grows
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=options.connect_timeout, sock_read=options.read_timeout
            ),
            headers={
                "User-Agent": options.user_agent,
                "Accept": _ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()  # the connector closes only resolvers it made
            self._resolver = None

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """Fetch one feed; raises only ``FetchError`` for anything a feed server can cause."""
        if self._session is None:
            raise RuntimeError("Fetcher.fetch() called outside 'async with Fetcher(...)'")
        deadline = self._options.deadline
        async with self._slots:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                async with asyncio.timeout(deadline):
                    return await self._follow(self._session, request, started)
            except TimeoutError as exc:
                message = (
                    f"timed out after {deadline:g} s "
                    "(raise MONITOR_FEED_DEADLINE or check the server)"
                )
                raise FetchError(request.url, message) from exc

    async def _follow(
        self, session: aiohttp.ClientSession, request: FetchRequest, started: float
    ) -> FetchResult:
        """Request ``request.url``, following redirects by hand so each hop is checked."""
        max_redirects = self._options.max_redirects
        chain = [_parse_url(request.url)]
        headers = _conditional_headers(request)
        # Only an unbroken run of permanent redirects from the start moves the feed: after a
        # temporary hop, a 301 says where the temporary address moved, not the feed.
        moved_to: URL | None = None
        permanent = True
        while True:
            url = chain[-1]
            self._check_target(request.url, url)
            try:
                async with session.get(url, headers=headers, allow_redirects=False) as response:
                    if response.status in _REDIRECTS:
                        next_url = _redirect_target(request.url, url, response)
                        if next_url in chain:
                            hops = " -> ".join(str(hop) for hop in [*chain, next_url])
                            raise FetchError(request.url, f"redirect loop: {_shown(hops)}")
                        if len(chain) > max_redirects:
                            raise FetchError(
                                request.url,
                                f"more than {max_redirects} redirects (MONITOR_MAX_REDIRECTS)",
                            )
                        chain.append(next_url)
                        permanent = permanent and response.status in _PERMANENT
                        if permanent:
                            moved_to = next_url
                        continue
                    if response.status == 304:
                        body = None
                    elif response.status == 200:
                        body = await self._read_body(request.url, response)
                    else:
                        raise FetchError(
                            request.url,
                            _status_message(response.status),
                            response.status,
                            _retry_after(response),
                        )
                    elapsed = asyncio.get_running_loop().time() - started
                    return _result(
                        request,
                        str(url),
                        None if moved_to is None else str(moved_to),
                        response.status,
                        body,
                        response.headers,
                        elapsed,
                    )
            except aiohttp.ClientError as exc:
                raise FetchError(
                    request.url, _client_error_message(url, exc, self._options)
                ) from exc

    def _check_target(self, feed_url: str, url: URL) -> None:
        """Refuse a hop before any connection: wrong scheme, or a refused IP-literal host."""
        if not url.scheme:
            raise FetchError(
                feed_url, f"invalid URL {_shown(str(url))!r}: it must start with http://"
            )
        if url.scheme not in ("http", "https"):
            raise FetchError(
                feed_url, f"unsupported URL scheme {_detail(url.scheme)!r} (only http and https)"
            )
        if not url.host:
            raise FetchError(feed_url, f"invalid URL {_shown(str(url))!r}: it has no host")
        if url.host not in self._refusals:
            self._refusals[url.host] = self._policy.refusal_for_literal(url.host)
        refusal = self._refusals[url.host]
        if refusal is not None:
            raise FetchError(feed_url, shorten(refusal))

    async def _read_body(self, feed_url: str, response: aiohttp.ClientResponse) -> bytes:
        """Read and decode the body in chunks, failing as soon as it passes the cap."""
        cap = self._options.max_bytes
        too_big = f"body exceeds {cap} bytes (MONITOR_MAX_FEED_BYTES)"
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("identity", ""):
            decoder = None
            if (response.content_length or 0) > cap:
                raise FetchError(feed_url, too_big)
        elif encoding in ("gzip", "x-gzip", "deflate"):
            decoder = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
        else:
            raise FetchError(
                feed_url,
                f"unsupported Content-Encoding {_detail(encoding)!r} (we ask for gzip or deflate); "
                "tell the feed's operator",
            )
        parts: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            if decoder is not None:
                try:
                    # max_length bounds the output, so a gzip bomb never inflates past the cap.
                    chunk = decoder.decompress(chunk, cap - size + 1)
                except zlib.error as exc:
                    raise FetchError(
                        feed_url,
                        f"body is not valid {encoding} data ({_detail(str(exc))}); "
                        "tell the feed's operator",
                    ) from exc
            size += len(chunk)
            if size > cap:
                raise FetchError(feed_url, too_big)
            parts.append(chunk)
        return b"".join(parts)


def _conditional_headers(request: FetchRequest) -> dict[str, str]:
    headers = {}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    return headers


@lru_cache(maxsize=_KNOWN_URLS)  # every cycle fetches the same feed URLs again
def _parse_url(feed_url: str) -> URL:
    try:
        return URL(feed_url).with_fragment(None)
    except (ValueError, TypeError) as exc:
        raise FetchError(feed_url, "invalid URL: check the feed URL in the feeds file") from exc


def _redirect_target(feed_url: str, url: URL, response: aiohttp.ClientResponse) -> URL:
    location = response.headers.get("Location")
    if not location:
        raise FetchError(
            feed_url,
            f"{_status_line(response.status)} without a Location header; tell the feed's operator",
            response.status,
        )
    try:
        return url.join(URL(location)).with_fragment(None)
    except (ValueError, TypeError) as exc:
        raise FetchError(
            feed_url, f"redirect to an invalid URL {_shown(location)!r}", response.status
        ) from exc


def _retry_after(response: aiohttp.ClientResponse) -> str | None:
    """The Retry-After header of a 429 or 503, as text the scheduler parses (it knows `now`)."""
    value = response.headers.get("Retry-After")
    if response.status not in _RETRY_AFTER or value is None:
        return None
    return _detail(value)


def _result(
    request: FetchRequest,
    final_url: str,
    moved_to: str | None,
    status: int,
    body: bytes | None,
    raw_headers: CIMultiDictProxy[str],
    elapsed: float,
) -> FetchResult:
    headers: dict[str, str] = {}
    for name, value in raw_headers.items():
        key = name.lower()
        if key not in _DROPPED_HEADERS:
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    etag = headers.get("etag")
    last_modified = headers.get("last-modified")
    if status == 304:
        etag = etag or request.etag
        last_modified = last_modified or request.last_modified
    return FetchResult(
        url=request.url,
        final_url=final_url,
        moved_to=moved_to,
        status=status,
        body=body,
        headers=headers,
        etag=etag,
        last_modified=last_modified,
        elapsed=elapsed,
    )


def _status_line(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"  # the server's own reason phrase is untrusted text


def _status_message(status: int) -> str:
    if status == 410:
        advice = "the feed was removed; delete it from the feeds file"
    elif status in (401, 403):
        advice = "access denied; check the feed URL or whether the feed needs credentials"
    elif status == 429:
        advice = "rate limited; poll this feed less often"
    elif status >= 500:
        advice = "the feed server failed; it will be retried, tell its operator if it persists"
    elif status >= 400:
        advice = "check the feed URL in the feeds file"
    elif status >= 300:
        advice = "not a redirect we can follow; put the final feed URL in the feeds file"
    else:
        advice = "expected 200 with a feed body; check the feed URL in the feeds file"
    return f"{_status_line(status)}: {advice}"


def _client_error_message(url: URL, exc: aiohttp.ClientError, options: FetchOptions) -> str:
    """Turn an aiohttp error into a message naming the cause and what to do."""
    host = _shown(url.host or str(url))
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if isinstance(exc.os_error, AddressRefusedError):
            return shorten(str(exc.os_error))
        return f"DNS lookup failed for {host}: check the host name in the feed URL"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS handshake with {host} failed; check the URL or the server's certificate"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return (
                f"connection refused by {host}:{url.port}: "
                "check the feed URL or whether the server is up"
            )
        reason = _detail(str(exc.os_error.strerror or exc.os_error))
        return f"cannot connect to {host}:{url.port} ({reason}); check the server"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return (
            f"connect timed out after {options.connect_timeout:g} s "
            "(raise MONITOR_CONNECT_TIMEOUT or check the server)"
        )
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return (
            f"no data for {options.read_timeout:g} s "
            "(raise MONITOR_READ_TIMEOUT or check the server)"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{host} closed the connection without a full answer; it will be retried"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the body from {host} was cut short or malformed; it will be retried"
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp's parser quotes the bytes it choked on, which can be the rest of the stream:
        # keep its first line, without the quote.
        reason = _detail(str(exc.message).partition("\n")[0].partition(": b'")[0].rstrip(":"))
        return f"{host} sent an invalid HTTP response ({reason}); tell the feed's operator"
    detail = _detail(f"{type(exc).__name__}: {exc}")
    return f"HTTP request to {host} failed ({detail}); check the feed URL"


def _shown(text: str) -> str:
    return shorten(text, _SHOWN_URL)


def _detail(text: str) -> str:
    return shorten(text.strip(), _SHOWN_DETAIL)
