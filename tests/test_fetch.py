"""The feed fetcher against a real local HTTP server and real aiohttp."""

from __future__ import annotations

import asyncio
import socket
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from monitor.config import Settings
from monitor.errors import MAX_MESSAGE, FetchError
from monitor.feeds.fetch import Fetcher, FetchOptions, FetchRequest, FetchResult
from tests.support.feed_server import FeedServer
from tests.support.raw_server import RawServer

LOCAL = FetchOptions(allow_private_addresses=True)
FIX = "set MONITOR_ALLOW_PRIVATE_ADDRESSES=true or add it to MONITOR_ALLOWED_NETWORKS"
RSS = '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
LAST_MODIFIED = "Tue, 03 Mar 2026 10:00:00 GMT"


async def fetch(url: str, options: FetchOptions = LOCAL, **validators: str) -> FetchResult:
    async with Fetcher(options) as fetcher:
        return await fetcher.fetch(FetchRequest(url, **validators))


async def fetch_error(url: str, options: FetchOptions = LOCAL) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetch(url, options)
    assert caught.value.url == url
    return caught.value


def port_of(server: FeedServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


@pytest.fixture
def listener_on_127_0_0_2() -> Iterator[socket.socket]:
    """A listening socket nobody may connect to; tests check its queue stays empty."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.2", 0))
    sock.listen(8)
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def assert_never_contacted(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        connection, _ = sock.accept()
        connection.close()


# -- success -------------------------------------------------------------------------


async def test_200_with_etag_and_last_modified(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", RSS, etag='"v1"', last_modified=LAST_MODIFIED)
    result = await fetch(feed_server.url("/feed.xml"))
    assert result == FetchResult(
        url=feed_server.url("/feed.xml"),
        final_url=feed_server.url("/feed.xml"),
        moved_to=None,
        status=200,
        body=RSS.encode(),
        headers=result.headers,
        etag='"v1"',
        last_modified=LAST_MODIFIED,
        elapsed=result.elapsed,
    )
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert all(key == key.lower() for key in result.headers)
    assert not result.not_modified
    assert result.elapsed > 0
    (request,) = feed_server.requests_for("/feed.xml")
    assert request.headers["User-Agent"] == "media-monitor/0.1.0 (self-hosted news alerting)"
    assert request.headers["Accept-Encoding"] == "gzip, deflate"
    assert "If-None-Match" not in request.headers
    assert "If-Modified-Since" not in request.headers


async def test_second_fetch_is_conditional_and_gets_304(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", RSS, etag='"v1"', last_modified=LAST_MODIFIED)
    async with Fetcher(LOCAL) as fetcher:
        first = await fetcher.fetch(FetchRequest(feed_server.url("/feed.xml")))
        second = await fetcher.fetch(
            FetchRequest(first.url, etag=first.etag, last_modified=first.last_modified)
        )
    assert second.status == 304
    assert second.not_modified
    assert second.body is None
    assert (second.etag, second.last_modified) == ('"v1"', LAST_MODIFIED)
    conditional = feed_server.requests_for("/feed.xml")[1].headers
    assert conditional["If-None-Match"] == '"v1"'
    assert conditional["If-Modified-Since"] == LAST_MODIFIED


async def test_if_modified_since_alone_gets_304(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", RSS, last_modified=LAST_MODIFIED)
    result = await fetch(feed_server.url("/feed.xml"), last_modified=LAST_MODIFIED)
    assert (result.status, result.body, result.last_modified) == (304, None, LAST_MODIFIED)


async def test_304_without_validators_carries_the_request_ones_over(
    feed_server: FeedServer,
) -> None:
    feed_server.add("/bare-304", b"", status=304)
    result = await fetch(feed_server.url("/bare-304"), etag='"mine"', last_modified=LAST_MODIFIED)
    assert (result.status, result.etag, result.last_modified) == (304, '"mine"', LAST_MODIFIED)


async def test_304_with_new_validators_replaces_them(feed_server: FeedServer) -> None:
    feed_server.add("/new-304", b"", status=304, etag='"new"')
    result = await fetch(feed_server.url("/new-304"), etag='"old"', last_modified=LAST_MODIFIED)
    assert (result.etag, result.last_modified) == ('"new"', LAST_MODIFIED)


async def test_gzip_body_is_decoded(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", RSS * 50, gzip=True)
    result = await fetch(feed_server.url("/feed.xml"))
    assert result.body == (RSS * 50).encode()
    # The body is decoded: headers describing the encoded bytes would mislead a parser.
    assert "content-encoding" not in result.headers
    assert "content-length" not in result.headers


async def test_deflate_body_is_decoded(feed_server: FeedServer) -> None:
    feed_server.add(
        "/feed.xml", zlib.compress(RSS.encode()), headers={"Content-Encoding": "deflate"}
    )
    assert (await fetch(feed_server.url("/feed.xml"))).body == RSS.encode()


async def test_a_body_exactly_at_the_cap_is_accepted(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", b"x" * 2048)
    result = await fetch(
        feed_server.url("/feed.xml"), FetchOptions(allow_private_addresses=True, max_bytes=2048)
    )
    assert result.body == b"x" * 2048


async def test_no_cookies_are_kept_between_feeds(feed_server: FeedServer) -> None:
    feed_server.add("/a.xml", RSS, headers={"Set-Cookie": "session=secret; Path=/"})
    feed_server.add("/b.xml", RSS)
    async with Fetcher(LOCAL) as fetcher:
        await fetcher.fetch(FetchRequest(feed_server.url("/a.xml")))
        await fetcher.fetch(FetchRequest(feed_server.url("/b.xml")))
    assert "Cookie" not in feed_server.requests_for("/b.xml")[0].headers


async def test_concurrency_is_limited_and_waiting_does_not_spend_the_deadline(
    feed_server: FeedServer,
) -> None:
    for n in range(4):
        feed_server.add(f"/slow{n}.xml", RSS, delay=0.3)
    options = FetchOptions(allow_private_addresses=True, concurrency=2, deadline=0.5)
    started = time.monotonic()
    async with Fetcher(options) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(FetchRequest(feed_server.url(f"/slow{n}.xml"))) for n in range(4))
        )
    took = time.monotonic() - started
    assert [result.status for result in results] == [200] * 4
    # Two waves of 0.3 s: more than one wave proves the limit, and the second wave
    # succeeds although the whole run exceeds each feed's 0.5 s deadline.
    assert took > 0.55


def test_options_from_settings() -> None:
    settings = Settings.model_validate(
        {
            "MONITOR_CONNECT_TIMEOUT": 3,
            "MONITOR_READ_TIMEOUT": 4,
            "MONITOR_FEED_DEADLINE": 20,
            "MONITOR_MAX_FEED_BYTES": 4096,
            "MONITOR_MAX_REDIRECTS": 2,
            "MONITOR_CONCURRENCY": 7,
            "MONITOR_USER_AGENT": "ua/1",
            "MONITOR_ALLOW_PRIVATE_ADDRESSES": True,
            "MONITOR_ALLOWED_NETWORKS": "10.0.0.0/8, 192.168.0.0/16",
        }
    )
    assert FetchOptions.from_settings(settings) == FetchOptions(
        connect_timeout=3,
        read_timeout=4,
        deadline=20,
        max_bytes=4096,
        max_redirects=2,
        concurrency=7,
        user_agent="ua/1",
        allow_private_addresses=True,
        allowed_networks=("10.0.0.0/8", "192.168.0.0/16"),
    )
    assert FetchOptions.from_settings(Settings()) == FetchOptions()


# -- size cap --------------------------------------------------------------------------


async def test_oversized_plain_body(feed_server: FeedServer) -> None:
    feed_server.add("/big.xml", b"x" * 2049)
    error = await fetch_error(
        feed_server.url("/big.xml"), FetchOptions(allow_private_addresses=True, max_bytes=2048)
    )
    assert error.message == "body exceeds 2048 bytes (MONITOR_MAX_FEED_BYTES)"


async def test_gzip_bomb_is_stopped_without_inflating_it(feed_server: FeedServer) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    megabyte = bytes(1024 * 1024)
    bomb = b"".join(compressor.compress(megabyte) for _ in range(64)) + compressor.flush()
    assert len(bomb) < 100 * 1024  # 64 MiB of zeros in under 100 KiB
    feed_server.add("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    options = FetchOptions(allow_private_addresses=True, max_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        error = await fetch_error(feed_server.url("/bomb.xml"), options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.message == "body exceeds 1048576 bytes (MONITOR_MAX_FEED_BYTES)"
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while refusing a 64 MiB bomb"


async def test_endless_body_is_cut_at_the_cap(feed_server: FeedServer) -> None:
    feed_server.endless("/endless.xml")
    error = await fetch_error(
        feed_server.url("/endless.xml"),
        FetchOptions(allow_private_addresses=True, max_bytes=1024 * 1024),
    )
    assert error.message == "body exceeds 1048576 bytes (MONITOR_MAX_FEED_BYTES)"


async def test_invalid_gzip_data(feed_server: FeedServer) -> None:
    feed_server.add("/bad.xml", b"this is not gzip", headers={"Content-Encoding": "gzip"})
    error = await fetch_error(feed_server.url("/bad.xml"))
    assert error.message.startswith("body is not valid gzip data (")
    assert error.message.endswith("); tell the feed's operator")


async def test_unrequested_content_encoding(feed_server: FeedServer) -> None:
    feed_server.add("/br.xml", b"\x0b", headers={"Content-Encoding": "br"})
    error = await fetch_error(feed_server.url("/br.xml"))
    assert error.message == (
        "unsupported Content-Encoding 'br' (we ask for gzip or deflate); tell the feed's operator"
    )


# -- timeouts --------------------------------------------------------------------------


async def test_hanging_server_hits_the_read_timeout(feed_server: FeedServer) -> None:
    feed_server.hang("/hang.xml")
    options = FetchOptions(allow_private_addresses=True, read_timeout=0.5, deadline=5)
    started = time.monotonic()
    error = await fetch_error(feed_server.url("/hang.xml"), options)
    assert error.message == "no data for 0.5 s (raise MONITOR_READ_TIMEOUT or check the server)"
    assert time.monotonic() - started > 0.4


async def test_hanging_server_hits_the_deadline(feed_server: FeedServer) -> None:
    feed_server.hang("/hang.xml")
    options = FetchOptions(allow_private_addresses=True, read_timeout=30, deadline=0.5)
    started = time.monotonic()
    error = await fetch_error(feed_server.url("/hang.xml"), options)
    assert (
        error.message == "timed out after 0.5 s (raise MONITOR_FEED_DEADLINE or check the server)"
    )
    assert time.monotonic() - started > 0.4


async def test_trickling_server_hits_the_deadline(feed_server: FeedServer) -> None:
    # Each read succeeds within the read timeout, so only the deadline can stop it.
    feed_server.trickle("/trickle.xml", every=0.1)
    options = FetchOptions(allow_private_addresses=True, read_timeout=0.5, deadline=1)
    started = time.monotonic()
    error = await fetch_error(feed_server.url("/trickle.xml"), options)
    assert error.message == "timed out after 1 s (raise MONITOR_FEED_DEADLINE or check the server)"
    assert time.monotonic() - started > 0.9


async def test_deadline_covers_the_whole_redirect_chain(feed_server: FeedServer) -> None:
    for n in range(3):
        feed_server.add(
            f"/step{n}", b"", status=302, headers={"Location": f"/step{n + 1}"}, delay=0.3
        )
    feed_server.add("/step3", RSS)
    options = FetchOptions(allow_private_addresses=True, read_timeout=5, deadline=0.7)
    error = await fetch_error(feed_server.url("/step0"), options)
    assert (
        error.message == "timed out after 0.7 s (raise MONITOR_FEED_DEADLINE or check the server)"
    )
    assert feed_server.requests_for("/step3") == []


async def test_unanswered_connect_hits_the_connect_timeout() -> None:
    # A listener with a full accept queue: the kernel drops further SYNs, so connecting
    # to it hangs the way an unreachable feed server does.
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))
        with socket.socket() as probe:
            probe.settimeout(0.2)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                pass
            else:
                pytest.skip("this kernel accepts past a full listen queue")
        options = FetchOptions(allow_private_addresses=True, connect_timeout=0.3, deadline=3)
        started = time.monotonic()
        error = await fetch_error(f"http://127.0.0.1:{port}/feed.xml", options)
    assert error.message == (
        "connect timed out after 0.3 s (raise MONITOR_CONNECT_TIMEOUT or check the server)"
    )
    assert time.monotonic() - started > 0.25


# -- redirects -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_chain_is_followed(feed_server: FeedServer, status: int) -> None:
    feed_server.redirect("/old", "/middle", status)  # relative
    feed_server.redirect("/middle", "new.xml#fragment", status)  # relative to the path
    feed_server.redirect("/new.xml", feed_server.url("/feeds/final.xml"), status)  # absolute
    feed_server.add("/feeds/final.xml", RSS, etag='"f"')
    result = await fetch(feed_server.url("/old"), etag='"e"')
    assert (result.url, result.final_url) == (
        feed_server.url("/old"),
        feed_server.url("/feeds/final.xml"),
    )
    assert (result.status, result.body, result.etag) == (200, RSS.encode(), '"f"')
    assert [r.path for r in feed_server.requests] == [
        "/old",
        "/middle",
        "/new.xml",
        "/feeds/final.xml",
    ]
    # Validators go with every hop: they belong to the feed, wherever it now lives.
    assert all(r.headers["If-None-Match"] == '"e"' for r in feed_server.requests)


async def test_redirect_loop(feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b")
    feed_server.redirect("/b", feed_server.url("/a"))
    error = await fetch_error(feed_server.url("/a"))
    a, b = feed_server.url("/a"), feed_server.url("/b")
    assert error.message == f"redirect loop: {a} -> {b} -> {a}"
    assert [r.path for r in feed_server.requests] == ["/a", "/b"]


async def test_too_many_redirects(feed_server: FeedServer) -> None:
    for n in range(6):
        feed_server.redirect(f"/r{n}", f"/r{n + 1}")
    feed_server.add("/r6", RSS)
    options = FetchOptions(allow_private_addresses=True, max_redirects=5)
    error = await fetch_error(feed_server.url("/r0"), options)
    assert error.message == "more than 5 redirects (MONITOR_MAX_REDIRECTS)"
    assert feed_server.requests_for("/r6") == []
    # Exactly five is fine.
    assert (await fetch(feed_server.url("/r1"), options)).body == RSS.encode()


async def test_redirect_without_location(feed_server: FeedServer) -> None:
    feed_server.add("/moved", b"", status=302)
    error = await fetch_error(feed_server.url("/moved"))
    assert error.message == "HTTP 302 Found without a Location header; tell the feed's operator"
    assert error.status == 302


async def test_redirect_to_a_refused_literal_is_never_contacted(
    feed_server: FeedServer, listener_on_127_0_0_2: socket.socket
) -> None:
    port = listener_on_127_0_0_2.getsockname()[1]
    feed_server.redirect("/go", f"http://127.0.0.2:{port}/feed.xml")
    # Short limits, so that a regression fails fast instead of waiting on the listener.
    options = FetchOptions(allowed_networks=("127.0.0.1/32",), read_timeout=0.5, deadline=2)
    error = await fetch_error(feed_server.url("/go"), options)
    assert error.message == f"refused: 127.0.0.2 is a loopback address; {FIX}"
    await asyncio.sleep(0.05)  # a connect attempt, had there been one, would have landed
    assert_never_contacted(listener_on_127_0_0_2)


async def test_redirect_to_a_private_address_is_refused(feed_server: FeedServer) -> None:
    feed_server.redirect("/go", "http://10.0.0.1/feed.xml")
    options = FetchOptions(allowed_networks=("127.0.0.1/32",), connect_timeout=0.2, deadline=2)
    error = await fetch_error(feed_server.url("/go"), options)
    assert error.message == f"refused: 10.0.0.1 is a private address; {FIX}"


async def test_redirect_to_a_name_is_checked_on_its_address(feed_server: FeedServer) -> None:
    # Only 127.0.0.1 is allowed; "localhost" passes because the resolver sees 127.0.0.1.
    target = f"http://localhost:{port_of(feed_server)}/feed.xml"
    feed_server.redirect("/go", target)
    feed_server.add("/feed.xml", RSS)
    result = await fetch(feed_server.url("/go"), FetchOptions(allowed_networks=("127.0.0.1/32",)))
    assert (result.final_url, result.body) == (target, RSS.encode())


async def test_redirect_to_a_non_http_scheme(feed_server: FeedServer) -> None:
    feed_server.redirect("/go", "file:///etc/passwd")
    error = await fetch_error(feed_server.url("/go"))
    assert error.message == "unsupported URL scheme 'file' (only http and https)"


# -- refusals and failures -------------------------------------------------------------


async def test_loopback_is_refused_unless_allowed(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", RSS)
    error = await fetch_error(feed_server.url("/feed.xml"), FetchOptions())
    assert error.message == f"refused: 127.0.0.1 is a loopback address; {FIX}"
    assert error.status is None
    assert feed_server.requests == []


async def test_a_name_resolving_to_loopback_is_refused_before_connecting(
    feed_server: FeedServer,
) -> None:
    feed_server.add("/feed.xml", RSS)
    error = await fetch_error(f"http://localhost:{port_of(feed_server)}/feed.xml", FetchOptions())
    assert error.message == f"refused: localhost resolves to 127.0.0.1, a loopback address; {FIX}"
    assert feed_server.requests == []


async def test_a_name_is_allowed_when_its_address_is_in_allowed_networks(
    feed_server: FeedServer,
) -> None:
    feed_server.add("/feed.xml", RSS)
    options = FetchOptions(allowed_networks=("127.0.0.1/32",))
    result = await fetch(f"http://localhost:{port_of(feed_server)}/feed.xml", options)
    assert result.body == RSS.encode()


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "HTTP 404 Not Found: check the feed URL in the feeds file"),
        (410, "HTTP 410 Gone: the feed was removed; delete it from the feeds file"),
        (
            500,
            "HTTP 500 Internal Server Error: the feed server failed; "
            "it will be retried, tell its operator if it persists",
        ),
        (
            403,
            "HTTP 403 Forbidden: access denied; check the feed URL or whether the feed needs "
            "credentials",
        ),
        (429, "HTTP 429 Too Many Requests: rate limited; poll this feed less often"),
        (
            204,
            "HTTP 204 No Content: expected 200 with a feed body; "
            "check the feed URL in the feeds file",
        ),
        (
            599,
            "HTTP 599: the feed server failed; "
            "it will be retried, tell its operator if it persists",
        ),
    ],
)
async def test_http_error_statuses(feed_server: FeedServer, status: int, message: str) -> None:
    feed_server.add("/feed.xml", b"", status=status)
    error = await fetch_error(feed_server.url("/feed.xml"))
    assert (error.message, error.status) == (message, status)
    assert str(error) == f"{feed_server.url('/feed.xml')}: {message}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "unsupported URL scheme 'file' (only http and https)"),
        ("ftp://127.0.0.1/feed.xml", "unsupported URL scheme 'ftp' (only http and https)"),
        ("feeds/news.xml", "invalid URL 'feeds/news.xml': it must start with http://"),
        ("http:///feed.xml", "invalid URL 'http:///feed.xml': it has no host"),
    ],
)
async def test_bad_urls(url: str, message: str) -> None:
    error = await fetch_error(url)
    assert error.message == message


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now.
    error = await fetch_error(f"http://127.0.0.1:{port}/feed.xml")
    assert error.message == (
        f"connection refused by 127.0.0.1:{port}: check the feed URL or whether the server is up"
    )


async def test_fetch_outside_the_context_manager_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        await Fetcher(LOCAL).fetch(FetchRequest("http://127.0.0.1/"))


# -- a host's own signals ------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308])
async def test_a_permanent_redirect_says_where_the_feed_moved(
    feed_server: FeedServer, status: int
) -> None:
    feed_server.redirect("/old.xml", "/new.xml", status)
    feed_server.add("/new.xml", RSS)
    result = await fetch(feed_server.url("/old.xml"))
    assert (result.moved_to, result.final_url) == ((feed_server.url("/new.xml"),) * 2)


@pytest.mark.parametrize("status", [302, 303, 307])
async def test_a_temporary_redirect_moves_nothing(feed_server: FeedServer, status: int) -> None:
    feed_server.redirect("/old.xml", "/new.xml", status)
    feed_server.add("/new.xml", RSS)
    result = await fetch(feed_server.url("/old.xml"))
    assert (result.moved_to, result.final_url) == (None, feed_server.url("/new.xml"))


async def test_only_the_leading_permanent_hops_move_the_feed(feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b", 301)
    feed_server.redirect("/b", "/c", 302)  # /b is where the feed lives; /c is for today
    feed_server.redirect("/c", "/d", 301)
    feed_server.add("/d", RSS)
    assert (await fetch(feed_server.url("/a"))).moved_to == feed_server.url("/b")
    # After a temporary hop, a 301 moves the temporary address, not the feed.
    assert (await fetch(feed_server.url("/c"))).moved_to == feed_server.url("/d")
    feed_server.redirect("/t", "/c", 307)
    assert (await fetch(feed_server.url("/t"))).moved_to is None


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (503, "120", "120"),
        (429, "Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:00 GMT"),
        (429, None, None),
        (404, "120", None),  # only 429 and 503 ask us to wait
        (503, "9" * 5000, "9" * 97 + "..."),  # the header is untrusted text: bounded
    ],
    ids=["seconds", "http-date", "none", "not-429-or-503", "long"],
)
async def test_retry_after_travels_with_the_error(
    feed_server: FeedServer, status: int, header: str | None, expected: str | None
) -> None:
    headers = {} if header is None else {"Retry-After": header}
    feed_server.add("/feed.xml", b"", status=status, headers=headers)
    error = await fetch_error(feed_server.url("/feed.xml"))
    assert (error.status, error.retry_after) == (status, expected)


# -- error text is bounded: a server's bytes never fill a message ---------------------

Z = b"Z" * 100_000
OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"


def moved(status: int, location: bytes) -> bytes:
    return b"HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (status, location)


async def test_a_lying_content_length_is_one_short_line(raw_server: RawServer) -> None:
    # The defect of issue #8: aiohttp's parser quoted the 100 KB after the declared body.
    raw_server.reply("/feed.xml", OK_HEAD + b"Content-Length: 1000\r\n\r\n" + b"A" * 1000 + Z)
    error = await fetch_error(raw_server.url("/feed.xml"))
    assert error.message == (
        "127.0.0.1 sent an invalid HTTP response (Bad status line); tell the feed's operator"
    )


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(OK_HEAD + b"Content-Length: 10\r\n\r\n0123456789" + Z, id="content-length"),
        pytest.param(
            OK_HEAD + b"Content-Length: 10\r\n\r\n0123456789" + bytes(range(256)) * 400,
            id="content-length-binary",
        ),
        pytest.param(b"HTTZ/1.1 200 " + Z, id="status-line"),
        pytest.param(OK_HEAD + b"X-Junk: " + Z + b"\r\n\r\n", id="header-too-long"),
        pytest.param(
            OK_HEAD + b"Content-Encoding: " + Z[:5000] + b"\r\nContent-Length: 3\r\n\r\nabc",
            id="content-encoding",
        ),
        pytest.param(
            OK_HEAD + b"Content-Encoding: gzip\r\nContent-Length: 100000\r\n\r\n" + Z, id="gzip"
        ),
        pytest.param(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + Z, id="chunked"),
        pytest.param(moved(301, b"/loop?" + Z[:5000]), id="redirect-loop"),
        pytest.param(moved(302, b"http://[" + Z[:5000]), id="invalid-location"),
        pytest.param(moved(302, Z[:5000] + b":x"), id="location-scheme"),
        pytest.param(moved(302, b"/" + Z[:5000]), id="location-not-found"),
        pytest.param(b"HTTP/1.1 503 Busy\r\nRetry-After: " + Z[:5000] + b"\r\n\r\n", id="503"),
    ],
)
async def test_every_error_message_is_bounded(raw_server: RawServer, reply: bytes) -> None:
    raw_server.reply("/feed.xml", reply)
    raw_server.reply("/loop?" + "Z" * 5000, moved(301, b"/feed.xml"))
    error = await fetch_error(raw_server.url("/feed.xml"))
    assert len(error.message) <= MAX_MESSAGE
    assert "Z" * 201 not in error.message.upper()  # a quoted URL is cut at 200 characters
    assert error.message.isprintable()
    assert error.retry_after is None or len(error.retry_after) <= 100
