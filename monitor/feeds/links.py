"""Canonical article links: one spelling per article, so duplicates and alerts agree.

Feeds decorate links with campaign and click-tracking parameters that differ between
feeds and polls. We remove those, normalise what is case-insensitive, and keep
everything that can change which page the server returns (path, other parameters,
their order, route-like fragments). Only http(s) links survive: a ``javascript:`` or
``data:`` link from an untrusted feed must never reach a Slack message.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

# Parameters that identify a campaign, click or subscriber, never the page.
_TRACKING_PREFIX = "utm_"
_TRACKING = frozenset(
    {
        "_ga", "_gl", "_hsenc", "_hsmi", "at_campaign", "at_custom1", "at_custom2",
        "at_custom3", "at_custom4", "at_link_id", "at_link_origin", "at_link_type",
        "at_medium", "at_ptr_name", "at_format", "cmp", "cmpid", "dclid", "fbclid",
        "gbraid", "gclid", "gclsrc", "icid", "igshid", "li_fat_id", "maca", "mc_cid",
        "mc_eid", "mkt_tok", "msclkid", "ns_campaign", "ns_fee", "ns_linkname", "ns_mchannel",
        "ns_source", "ocid", "ref_src", "s_cid", "smid", "traffic_source",
        "ttclid", "twclid", "wbraid", "xtor", "yclid",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A host with one of these is not a host name; it could break out of a Slack link.
_BAD_HOST = frozenset(" \t\r\n<>\"'\\^`{|}%")
# Characters left as they are when percent-encoding: reserved and unreserved ones, and
# "%" so that existing escapes (a %27 apostrophe) are kept exactly.
_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


def canonical_link(url: str) -> str:
    """The canonical spelling of an absolute http(s) URL.

    Tracking parameters are removed (the rest keep their order and spelling), the
    scheme and host are lower-cased, credentials and default ports dropped, and the
    fragment dropped unless it is a route (``#!/`` or ``#/``). Raises ValueError for
    anything that is not an absolute http(s) URL with a host.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:  # a bad IPv6 literal or port
        raise ValueError(f"not a valid URL: {url!r} ({exc})") from exc
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased, without credentials or port
    if scheme not in _DEFAULT_PORTS or not host or not _BAD_HOST.isdisjoint(host):
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = quote(parts.path, safe=_SAFE) or "/"
    query = "&".join(
        quote(pair, safe=_SAFE) for pair in parts.query.split("&") if pair and not _tracks(pair)
    )
    fragment = parts.fragment if parts.fragment.startswith(("!/", "/")) else ""
    return urlunsplit((scheme, netloc, path, query, quote(fragment, safe=_SAFE)))


def absolute_link(href: str | None, base: str) -> str | None:
    """``href`` resolved against ``base`` and made canonical; None unless it is http(s)."""
    if not href or not href.strip():
        return None
    try:
        return canonical_link(urljoin(base, href.strip()))
    except ValueError:
        return None


def _tracks(pair: str) -> bool:
    name = unquote_plus(pair.partition("=")[0]).strip().lower()
    return name in _TRACKING or name.startswith(_TRACKING_PREFIX)
