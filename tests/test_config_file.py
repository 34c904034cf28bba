"""The file named by MONITOR_CONFIG: found, read, and every way it can be wrong named exactly.

README, "Configuration": keys are the settings' names in lower case without ``MONITOR_``
(``database_url = "..."``, ``slack_bot_token = "..."``); the environment wins over the file;
an error names the file and key. Running as root, a file cannot be made unreadable by its
mode, so a folder stands for a file that cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import CONFIG_FILE_VARIABLE, Settings, load_settings
from monitor.errors import ConfigError

FILE_KEYS = sorted(
    name.lower().removeprefix("monitor_") for name in Settings.environment_names().values()
)


def config_error(environ: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return caught.value


def test_the_readme_examples_of_file_keys_are_read(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(
        'database_url = "sqlite:///elsewhere.db"\nslack_bot_token = "xoxb-from-file"\n'
        'feeds = "my-feeds.yaml"\n'
    )
    settings = load_settings({CONFIG_FILE_VARIABLE: str(config)})
    assert (settings.database_url, settings.slack_bot_token, settings.feeds_file) == (
        "sqlite:///elsewhere.db",
        "xoxb-from-file",
        Path("my-feeds.yaml"),
    )


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('database_url = "sqlite:///file.db"\nslack_channel = "#file"\n')
    settings = load_settings(
        {CONFIG_FILE_VARIABLE: str(config), "MONITOR_DATABASE_URL": "sqlite:///env.db"}
    )
    assert (settings.database_url, settings.slack_channel) == ("sqlite:///env.db", "#file")


@pytest.mark.parametrize("value", ["", None], ids=["empty", "unset"])
def test_no_config_file_means_the_defaults(value: str | None) -> None:
    environ = {} if value is None else {CONFIG_FILE_VARIABLE: value}
    assert load_settings(environ) == load_settings({})
    assert load_settings(environ).database_url == "sqlite:///monitor.db"


def test_an_empty_config_file_means_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text("# nothing set yet\n")
    assert load_settings({CONFIG_FILE_VARIABLE: str(config)}) == load_settings({})


def test_a_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    error = config_error({CONFIG_FILE_VARIABLE: str(missing)})
    assert error.setting == CONFIG_FILE_VARIABLE
    assert str(error) == f"MONITOR_CONFIG: cannot read {missing}: No such file or directory"


def test_an_unreadable_config_file(tmp_path: Path) -> None:
    error = config_error({CONFIG_FILE_VARIABLE: str(tmp_path)})
    assert str(error) == f"MONITOR_CONFIG: cannot read {tmp_path}: Is a directory"


def test_a_config_file_that_is_not_toml(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text("poll_interval = \n")
    error = config_error({CONFIG_FILE_VARIABLE: str(config)})
    assert str(error) == f"MONITOR_CONFIG: {config}: Invalid value (at line 1, column 17)"


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_bytes(b'slack_channel = "\xff"\n')
    error = config_error({CONFIG_FILE_VARIABLE: str(config)})
    assert (
        str(error)
        == f"{CONFIG_FILE_VARIABLE}: {config}: not UTF-8 text (byte 17); save it as UTF-8"
    )


@pytest.mark.parametrize(
    "key",
    ["pol_interval", "monitor_poll_interval", "MONITOR_POLL_INTERVAL", "POLL_INTERVAL"],
    ids=["misspelt", "with-prefix", "variable-name", "upper-case"],
)
def test_an_unknown_key_in_the_config_file_names_the_key_meant(tmp_path: Path, key: str) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f"{key} = 60\n")
    error = config_error({CONFIG_FILE_VARIABLE: str(config)})
    assert str(error) == (
        f"MONITOR_CONFIG: {config}: unknown key {key!r}; did you mean 'poll_interval'?"
    )


def test_a_bad_file_value_is_named_by_file_and_key_not_by_variable(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('slack_api_url = "ftp://slack.example/"\n')
    error = config_error({CONFIG_FILE_VARIABLE: str(config)})
    assert error.setting == f"{config}: slack_api_url"
    assert str(error) == (
        f"{config}: slack_api_url: must be an http:// or https:// URL (got 'ftp://slack.example/')"
    )
