"""Every aiohttp client error has a decided message (in the style of httpx's mapping tests).

``_client_error_message`` maps aiohttp's errors to messages that say what to check. Each
``aiohttp.ClientError`` class aiohttp defines is either mapped to a specific message here or
listed in GENERIC as falling to the generic branch on purpose, so a class added by a new
aiohttp fails ``test_every_aiohttp_client_error_is_decided`` until someone decides.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from ipaddress import ip_address

import aiohttp
import pytest
from aiohttp import client_exceptions
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from monitor.feeds.fetch import FetchOptions, _client_error_message
from monitor.feeds.guard import AddressRefusedError

URL_ = URL("http://feeds.example:8080/rss")
OPTIONS = FetchOptions(connect_timeout=7, read_timeout=11)
KEY = ConnectionKey("feeds.example", 8080, False, True, None, None, None)
REQUEST = aiohttp.RequestInfo(URL_, "GET", CIMultiDictProxy(CIMultiDict()), URL_)
INVALID = "feeds.example sent an invalid HTTP response (Bad status line); tell the feed's operator"


def response_error(cls: type[aiohttp.ClientResponseError]) -> aiohttp.ClientError:
    return cls(REQUEST, (), status=400, message="Bad status line: b'\\x16\\x03rest'")


# class -> (an instance as aiohttp raises it, the message the fetcher gives)
MAPPED: dict[type[aiohttp.ClientError], tuple[Callable[[], aiohttp.ClientError], str]] = {
    aiohttp.ClientConnectorDNSError: (
        lambda: aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")),
        "DNS lookup failed for feeds.example: check the host name in the feed URL",
    ),
    aiohttp.ClientConnectorSSLError: (
        lambda: aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError(1, "wrong version number")),
        "TLS handshake with feeds.example failed; check the URL or the server's certificate",
    ),
    aiohttp.ClientConnectorCertificateError: (
        lambda: aiohttp.ClientConnectorCertificateError(
            KEY, ssl.SSLCertVerificationError(1, "certificate verify failed")
        ),
        "TLS handshake with feeds.example failed; check the URL or the server's certificate",
    ),
    aiohttp.ClientSSLError: (
        lambda: aiohttp.ClientSSLError(KEY, ssl.SSLError(1, "handshake failure")),
        "TLS handshake with feeds.example failed; check the URL or the server's certificate",
    ),
    aiohttp.ClientConnectorError: (
        lambda: aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")),
        "connection refused by feeds.example:8080: check the feed URL or whether the server is up",
    ),
    aiohttp.ClientProxyConnectionError: (
        lambda: aiohttp.ClientProxyConnectionError(KEY, OSError(113, "No route to host")),
        "cannot connect to feeds.example:8080 (No route to host); check the server",
    ),
    client_exceptions.UnixClientConnectorError: (
        lambda: client_exceptions.UnixClientConnectorError(
            "/run/x.sock", KEY, OSError(2, "No such file")
        ),
        "cannot connect to feeds.example:8080 (No such file); check the server",
    ),
    aiohttp.ConnectionTimeoutError: (
        lambda: aiohttp.ConnectionTimeoutError("Connection timeout to host"),
        "connect timed out after 7 s (raise MONITOR_CONNECT_TIMEOUT or check the server)",
    ),
    aiohttp.SocketTimeoutError: (
        lambda: aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        "no data for 11 s (raise MONITOR_READ_TIMEOUT or check the server)",
    ),
    aiohttp.ServerDisconnectedError: (
        lambda: aiohttp.ServerDisconnectedError(),
        "feeds.example closed the connection without a full answer; it will be retried",
    ),
    aiohttp.ClientPayloadError: (
        lambda: aiohttp.ClientPayloadError("Response payload is not completed"),
        "the body from feeds.example was cut short or malformed; it will be retried",
    ),
    aiohttp.ClientResponseError: (lambda: response_error(aiohttp.ClientResponseError), INVALID),
    aiohttp.ContentTypeError: (lambda: response_error(aiohttp.ContentTypeError), INVALID),
    aiohttp.TooManyRedirects: (lambda: response_error(aiohttp.TooManyRedirects), INVALID),
    aiohttp.ClientHttpProxyError: (lambda: response_error(aiohttp.ClientHttpProxyError), INVALID),
    aiohttp.WSServerHandshakeError: (
        lambda: response_error(aiohttp.WSServerHandshakeError),
        INVALID,
    ),
}

# Classes that fall to "HTTP request to ... failed (Class: text); check the feed URL" on
# purpose, each with why a specific message is not worth having.
GENERIC: dict[type[aiohttp.ClientError], Callable[[], aiohttp.ClientError]] = {
    # Bases: aiohttp raises their subclasses, which are mapped above.
    aiohttp.ClientError: lambda: aiohttp.ClientError("boom"),
    aiohttp.ClientConnectionError: lambda: aiohttp.ClientConnectionError("boom"),
    aiohttp.ClientOSError: lambda: aiohttp.ClientOSError(104, "boom"),
    aiohttp.ServerConnectionError: lambda: aiohttp.ServerConnectionError("boom"),
    aiohttp.ServerTimeoutError: lambda: aiohttp.ServerTimeoutError("boom"),
    aiohttp.ClientConnectionResetError: lambda: aiohttp.ClientConnectionResetError("boom"),
    # The fetcher checks the URL and each redirect target itself before aiohttp sees them
    # (Fetcher._check_target), so these only show up for a URL that check let through.
    aiohttp.InvalidURL: lambda: aiohttp.InvalidURL("boom"),
    aiohttp.InvalidUrlClientError: lambda: aiohttp.InvalidUrlClientError("boom"),
    aiohttp.InvalidUrlRedirectClientError: lambda: aiohttp.InvalidUrlRedirectClientError("boom"),
    aiohttp.NonHttpUrlClientError: lambda: aiohttp.NonHttpUrlClientError("boom"),
    aiohttp.NonHttpUrlRedirectClientError: lambda: aiohttp.NonHttpUrlRedirectClientError("boom"),
    aiohttp.RedirectClientError: lambda: aiohttp.RedirectClientError("boom"),
    # Features the fetcher does not use: certificate pinning, request bodies.
    aiohttp.ServerFingerprintMismatch: lambda: aiohttp.ServerFingerprintMismatch(
        b"a", b"b", "feeds.example", 8080
    ),
    aiohttp.UploadAbortedError: lambda: aiohttp.UploadAbortedError("boom"),
}


def aiohttp_client_errors() -> set[type[aiohttp.ClientError]]:
    def walk(cls: type[aiohttp.ClientError]) -> Iterator[type[aiohttp.ClientError]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from walk(sub)

    return {cls for cls in walk(aiohttp.ClientError) if cls.__module__.startswith("aiohttp")}


def test_every_aiohttp_client_error_is_decided() -> None:
    assert not set(MAPPED) & set(GENERIC)
    assert aiohttp_client_errors() - set(MAPPED) - set(GENERIC) == set(), (
        "a new aiohttp error class: map it in _client_error_message or list it in GENERIC"
    )
    assert set(MAPPED) | set(GENERIC) <= aiohttp_client_errors()


@pytest.mark.parametrize(("cls", "case"), MAPPED.items(), ids=[cls.__name__ for cls in MAPPED])
def test_a_mapped_error_gets_its_message(
    cls: type[aiohttp.ClientError], case: tuple[Callable[[], aiohttp.ClientError], str]
) -> None:
    make, message = case
    error = make()
    assert type(error) is cls
    assert _client_error_message(URL_, error, OPTIONS) == message


@pytest.mark.parametrize(("cls", "make"), GENERIC.items(), ids=[cls.__name__ for cls in GENERIC])
def test_an_unmapped_error_gets_the_generic_message(
    cls: type[aiohttp.ClientError], make: Callable[[], aiohttp.ClientError]
) -> None:
    error = make()
    assert type(error) is cls
    assert _client_error_message(URL_, error, OPTIONS) == (
        f"HTTP request to feeds.example failed ({cls.__name__}: {error}); check the feed URL"
    )


def test_a_refused_address_found_by_dns_is_reported_as_the_guard_says() -> None:
    refused = AddressRefusedError("feeds.example", ip_address("10.0.0.1"))
    error = aiohttp.ClientConnectorDNSError(KEY, refused)
    assert _client_error_message(URL_, error, OPTIONS) == str(refused)
