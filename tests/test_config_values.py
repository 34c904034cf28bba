"""Each setting's own check: the value it turns bad input into, or its exact message."""

from __future__ import annotations

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SLACK_API_URL", "slack.example/api", "must be an http:// or https:// URL"),
        (
            "MONITOR_ALLOWED_NETWORKS",
            "10.0.0.0/8, intranet",
            "'intranet' is not a network such as 10.0.0.0/8",
        ),
        ("MONITOR_LOG_LEVEL", "chatty", "must be DEBUG, INFO, WARNING or ERROR"),
    ],
)
def test_each_setting_check_names_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    assert str(caught.value) == f"{variable}: {message} (got {value!r})"


def test_a_bad_webhook_url_is_not_echoed() -> None:
    # The webhook URL is a credential (#9): the error names the variable, not the value.
    with pytest.raises(ConfigError) as caught:
        load_settings({"SLACK_WEBHOOK_URL": "hooks.slack.example/services/T/B/SECRET"})
    assert str(caught.value) == (
        "SLACK_WEBHOOK_URL: must be an http:// or https:// URL "
        "(the value is not shown: it is a secret)"
    )


def test_values_the_checks_normalise() -> None:
    settings = load_settings(
        {
            "SLACK_API_URL": "http://127.0.0.1:9/api",
            "SLACK_WEBHOOK_URL": "",
            "SLACK_BOT_TOKEN": "  ",
            "MONITOR_SLACK_CHANNEL": " #news ",
            "MONITOR_ALLOWED_NETWORKS": " 10.0.0.0/8 ,, fd00::/8 ",
            "MONITOR_LOG_LEVEL": "debug",
        }
    )
    assert (
        settings.slack_api_url,
        settings.slack_webhook_url,
        settings.slack_bot_token,
        settings.slack_channel,
        settings.allowed_networks,
        settings.log_level,
        settings.slack_configured,
    ) == (
        "http://127.0.0.1:9/api/",
        None,
        None,
        "#news",
        ("10.0.0.0/8", "fd00::/8"),
        "DEBUG",
        False,
    )
