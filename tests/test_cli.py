"""The `monitor` command: exact output first, then the state it leaves behind."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main, setup_logging
from monitor.config import load_settings
from monitor.store.migrate import head_revision

GOOD_RULES = """\
rules:
  - id: fr-ban
    title: Facial recognition ban
    severity: high
    terms:
      face: [facial recognition]
      action: [ban*]
    condition: face and action
    examples:
      match: ["Boston bans facial recognition"]
      no_match: ["Boston bans plastic bags"]
"""


STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
MISSING_FEEDS = (
    "error: MONITOR_FEEDS: no feeds file at {}; set MONITOR_FEEDS to its path, "
    "or to an empty value to run without feeds"
)


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)


def local_env(tmp_path: Path, feeds: Path | str, rules: Path | str) -> dict[str, str]:
    """A feeds file and rules folder (either empty: none), and a SQLite file in tmp_path."""
    return {
        "MONITOR_FEEDS": str(feeds),
        "MONITOR_RULES": str(rules),
        "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
    }


def log_lines(stderr: str) -> list[str]:
    """stderr without the time stamps of its log lines."""
    return [STAMP.sub("", line) for line in stderr.splitlines()]


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "fr.yaml").write_text(GOOD_RULES)
    return folder


def test_rules_check_valid(rules_dir):
    result = invoke("rules", "check", str(rules_dir))
    assert result.exit_code == 0
    assert result.output == f"{rules_dir}: 1 rules in 1 files, 0 warning(s), examples pass\n"


def test_rules_check_reports_every_problem_and_exits_1(rules_dir):
    (rules_dir / "typo.yaml").write_text(
        "rules:\n  - id: other\n    title: Other\n    chanel: '#x'\n    terms:\n      t: [x]\n"
    )
    (rules_dir / "fr.yaml").write_text(GOOD_RULES.replace("plastic bags", "facial recognition"))
    result = invoke("rules", "check", str(rules_dir))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f'{rules_dir}/fr.yaml:11:18: example "Boston bans facial recognition" should not match '
        "rule fr-ban but did (matched: ban*, facial recognition)",
        f"{rules_dir}/typo.yaml:4:5: unknown key 'chanel' (did you mean 'channel'?)",
    ]
    assert result.stderr == f"{rules_dir}: 2 error(s), 0 warning(s)\n"


def test_rules_check_usage_error_exits_2(tmp_path):
    result = invoke("rules", "check", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_rules_test_json_lines_in_input_order(rules_dir, tmp_path):
    articles = tmp_path / "articles.jsonl"
    articles.write_text(
        json.dumps({"title": "Portland bans facial recognition", "id": "one"})
        + "\n"
        + json.dumps({"title": "Weather today", "summary": "Sunny", "link": "https://x.example/w"})
        + "\n"
    )
    result = invoke(
        "rules", "test", "--input", str(articles), "--rules", str(rules_dir), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {
            "id": "one",
            "title": "Portland bans facial recognition",
            "matches": [
                {
                    "rule": "fr-ban",
                    "terms": ["ban*", "facial recognition"],
                    "hits": [
                        {
                            "term": "ban*",
                            "field": "title",
                            "text": "bans",
                            "start": 9,
                            "end": 13,
                            "list": "action",
                        },
                        {
                            "term": "facial recognition",
                            "field": "title",
                            "text": "facial recognition",
                            "start": 14,
                            "end": 32,
                            "list": "face",
                        },
                    ],
                }
            ],
        },
        {"id": "https://x.example/w", "title": "Weather today", "matches": []},
    ]


def test_rules_test_reads_a_feed_file_and_shows_a_table(rules_dir, tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_text(
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>Council bans facial recognition</title><guid>1</guid></item>"
        "<item><title>Council bans fireworks</title><guid>2</guid></item></channel></rss>"
    )
    result = invoke(
        "rules", "test", "--input", str(feed), "--rules", str(rules_dir), env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0, result.output
    assert "Council bans facial recognition" in result.stdout
    assert "Council bans fireworks" not in result.stdout
    assert "facial recognition [title]" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 articles, 1 matched"


def test_rules_eval_prints_precision_recall_and_mistakes(rules_dir, tmp_path):
    labels = tmp_path / "labels.jsonl"
    rows = [
        {"title": "Boston bans facial recognition", "label": "flag"},
        {"title": "Police body cameras get facial recognition", "label": "flag"},
        {"title": "Facial recognition ban sought for phone apps", "label": "ignore"},
        {"title": "Ice storm closes schools", "label": "ignore"},
    ]
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = invoke("rules", "eval", "--labels", str(labels), "--rules", str(rules_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "rule    matched  precision  recall  share of flagged",
        "fr-ban        2      0.500       -             0.500",
        "overall: 4 articles (2 flag, 2 ignore): precision 0.500, recall 0.500 "
        "(1 flagged correctly, 1 wrongly, 1 missed)",
        "false negative: no rule: Police body cameras get facial recognition",
        "false positive: fr-ban: Facial recognition ban sought for phone apps "
        "(terms: facial recognition, ban*)",
    ]


def test_rules_test_input_error_names_the_line(rules_dir, tmp_path):
    articles = tmp_path / "articles.jsonl"
    articles.write_text('{"title": "ok"}\n{"summary": "no title"}\n')
    result = invoke("rules", "test", "--input", str(articles), "--rules", str(rules_dir))
    assert result.exit_code == 1
    assert result.stderr == f"error: {articles}:2: 'title' is required and must be text\n"


def test_poll_needs_once():
    result = invoke("poll")
    assert result.exit_code == 2
    assert "monitor poll needs --once" in result.stderr


def test_a_bad_setting_is_one_line_naming_the_variable():
    result = invoke("feeds", "list", env={"MONITOR_CONCURRENCY": "many"})
    assert result.exit_code == 1
    assert result.stderr == (
        "error: MONITOR_CONCURRENCY: Input should be a valid integer, unable to parse string "
        "as an integer (got 'many')\n"
    )


def test_poll_once_without_the_feeds_file_is_one_line_and_exit_1(tmp_path, rules_dir):
    env = local_env(tmp_path, tmp_path / "missing.yaml", rules_dir)
    result = invoke("poll", "--once", env=env)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == MISSING_FEEDS.format(tmp_path / "missing.yaml") + "\n"
    assert not (tmp_path / "m.db").exists()  # nothing started


def test_poll_once_without_the_rules_folder_is_one_line_and_exit_1(tmp_path):
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    env = local_env(tmp_path, tmp_path / "feeds.yaml", tmp_path / "rules")
    result = invoke("poll", "--once", env=env)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: MONITOR_RULES: no rules folder at {tmp_path / 'rules'}; set MONITOR_RULES to "
        "it, or to an empty value to run without rules\n"
    )


def test_run_without_the_feeds_file_stops_at_start(tmp_path, rules_dir):
    # The default feeds.yaml, looked for in the working folder, which has none.
    env = {
        **os.environ,
        "MONITOR_RULES": str(rules_dir),
        "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "monitor", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,  # the old code ran on with 0 feeds until killed
    )
    assert completed.returncode == 1
    assert completed.stderr == MISSING_FEEDS.format(tmp_path / "feeds.yaml") + "\n"


def test_empty_feeds_and_rules_settings_run_without_them_on_purpose(tmp_path):
    env = local_env(tmp_path, "", "")
    result = invoke("poll", "--once", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "polled 0 feeds (0 updated, 0 unchanged, 0 failed): 0 new articles, 0 matches; "
        "alerts: 0 sent, 0 to retry, 0 failed\n"
    )
    assert log_lines(result.stderr) == [
        "INFO monitor.live_rules: no rules (MONITOR_RULES is empty): articles are stored, "
        "nothing matches",
        "INFO monitor.service: no feeds file (MONITOR_FEEDS is empty): no feeds are polled",
    ]
    rules = invoke("rules", "check", env=env)
    assert rules.exit_code == 1
    assert rules.stderr == "error: MONITOR_RULES: is empty (no rules); name a rules folder\n"


def test_a_feed_interval_is_read_like_every_duration(tmp_path, rules_dir):
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - url: https://a.example/f\n    interval: soon\n")
    env = local_env(tmp_path, feeds, rules_dir)
    result = invoke("poll", "--once", env=env)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: MONITOR_FEEDS: {feeds}:3:15: expected a duration such as 90s, 15m, 2h, 1d "
        "or plain seconds (got 'soon')\n"
    )
    since = invoke("matches", "list", "--since", "soon", env=env)
    assert since.exit_code == 2
    assert since.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--since': expected a duration such as 90s, 15m, 2h, 1d "
        "or plain seconds (got 'soon')"
    )


@pytest.mark.parametrize(
    ("env", "debug", "shown"),
    [
        ({}, False, logging.WARNING),
        ({"MONITOR_LOG_LEVEL": "DEBUG"}, False, logging.DEBUG),
        ({}, True, logging.DEBUG),
    ],
)
def test_library_routine_lines_show_only_when_debugging(env, debug, shown):
    scheduler = logging.getLogger("apscheduler.executors.default")
    before = scheduler.getEffectiveLevel()
    with setup_logging(load_settings(env), debug):
        assert scheduler.getEffectiveLevel() == shown
        assert logging.getLogger("alembic.runtime.migration").getEffectiveLevel() == shown
        assert logging.getLogger("monitor.service").isEnabledFor(logging.INFO)
    assert scheduler.getEffectiveLevel() == before


def test_a_database_that_is_down_at_start(tmp_path):
    url = "postgresql+psycopg://monitor:secret@127.0.0.1:9/monitor"
    result = invoke("feeds", "list", env={"MONITOR_DATABASE_URL": url})
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("error: database postgresql+psycopg://monitor:***@127.0.0.1:9/monitor")
    assert line.endswith("(is the server running? check MONITOR_DATABASE_URL)")
    assert "secret" not in result.stderr and "\n" not in line


def test_a_broken_feeds_file_names_file_line_and_column(tmp_path, rules_dir):
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        "feeds:\n  - url: ftp://x.example/feed\n  - nme: typo\n    url: https://a.example/f\n"
    )
    env = {
        "MONITOR_FEEDS": str(feeds),
        "MONITOR_RULES": str(rules_dir),
        "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
    }
    result = invoke("poll", "--once", env=env)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: MONITOR_FEEDS: {feeds}:2:10: 'ftp://x.example/feed' is not an http(s) URL",
        f"{feeds}:3:5: unknown key 'nme' (feeds take url, name, tags, interval)",
    ]


@pytest.fixture
def polled(tmp_path, rules_dir, feed_server, database_url):
    env = news_env(tmp_path, rules_dir, feed_server, database_url)
    result = invoke("poll", "--once", env=env)
    assert result.exit_code == 0, result.output
    return env


def news_env(tmp_path, rules_dir, feed_server, database_url):
    """Settings for one feed of two fresh stories, one of which the rules flag."""
    now = datetime.now(UTC)
    feed_server.add(
        "/news.xml",
        '<rss version="2.0"><channel><title>News</title>'
        f"<item><title>Portland bans facial recognition</title><guid>p1</guid>"
        f"<link>https://news.example/p1</link><pubDate>{format_datetime(now)}</pubDate></item>"
        f"<item><title>Weather</title><guid>w1</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=1))}</pubDate></item>"
        "</channel></rss>",
    )
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {feed_server.url('/news.xml')}\n    name: News\n")
    return {
        "MONITOR_FEEDS": str(feeds),
        "MONITOR_RULES": str(rules_dir),
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",
    }


def test_feeds_list_after_a_poll(polled, feed_server):
    result = invoke("feeds", "list", env=polled)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"{feed_server.url('/news.xml')}  [ok]"
    assert lines[1].startswith("    name: News; last poll: ")
    assert len(lines) == 2


def test_matches_list_after_a_poll(polled):
    result = invoke("matches", "list", env=polled)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].endswith("  high     fr-ban  [sent]")
    assert lines[1:] == [
        "    Portland bans facial recognition",
        "    https://news.example/p1",
        "    terms: ban*, facial recognition",
    ]


def test_rules_test_over_stored_articles_and_diff(polled, tmp_path):
    result = invoke("rules", "test", "--since", "1d", "--format", "json", env=polled)
    assert result.exit_code == 0, result.output
    assert [
        [(match["rule"], match["terms"]) for match in json.loads(line)["matches"]]
        for line in result.stdout.splitlines()
    ] == [[("fr-ban", ["ban*", "facial recognition"])], []]
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "fr.yaml").write_text(
        GOOD_RULES.replace("[ban*]", "[ban*, weather]").replace(
            "condition: face and action", "condition: action"
        )
    )
    diff = invoke("rules", "test", "--diff", str(changed), env=polled)
    assert diff.exit_code == 0, diff.output
    assert diff.stdout.splitlines() == [
        "+ fr-ban: Weather",
        "2 articles: the change starts flagging 1 and stops flagging 0",
    ]


def test_rules_apply_records_what_a_new_rule_matches_in_stored_articles(polled, rules_dir):
    (rules_dir / "weather.yaml").write_text(
        "rules:\n  - id: weather\n    title: Weather\n    channel: '#wx'\n"
        "    condition: '\"weather\"'\n"
    )
    first = invoke("rules", "apply", "--since", "1d", "--alert", env=polled)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "weather: 1 new",
        "2 articles: 1 new matches, 1 alerts queued",
    ]
    again = invoke("rules", "apply", "--since", "1d", env=polled)
    assert again.stdout == "2 articles: 0 new matches, no alerts queued (--alert queues them)\n"
    listed = invoke("matches", "list", env=polled).stdout.splitlines()
    assert [line.split()[-2:] for line in listed if line.endswith("]")] == [
        ["weather", "[pending]"],  # newest first
        ["fr-ban", "[sent]"],
    ]


def test_db_upgrade_reports_the_revision(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    result = invoke("db", "upgrade", env={"MONITOR_DATABASE_URL": url})
    assert result.exit_code == 0
    assert result.stdout == f"{url}: schema at revision {head_revision()}\n"


def test_run_polls_and_stops_cleanly_on_sigterm(polled, tmp_path, feed_server):
    feed_server.add("/more.xml", '<rss version="2.0"><channel><title>More</title></channel></rss>')
    feeds = Path(polled["MONITOR_FEEDS"])
    feeds.write_text(feeds.read_text() + f"  - url: {feed_server.url('/more.xml')}\n")
    metrics_port = free_port()
    env = {**os.environ, **polled, "MONITOR_POLL_TICK": "1", "MONITOR_DELIVERY_INTERVAL": "1"}
    env["MONITOR_METRICS_PORT"] = str(metrics_port)
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not feed_server.requests_for("/more.xml") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # let the cycle record its outcome
        metrics = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    # No per-run lines; a loaded machine may still warn that a 1 s tick skipped a poll run.
    assert [line for line in stderr.splitlines() if " INFO apscheduler" in line] == []
    assert "media-monitor 0.1.0: 2 feeds, 1 rules" in stderr
    assert "polled 1 feeds (0 failed): 0 new articles, 0 matches, 0 alerts queued" in stderr
    assert "received SIGTERM, stopping after the jobs in progress" in stderr
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in stderr
    assert metrics["monitor_rules_active"] == 1
    assert metrics['monitor_feed_polls_total{outcome="updated"}'] == 1  # more.xml
    assert metrics["monitor_rule_reload_failures_total"] == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(url: str) -> dict[str, float]:
    """The samples of a Prometheus text page, by name with labels."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_run_says_so_when_the_metrics_port_is_taken(tmp_path, rules_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "MONITOR_FEEDS": "",
            "MONITOR_RULES": str(rules_dir),
            "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path}/m.db",
            "MONITOR_METRICS_PORT": str(port),
        }
        result = invoke("run", env=env)
    assert result.exit_code == 1
    assert log_lines(result.stderr) == [
        "INFO monitor.service: no feeds file (MONITOR_FEEDS is empty): no feeds are polled",
        f"INFO monitor: media-monitor 0.1.0: 0 feeds, 1 rules, database sqlite:///{tmp_path}/m.db,"
        " alerts to the console (no SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL set); Ctrl-C stops",
        f"error: MONITOR_METRICS_PORT: cannot listen on 127.0.0.1:{port} (Address already in"
        " use); choose a free port, or unset it to run without metrics",
    ]


def test_run_refuses_a_wrong_slack_token(tmp_path, rules_dir, slack_server):
    env = {
        "SLACK_BOT_TOKEN": "xoxb-wrong",
        "SLACK_API_URL": slack_server.api_url,
        "MONITOR_FEEDS": "",
        "MONITOR_RULES": str(rules_dir),
        "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path}/m.db",
    }
    result = invoke("run", env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SLACK_BOT_TOKEN: auth.test failed with invalid_auth")
    assert not (tmp_path / "m.db").exists()  # nothing started


def test_a_sqlite_file_in_a_missing_folder_names_the_folder_not_a_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing' / 'm.db'}"
    result = invoke("matches", "list", env={"MONITOR_DATABASE_URL": url})
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: database {url} cannot be opened: unable to open database file "
        "(check that its folder exists and is writable, or MONITOR_DATABASE_URL)\n"
    )
