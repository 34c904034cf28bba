"""Settings: durations read one way everywhere, and errors that name where the value came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Settings, load_settings, parse_duration
from monitor.errors import ConfigError

DURATION_SETTINGS = [
    name
    for name, info in Settings.model_fields.items()
    if info.description and info.description.startswith("seconds")
]


def test_every_seconds_setting_is_a_duration():
    assert DURATION_SETTINGS == [
        "poll_interval",
        "poll_tick",
        "delivery_interval",
        "connect_timeout",
        "read_timeout",
        "feed_deadline",
        "parse_cpu_limit",
        "parse_timeout",
        "slack_max_retry_wait",
    ]


@pytest.mark.parametrize("name", DURATION_SETTINGS)
@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("2m", 120.0), ("45", 45.0)])
def test_a_duration_reads_the_same_in_every_seconds_setting(name, text, seconds):
    variable = Settings.environment_names()[name]
    assert getattr(load_settings({variable: text}), name) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0), ("300", 300.0), (42, 42.0)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_poll_interval_in_minutes_as_the_feeds_file_takes_it():
    assert load_settings({"MONITOR_POLL_INTERVAL": "5m"}).poll_interval == 300.0


def test_a_bad_environment_duration_names_the_variable():
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_POLL_INTERVAL": "soon"})
    assert str(caught.value) == (
        "MONITOR_POLL_INTERVAL: expected a duration such as 90s, 15m, 2h, 1d or plain seconds "
        "(got 'soon')"
    )


def test_a_duration_out_of_range_names_the_variable():
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_POLL_INTERVAL": "5s"})
    assert str(caught.value) == (
        "MONITOR_POLL_INTERVAL: Input should be greater than or equal to 10 (got '5s')"
    )


def test_the_config_file_takes_durations(tmp_path: Path):
    config = tmp_path / "monitor.toml"
    config.write_text('poll_interval = "15m"\nread_timeout = 20\n')
    settings = load_settings({"MONITOR_CONFIG": str(config)})
    assert (settings.poll_interval, settings.read_timeout) == (900.0, 20.0)


def test_a_bad_value_in_the_config_file_names_the_file_and_key(tmp_path: Path):
    config = tmp_path / "monitor.toml"
    config.write_text('poll_interval = "soon"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_CONFIG": str(config)})
    assert str(caught.value) == (
        f"{config}: poll_interval: expected a duration such as 90s, 15m, 2h, 1d or plain seconds "
        "(got 'soon')"
    )


def test_an_environment_value_over_the_file_is_reported_under_its_variable(tmp_path: Path):
    config = tmp_path / "monitor.toml"
    config.write_text("concurrency = 5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_CONFIG": str(config), "MONITOR_CONCURRENCY": "0"})
    assert str(caught.value) == (
        "MONITOR_CONCURRENCY: Input should be greater than or equal to 1 (got '0')"
    )


def test_empty_feeds_and_rules_mean_none_on_purpose():
    settings = load_settings({"MONITOR_FEEDS": "", "MONITOR_RULES": ""})
    assert (settings.feeds_file, settings.rules_dir) == (None, None)
    defaults = load_settings({})
    assert (defaults.feeds_file, defaults.rules_dir) == (Path("feeds.yaml"), Path("rules"))


def test_log_format_is_text_or_json():
    assert load_settings({}).log_format == "text"
    assert load_settings({"MONITOR_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_LOG_FORMAT": "xml"})
    assert str(caught.value) == "MONITOR_LOG_FORMAT: must be text or json (got 'xml')"


KNOWN_KEYS = (
    "alert_window_hours, allow_private_addresses, allowed_networks, claim_batch, concurrency, "
    "connect_timeout, database_url, delivery_batch, delivery_interval, feed_deadline, feeds, "
    "group_above, lease, log_format, log_level, max_feed_bytes, max_redirects, metrics_host, "
    "metrics_port, ops_channel, parse_cpu_limit, parse_timeout, parse_workers, poll_interval, "
    "poll_tick, read_timeout, rules, severity_channels, slack_api_url, slack_bot_token, "
    "slack_channel, slack_max_retries, slack_max_retry_wait, slack_template, slack_webhook_url, "
    "user_agent"
)


def test_config_file_keys_are_the_variables_without_monitor(tmp_path: Path):
    config = tmp_path / "monitor.toml"
    config.write_text(
        'feeds = "my-feeds.yaml"\nrules = ""\nslack_bot_token = "xoxb-1"\n'
        'database_url = "sqlite:///x.db"\nallowed_networks = ["10.0.0.0/8"]\n'
    )
    settings = load_settings({"MONITOR_CONFIG": str(config)})
    assert (settings.feeds_file, settings.rules_dir) == (Path("my-feeds.yaml"), None)
    assert (settings.slack_bot_token, settings.database_url) == ("xoxb-1", "sqlite:///x.db")
    assert settings.allowed_networks == ("10.0.0.0/8",)


def test_the_environment_wins_over_the_config_file(tmp_path: Path):
    config = tmp_path / "monitor.toml"
    config.write_text('poll_interval = "15m"\nlog_level = "DEBUG"\n')
    settings = load_settings({"MONITOR_CONFIG": str(config), "MONITOR_POLL_INTERVAL": "1h"})
    assert (settings.poll_interval, settings.log_level) == (3600.0, "DEBUG")


def test_an_unknown_config_file_key_names_the_file_and_lists_the_known_keys(tmp_path: Path):
    config = tmp_path / "monitor.toml"
    config.write_text("poll_intervall = 60\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_CONFIG": str(config)})
    assert str(caught.value) == (
        f"MONITOR_CONFIG: {config}: unknown key 'poll_intervall' (known: {KNOWN_KEYS})"
    )


def test_a_missing_or_broken_config_file_is_named(tmp_path: Path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_CONFIG": str(missing)})
    assert str(caught.value) == f"MONITOR_CONFIG: cannot read {missing}: No such file or directory"
    broken = tmp_path / "broken.toml"
    broken.write_text("poll_interval = \n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_CONFIG": str(broken)})
    assert str(caught.value) == f"MONITOR_CONFIG: {broken}: Invalid value (at line 1, column 17)"


def test_allowed_networks_from_the_environment_are_comma_separated():
    settings = load_settings({"MONITOR_ALLOWED_NETWORKS": "10.0.0.0/8, 192.168.0.0/16"})
    assert settings.allowed_networks == ("10.0.0.0/8", "192.168.0.0/16")
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_ALLOWED_NETWORKS": "10.0.0.0/8,intranet"})
    assert str(caught.value) == (
        "MONITOR_ALLOWED_NETWORKS: 'intranet' is not a network such as 10.0.0.0/8 "
        "(got '10.0.0.0/8,intranet')"
    )


def test_settings_built_in_code_do_not_read_the_environment(monkeypatch: pytest.MonkeyPatch):
    # Only load_settings reads the environment (STYLE: one settings object, passed down).
    monkeypatch.setenv("MONITOR_POLL_INTERVAL", "1h")
    assert Settings().poll_interval == 300.0
    assert load_settings().poll_interval == 3600.0
