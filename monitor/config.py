"""One settings object, built once from the environment and an optional TOML file.

Environment variables win over the file named by ``MONITOR_CONFIG``, whose keys
are the same names in lower case without the ``MONITOR_`` prefix (for example
``database_url``, ``slack_bot_token``). Every validation error names what to fix:
the environment variable, or the file and key the value came from. Durations are
read here for the whole program (settings, the feeds file, the CLI). Nothing else
in the package reads the environment: the composition root builds ``Settings``
once and passes it down.

Plain pydantic, not pydantic-settings (#12): bending its sources to these rules took more code.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from monitor import __version__
from monitor.errors import ConfigError
from monitor.gate import DEFAULT_CHANNEL_MAX_PER_HOUR
from monitor.model import SEVERITIES
from monitor.silence import QuietHours, parse_quiet_hours

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
CONFIG_FILE_VARIABLE = "MONITOR_CONFIG"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: str | int | float) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"1d"``; ValueError otherwise."""
    found = None if isinstance(value, bool) else _DURATION.match(str(value))
    if found is None:
        raise ValueError("expected a duration such as 90s, 15m, 2h, 1d or plain seconds")
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def format_duration(seconds: float) -> str:
    """Seconds as an operator writes them (``3d``, ``2h``, ``15m``, ``90s``): the inverse of
    parse_duration, for messages and files that show a setting."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str | int | float) else value


def _optional_path(value: Any) -> Any:
    # An empty value turns the file off on purpose; Path("") would be the working folder.
    return None if isinstance(value, str) and not value.strip() else value


Seconds = Annotated[float, BeforeValidator(_duration)]
OptionalPath = Annotated[Path | None, BeforeValidator(_optional_path)]


def _setting(default: Any, env: str, description: str, **constraints: Any) -> Any:
    return Field(default, alias=env, description=description, **constraints)


class Settings(BaseModel):
    """Runtime configuration; each field's alias is its environment variable."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    database_url: str = _setting(
        "sqlite:///monitor.db",
        "MONITOR_DATABASE_URL",
        "SQLAlchemy URL; SQLite file in the working folder by default",
    )
    feeds_file: OptionalPath = _setting(
        Path("feeds.yaml"), "MONITOR_FEEDS", "path of the feeds file; empty: no feeds file"
    )
    rules_dir: OptionalPath = _setting(
        Path("rules"), "MONITOR_RULES", "folder of YAML rule files; empty: no rules"
    )
    slack_bot_token: str | None = _setting(
        None, "SLACK_BOT_TOKEN", "bot token (xoxb-...) for chat.postMessage, channel per rule"
    )
    slack_webhook_url: str | None = _setting(
        None, "SLACK_WEBHOOK_URL", "incoming webhook URL (one fixed channel)"
    )
    slack_api_url: str = _setting(DEFAULT_SLACK_API_URL, "SLACK_API_URL", "Slack Web API base URL")
    slack_channel: str | None = _setting(
        None, "MONITOR_SLACK_CHANNEL", "channel for rules that name none"
    )
    ops_channel: str | None = _setting(
        None, "MONITOR_OPS_CHANNEL", "channel told when a rule file breaks on reload"
    )
    severity_channels: dict[str, str] = _setting(
        {},
        "MONITOR_SEVERITY_CHANNELS",
        "channel per severity for rules that name none, e.g. high=#fr-urgent,critical=#fr-urgent",
    )
    slack_template: OptionalPath = _setting(
        None,
        "MONITOR_SLACK_TEMPLATE",
        "Jinja2 template of an alert's message body (docs/delivery.md); unset: the default layout",
    )
    allow_private_addresses: bool = _setting(
        False,
        "MONITOR_ALLOW_PRIVATE_ADDRESSES",
        "allow feeds on loopback, private, link-local and other non-public addresses",
    )
    allowed_networks: tuple[str, ...] = _setting(
        (),
        "MONITOR_ALLOWED_NETWORKS",
        "comma-separated CIDRs allowed even though non-public (an intranet feed server)",
    )
    poll_interval: Seconds = _setting(
        300.0, "MONITOR_POLL_INTERVAL", "seconds between polls of a feed", ge=10, le=86400 * 7
    )
    min_interval: Seconds = _setting(
        120.0,
        "MONITOR_MIN_INTERVAL",
        "shortest adaptive interval of a feed without its own interval",
        ge=10,
        le=86400 * 7,
    )
    max_interval: Seconds = _setting(
        4 * 3600.0,
        "MONITOR_MAX_INTERVAL",
        "longest adaptive interval: a quiet feed, or one whose host asks for more, waits no longer",
        ge=10,
        le=86400 * 7,
        validate_default=True,  # checked against MONITOR_MIN_INTERVAL even when unset
    )
    per_host: int = _setting(
        4, "MONITOR_PER_HOST", "feeds fetched at once from one host", ge=1, le=1000
    )
    poll_tick: Seconds = _setting(
        30.0, "MONITOR_POLL_TICK", "seconds between checks for due feeds", ge=1, le=3600
    )
    claim_batch: int = _setting(
        50, "MONITOR_CLAIM_BATCH", "feeds a worker claims at a time", ge=1, le=10000
    )
    lease: Seconds = _setting(
        30.0,
        "MONITOR_LEASE",
        "how long a stopped worker's claimed feeds wait for another; renewed while polled",
        ge=3,
        le=3600,
    )
    delivery_interval: Seconds = _setting(
        15.0, "MONITOR_DELIVERY_INTERVAL", "seconds between delivery runs", ge=1, le=3600
    )
    delivery_max_age: Seconds = _setting(
        86400.0,
        "MONITOR_DELIVERY_MAX_AGE",
        "an alert not delivered this long after it was found expires instead of going out",
        ge=60,
        le=90 * 86400,
    )
    delivery_lease: Seconds = _setting(
        300.0,
        "MONITOR_DELIVERY_LEASE",
        "how long alerts a stopped worker claimed wait before another run sends them",
        ge=5,
        le=3600,
    )
    connect_timeout: Seconds = _setting(
        10.0, "MONITOR_CONNECT_TIMEOUT", "seconds to connect to a feed server", gt=0, le=300
    )
    read_timeout: Seconds = _setting(
        15.0,
        "MONITOR_READ_TIMEOUT",
        "seconds to wait for each read from a feed server",
        gt=0,
        le=600,
    )
    feed_deadline: Seconds = _setting(
        20.0, "MONITOR_FEED_DEADLINE", "seconds allowed for one whole feed fetch", gt=0, le=3600
    )
    max_feed_bytes: int = _setting(
        10 * 1024 * 1024,
        "MONITOR_MAX_FEED_BYTES",
        "cap on a feed's decoded body",
        ge=1024,
        le=1024**3,
    )
    max_redirects: int = _setting(5, "MONITOR_MAX_REDIRECTS", "redirects followed", ge=0, le=20)
    concurrency: int = _setting(50, "MONITOR_CONCURRENCY", "feeds fetched at once", ge=1, le=1000)
    parse_workers: int = _setting(
        0,
        "MONITOR_PARSE_WORKERS",
        "processes that parse feeds; 0 means one per CPU",
        ge=0,
        le=64,
    )
    parse_cpu_limit: Seconds = _setting(
        10.0,
        "MONITOR_PARSE_CPU_LIMIT",
        "seconds of CPU one feed's parse may use before its worker is stopped",
        ge=1,
        le=3600,
    )
    parse_timeout: Seconds = _setting(
        20.0,
        "MONITOR_PARSE_TIMEOUT",
        "seconds one feed's parse may take before its worker is stopped",
        gt=0,
        le=3600,
    )
    alert_window_hours: float = _setting(
        24.0,
        "MONITOR_ALERT_WINDOW_HOURS",
        "on a feed's first poll, alert only on items published this recently",
        ge=0,
        le=24 * 365,
    )
    delivery_batch: int = _setting(
        50,
        "MONITOR_DELIVERY_BATCH",
        "alerts claimed at a time; a run claims until none is due",
        ge=1,
        le=10000,
    )
    group_above: int = _setting(
        10,
        "MONITOR_GROUP_ABOVE",
        "more alerts than this due for one channel in a run go out as grouped messages; 0: never",
        ge=0,
        le=10000,
    )
    slack_max_retries: int = _setting(
        3, "MONITOR_SLACK_MAX_RETRIES", "retries of a 429, 5xx or connection error", ge=0, le=10
    )
    slack_max_retry_wait: Seconds = _setting(
        30.0,
        "MONITOR_SLACK_MAX_RETRY_WAIT",
        "seconds one send may wait on Retry-After before the alert is re-queued",
        ge=0,
        le=900,
    )
    channel_max_per_hour: int = _setting(
        DEFAULT_CHANNEL_MAX_PER_HOUR,
        "MONITOR_CHANNEL_MAX_PER_HOUR",
        "immediate alerts a channel gets an hour; the rest go out as one summary; 0: no limit",
        ge=0,
        le=100_000,
    )
    quiet_hours: tuple[QuietHours, ...] = _setting(
        (),
        "MONITOR_QUIET_HOURS",
        "quiet hours per channel, e.g. '#news=22:00-07:00 Europe/London; #ops=23:00-06:00'; "
        "held alerts go out when they end",
    )
    user_agent: str = _setting(
        f"media-monitor/{__version__} (self-hosted news alerting)",
        "MONITOR_USER_AGENT",
        "User-Agent sent to feed servers",
    )
    log_level: str = _setting("INFO", "MONITOR_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR")
    log_format: str = _setting(
        "text", "MONITOR_LOG_FORMAT", "text, or json: one object a line with feed, rule, alert"
    )
    metrics_port: int | None = _setting(
        None,
        "MONITOR_METRICS_PORT",
        "port of the Prometheus /metrics endpoint of `monitor run`; unset: no endpoint",
        ge=0,
        le=65535,
    )
    metrics_host: str = _setting(
        "127.0.0.1", "MONITOR_METRICS_HOST", "address the metrics endpoint listens on"
    )
    health_stale_after: Seconds = _setting(
        900.0,
        "MONITOR_HEALTH_STALE_AFTER",
        "/healthz fails when no poll cycle finished for this long",
        ge=10,
        le=86400,
    )
    retention: Seconds = _setting(
        90 * 86400.0,
        "MONITOR_RETENTION",
        "articles not seen in their feed for this long are removed, with their matches and"
        " alerts (at least 1d; 0 keeps everything)",
        ge=0,
        le=3650 * 86400,
    )

    cluster_window: Seconds = _setting(
        3 * 86400.0,
        "MONITOR_CLUSTER_WINDOW",
        "near-duplicate articles published this close together are one story: one alert, the"
        " others as replies in its thread (0 turns story clustering off)",
        ge=0,
        le=30 * 86400,
    )

    @field_validator("retention")
    @classmethod
    def _retention_off_or_a_day(cls, value: float) -> float:
        if 0 < value < 86400:
            raise ValueError("must be 0 (keep everything) or at least 1d")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slash_terminated(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("slack_webhook_url")
    @classmethod
    def _webhook_is_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("slack_bot_token", "slack_channel", "ops_channel")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("group_above")
    @classmethod
    def _below_the_batch(cls, value: int, info: ValidationInfo) -> int:
        # A run sees one batch of alerts at a time: a larger burst size could never be reached.
        batch = info.data.get("delivery_batch")
        if batch is not None and value >= batch:
            raise ValueError(f"must be less than MONITOR_DELIVERY_BATCH ({batch})")
        return value

    @field_validator("severity_channels", mode="before")
    @classmethod
    def _split_severity_channels(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs = [part.partition("=") for part in value.split(",") if part.strip()]
            if any(not sep for _, sep, _ in pairs):
                raise ValueError("expected severity=channel pairs such as high=#fr-urgent")
            value = {key.strip(): channel.strip() for key, _, channel in pairs}
        if not isinstance(value, Mapping):
            return value
        routes = {}
        for severity, channel in value.items():
            key = str(severity).strip().lower()
            if key not in SEVERITIES:
                raise ValueError(f"{severity!r} is not a severity ({', '.join(SEVERITIES)})")
            if not isinstance(channel, str) or not re.fullmatch(r"[^\s,]+", channel):
                raise ValueError(f"{channel!r} is not a channel name such as #fr-urgent")
            routes[key] = channel
        return routes

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not a network such as 10.0.0.0/8") from exc
        return tuple(value)

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _read_quiet_hours(cls, value: Any) -> Any:
        if isinstance(value, str | dict):
            return parse_quiet_hours(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value.lower() not in {"text", "json"}:
            raise ValueError("must be text or json")
        return value.lower()

    @field_validator("max_interval")
    @classmethod
    def _not_below_minimum(cls, value: float, info: ValidationInfo) -> float:
        minimum = info.data.get("min_interval")
        if minimum is not None and value < minimum:
            raise ValueError(
                f"is below MONITOR_MIN_INTERVAL ({minimum:g}s); raise it or lower the minimum"
            )
        return value

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token or self.slack_webhook_url)

    @classmethod
    def environment_names(cls) -> dict[str, str]:
        """Field name -> environment variable, for docs and checks."""
        return {name: str(info.alias) for name, info in cls.model_fields.items()}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment) and its config file."""
    environ = os.environ if environ is None else environ
    env_names = Settings.environment_names()
    values: dict[str, Any] = {}
    from_file: dict[str, str] = {}  # variable -> "file: key", for values read from the file
    config_file = environ.get(CONFIG_FILE_VARIABLE)
    if config_file:
        path = Path(config_file)
        for name, value in _read_config_file(path, env_names).items():
            values[name] = value
            from_file[name] = f"{path}: {name.lower().removeprefix('monitor_')}"
    for name in env_names.values():
        if name in environ:
            values[name] = environ[name]
            from_file.pop(name, None)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = str(first["loc"][0]) if first["loc"] else CONFIG_FILE_VARIABLE
        raise ConfigError(
            from_file.get(location, location),
            _describe(first, values.get(location), location),
        ) from exc


def _read_config_file(path: Path, env_names: Mapping[str, str]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(CONFIG_FILE_VARIABLE, f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            CONFIG_FILE_VARIABLE, f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(CONFIG_FILE_VARIABLE, f"{path}: {exc}") from exc
    values: dict[str, Any] = {}
    by_key = {env.lower().removeprefix("monitor_"): env for env in env_names.values()}
    for key, value in data.items():
        if key not in by_key:
            # MONITOR_POLL_INTERVAL or poll_intervall both mean poll_interval.
            close = difflib.get_close_matches(key.lower().removeprefix("monitor_"), by_key, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else "keys are the MONITOR_ settings in lower case without the prefix,"
                " as in the README's Settings table"
            )
            raise ConfigError(CONFIG_FILE_VARIABLE, f"{path}: unknown key {key!r}; {hint}")
        values[by_key[key]] = value
    return values


# Never echoed in an error: they are credentials (#9).
SECRET_SETTINGS = frozenset({"SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL"})


def _describe(error: Any, value: Any, variable: str = "") -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if value is not None and variable in SECRET_SETTINGS:
        return f"{message} (the value is not shown: it is a secret)"
    return f"{message} (got {value!r})" if value is not None else message
