"""A local stand-in for Slack's Web API and incoming webhooks, as a pytest plugin.

It speaks enough of the real thing for slack-sdk pointed at ``server.api_url``:
``chat.postMessage`` (JSON or form body), ``auth.test`` and one incoming webhook
at ``server.webhook_url``. Like Slack it answers HTTP 200 with ``ok: false`` for
API errors, enforces the Block Kit limits our renderer must respect (50 blocks, 3,000
characters a section or context element, 150 a header, 40,000 in all the message's texts:
``invalid_blocks`` or ``msg_too_long`` as Slack answers), and can be
told to fail: ``fail_next(n, status=429, retry_after=1)``, ``set_down(True)``, and
to rate-limit each channel as Slack does: ``limit_rate(per_second=1, burst=3)`` answers
429 with a Retry-After to a message that comes too soon (``rate_limited`` counts them).
Runs on 127.0.0.1 in a daemon thread; every piece of state is behind one lock.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

TOKEN = "xoxb-test-token"
WEBHOOK_PATH = "/services/T000/B000/XXXX"
MAX_BLOCKS = 50
MAX_TEXT = 40_000
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_BODY = 1024 * 1024
BLOCK_TYPES = {"header", "section", "context", "divider"}


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """A message the server accepted (through the API or the webhook)."""

    channel: str  # channel ID
    text: str | None
    blocks: tuple[Any, ...]
    unfurl_links: bool | None
    unfurl_media: bool | None
    ts: str | None
    via: str  # "api" or "webhook"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """Any request the server saw, with its monotonic arrival time and the answer's status."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    at: float
    status: int


@dataclass(slots=True)
class _Fault:
    remaining: int
    status: int
    retry_after: float | None
    body: str | None = None


@dataclass(slots=True)
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: list[PostedMessage] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    down: bool = False
    ts_counter: int = 0
    rate: tuple[float, int] | None = None  # messages per second per channel, burst
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at
    rate_limited: int = 0


class SlackServer:
    """The running server: its URLs, its accepted messages and requests, its fault switches."""

    def __init__(self, channels: Mapping[str, str] | None = None) -> None:
        self.token = TOKEN
        # name -> ID; a channel may be addressed as "name", "#name" or its ID.
        self.channels = dict(channels or {"alerts": "C0ALERTS", "news": "C0NEWS"})
        self.webhook_channel = next(iter(self.channels.values()))
        self._state = _State()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    @property
    def messages(self) -> tuple[PostedMessage, ...]:
        with self._state.lock:
            return tuple(self._state.messages)

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        with self._state.lock:
            return tuple(self._state.requests)

    def fail_next(
        self, n: int, status: int = 429, retry_after: float | None = 1, body: str | None = None
    ) -> None:
        """Answer the next ``n`` requests with ``status`` (429s carry Retry-After), and ``body``."""
        with self._state.lock:
            self._state.faults.append(_Fault(n, status, retry_after, body))

    def limit_rate(self, per_second: float = 1.0, burst: int = 3) -> None:
        """Refuse a message to a channel beyond ``per_second`` (a token bucket of ``burst``)."""
        with self._state.lock:
            self._state.rate = (per_second, burst)

    @property
    def rate_limited(self) -> int:
        """Messages answered 429 by the rate limit (not by ``fail_next``)."""
        with self._state.lock:
            return self._state.rate_limited

    def _over_rate(self, channel: str, at: float) -> float | None:
        """Seconds to wait if a message to ``channel`` at ``at`` is over the rate, else None."""
        with self._state.lock:
            if self._state.rate is None:
                return None
            per_second, burst = self._state.rate
            tokens, then = self._state.buckets.get(channel, (float(burst), at))
            tokens = min(float(burst), tokens + (at - then) * per_second)
            if tokens < 1.0:
                self._state.buckets[channel] = (tokens, at)
                self._state.rate_limited += 1
                return (1.0 - tokens) / per_second
            self._state.buckets[channel] = (tokens - 1.0, at)
            return None

    def set_down(self, down: bool) -> None:
        """While down, every request is answered 503."""
        with self._state.lock:
            self._state.down = down

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _take_fault(self) -> _Fault | None:
        with self._state.lock:
            if self._state.down:
                return _Fault(1, 503, None)
            while self._state.faults:
                fault = self._state.faults[0]
                if fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
                self._state.faults.pop(0)
            return None

    def _record(self, request: RecordedRequest, message: PostedMessage | None) -> None:
        with self._state.lock:
            self._state.requests.append(request)
            if message is not None:
                self._state.messages.append(message)

    def _next_ts(self) -> str:
        with self._state.lock:
            self._state.ts_counter += 1
            return f"1700000000.{self._state.ts_counter * 100:06d}"

    def _channel_id(self, channel: str) -> str | None:
        name = channel.removeprefix("#")
        if name in self.channels:
            return self.channels[name]
        return channel if channel in self.channels.values() else None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    message: PostedMessage | None = None


def _api(status: int = 200, **payload: Any) -> _Answer:
    return _Answer(status, json.dumps(payload).encode(), "application/json; charset=utf-8")


def _text(status: int, text: str) -> _Answer:
    return _Answer(status, text.encode(), "text/plain; charset=utf-8")


def _handler_for(server: SlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            at = time.monotonic()
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            body = self.rfile.read(length)
            answer = _fault_answer(server, self.path) or _route(server, self, body)
            headers = {name.lower(): value for name, value in self.headers.items()}
            # Recorded before answering, so a test sees it as soon as its client returns.
            server._record(
                RecordedRequest("POST", self.path, headers, body, at, answer.status),
                answer.message,
            )
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on ``server.requests`` instead."""

    return Handler


def _fault_answer(server: SlackServer, path: str) -> _Answer | None:
    fault = server._take_fault()
    if fault is None:
        return None
    headers = {}
    if fault.retry_after is not None and fault.status == 429:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    error = {429: "ratelimited", 503: "service_unavailable"}.get(fault.status, "internal_error")
    if fault.body is not None:
        answer = _text(fault.status, fault.body)
    elif path.startswith("/services/"):
        answer = _text(fault.status, "rate_limited" if fault.status == 429 else error)
    else:
        answer = _api(fault.status, ok=False, error=error)
    return _Answer(answer.status, answer.body, answer.content_type, headers)


def _route(server: SlackServer, request: BaseHTTPRequestHandler, body: bytes) -> _Answer:
    if request.path == WEBHOOK_PATH:
        return _webhook(server, body)
    if request.path.startswith("/services/"):
        return _text(404, "no_service")
    method = request.path.split("?", 1)[0].removeprefix("/api/")
    if method not in {"chat.postMessage", "auth.test"}:
        return _api(404, ok=False, error="unknown_method")
    params = _params(request.headers.get("Content-Type", ""), body)
    if params is None:
        return _api(ok=False, error="invalid_json")
    token = _token(request.headers.get("Authorization", ""), params)
    if not token:
        return _api(ok=False, error="not_authed")
    if token != server.token:
        return _api(ok=False, error="invalid_auth")
    if method == "auth.test":
        return _api(
            ok=True,
            url="https://test.slack.com/",
            team="Test Team",
            user="monitor",
            team_id="T000",
            user_id="U0BOT",
            bot_id="B0BOT",
            is_enterprise_install=False,
        )
    return _post_message(server, params)


def _params(content_type: str, body: bytes) -> dict[str, Any] | None:
    if content_type.startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in form.items()}


def _token(authorization: str, params: Mapping[str, Any]) -> str | None:
    if authorization.startswith("Bearer "):
        return authorization.removeprefix("Bearer ").strip() or None
    token = params.get("token")
    return str(token) if token else None


def _post_message(server: SlackServer, params: Mapping[str, Any]) -> _Answer:
    channel = server._channel_id(str(params.get("channel") or ""))
    if channel is None:
        return _api(ok=False, error="channel_not_found")
    problem, blocks = _check_message(params)
    if problem:
        error, detail = problem
        return _api(ok=False, error=error, response_metadata={"messages": [detail]})
    wait = server._over_rate(channel, time.monotonic())
    if wait is not None:
        return _limited(_api(429, ok=False, error="ratelimited"), wait)
    ts = server._next_ts()
    message = PostedMessage(
        channel,
        params.get("text"),
        blocks,
        _flag(params.get("unfurl_links")),
        _flag(params.get("unfurl_media")),
        ts,
        "api",
    )
    answer = _api(
        ok=True,
        channel=channel,
        ts=ts,
        message={"type": "message", "text": message.text or "", "blocks": list(blocks), "ts": ts},
    )
    return _Answer(answer.status, answer.body, answer.content_type, message=message)


def _limited(answer: _Answer, wait: float) -> _Answer:
    # Slack's Retry-After is whole seconds.
    headers = {"Retry-After": str(max(1, math.ceil(wait)))}
    return _Answer(answer.status, answer.body, answer.content_type, headers)


def _webhook(server: SlackServer, body: bytes) -> _Answer:
    try:
        params = json.loads(body)
    except ValueError:
        return _text(400, "invalid_payload")
    if not isinstance(params, dict):
        return _text(400, "invalid_payload")
    problem, blocks = _check_message(params)
    if problem:
        return _text(400, problem[0])
    wait = server._over_rate(server.webhook_channel, time.monotonic())
    if wait is not None:
        return _limited(_text(429, "rate_limited"), wait)
    message = PostedMessage(
        server.webhook_channel,
        params.get("text"),
        blocks,
        _flag(params.get("unfurl_links")),
        _flag(params.get("unfurl_media")),
        None,
        "webhook",
    )
    return _Answer(200, b"ok", "text/plain; charset=utf-8", message=message)


def _check_message(params: Mapping[str, Any]) -> tuple[tuple[str, str] | None, tuple[Any, ...]]:
    """(error code, detail) for a message Slack would refuse, and its blocks."""
    text = params.get("text")
    raw = params.get("blocks")
    if isinstance(raw, str):  # form-encoded bodies carry blocks as a JSON string
        try:
            raw = json.loads(raw)
        except ValueError:
            return ("invalid_blocks", "[ERROR] blocks is not valid JSON"), ()
    if raw is not None and not isinstance(raw, list):
        return ("invalid_blocks", "[ERROR] blocks must be an array"), ()
    blocks = tuple(raw or ())
    if not text and not blocks:
        return ("no_text", "[ERROR] no text or blocks"), blocks
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        return ("msg_too_long", f"[ERROR] text longer than {MAX_TEXT}"), blocks
    if len(blocks) > MAX_BLOCKS:
        return ("invalid_blocks", f"[ERROR] more than {MAX_BLOCKS} blocks"), blocks
    for index, block in enumerate(blocks):
        detail = _block_problem(block)
        if detail:
            return ("invalid_blocks", f"[ERROR] {detail} [json-pointer:/blocks/{index}]"), blocks
    total = len(text or "") + sum(len(value) for value in _block_texts(blocks))
    if total > MAX_TEXT:
        return ("msg_too_long", f"[ERROR] {total} characters of text, over {MAX_TEXT}"), blocks
    return None, blocks


def _block_texts(blocks: tuple[Any, ...]) -> Iterator[str]:
    """Every text of (already checked) blocks."""
    for block in blocks:
        if "text" in block:
            yield str(block["text"]["text"])
        for element in block.get("elements", ()):
            yield str(element.get("text", ""))


def _block_problem(block: Any) -> str | None:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        return "not a known block"
    kind = block["type"]
    if kind == "header":
        return _text_problem(block.get("text"), MAX_HEADER, {"plain_text"})
    if kind == "section":
        return _text_problem(block.get("text"), MAX_SECTION, {"plain_text", "mrkdwn"})
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            return "context needs 1 to 10 elements"
        for element in elements:
            problem = _text_problem(element, MAX_SECTION, {"plain_text", "mrkdwn"})
            if problem:
                return problem
    return None


def _text_problem(text: Any, limit: int, kinds: set[str]) -> str | None:
    if not isinstance(text, dict) or text.get("type") not in kinds:
        return f"text must be one of {sorted(kinds)}"
    value = text.get("text")
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        return f"text must be 1 to {limit} characters"
    return None


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).lower() in {"1", "true"}


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    """A fresh local Slack for one test."""
    server = SlackServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
