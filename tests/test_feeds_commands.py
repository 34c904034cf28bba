"""`monitor feeds add|remove|import|export|list` (issue #11): the feeds file is the truth.

Judged by what the operator sees: the feeds file's text afterwards (comments and order kept),
what the CLI printed, and what the database holds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.feeds.catalog import load_feeds
from monitor.model import FeedSpec
from monitor.store.store import Store

DATA = Path(__file__).parent / "data" / "opml"
FEEDS = """\
# The feeds we watch.
feeds:
  # Civil liberties groups.
  - url: https://www.eff.org/rss/updates.xml
    name: EFF Deeplinks   # the EFF's blog
    tags: [civil-liberties]

  # Trade press.
  - url: https://www.biometricupdate.com/feed
    name: Biometric Update
    interval: 15m
"""


def invoke(*args: str, env: dict[str, str]):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    (tmp_path / "feeds.yaml").write_text(FEEDS)
    (tmp_path / "rules").mkdir()
    return {
        "MONITOR_FEEDS": str(tmp_path / "feeds.yaml"),
        "MONITOR_RULES": str(tmp_path / "rules"),
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",
    }


def feeds_text(env: dict[str, str]) -> str:
    return Path(env["MONITOR_FEEDS"]).read_text()


def listed(env: dict[str, str], *options: str) -> list[dict]:
    result = invoke("feeds", "list", "--format", "json", *options, env=env)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_add_appends_an_entry_keeps_comments_and_syncs_the_database(env):
    result = invoke(
        "feeds", "add", "https://edri.org/feed/", "--name", "EDRi", "--tag", "eu",
        "--tag", "privacy", "--interval", "30m", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{env['MONITOR_FEEDS']}: added https://edri.org/feed/; 3 feeds\n"
    assert feeds_text(env) == FEEDS + (
        "  - url: https://edri.org/feed/\n"
        "    name: EDRi\n"
        "    tags: [eu, privacy]\n"
        "    interval: 30m\n"
    )
    rows = {row["url"]: row for row in listed(env)}
    assert rows["https://edri.org/feed/"]["status"] == "new"
    assert rows["https://edri.org/feed/"]["name"] == "EDRi"
    assert len(rows) == 3


def test_remove_keeps_the_next_sections_comment_and_the_feeds_history(env):
    invoke("feeds", "add", "https://edri.org/feed/", env=env)
    result = invoke("feeds", "remove", "https://www.eff.org/rss/updates.xml", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{env['MONITOR_FEEDS']}: removed https://www.eff.org/rss/updates.xml; 2 feeds\n"
    )
    text = feeds_text(env)
    assert "eff.org" not in text
    assert "  # Civil liberties groups.\n" in text  # the comment before it belongs above
    assert "\n  # Trade press.\n  - url: https://www.biometricupdate.com/feed\n" in text
    # Removing the middle one keeps the comment that heads the entry after it.
    invoke("feeds", "add", "https://www.aclu.org/news/feed", env=env)
    invoke("feeds", "remove", "https://www.biometricupdate.com/feed", env=env)
    assert [feed.url for feed in load_feeds(Path(env["MONITOR_FEEDS"]))] == [
        "https://edri.org/feed/",
        "https://www.aclu.org/news/feed",
    ]
    statuses = {row["url"]: row["status"] for row in listed(env)}
    assert statuses["https://www.eff.org/rss/updates.xml"] == "removed"  # history kept


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["add", "https://www.eff.org/rss/updates.xml"],
            1,
            "error: {feeds}: https://www.eff.org/rss/updates.xml is already in the feeds file; "
            "`monitor feeds list` shows it",
        ),
        (["add", "ftp://x.example/feed"], 2, "'ftp://x.example/feed' is not an http(s) URL"),
        (["add", "https://x.example/", "--interval", "soon"], 2, "expected a duration"),
        (["add", "https://x.example/", "--interval", "5s"], 2, "must be at least 10s"),
        (
            ["remove", "https://nowhere.example/feed"],
            1,
            "error: {feeds}: no feed https://nowhere.example/feed in the feeds file "
            "(`monitor feeds list` shows them)",
        ),
    ],
)
def test_bad_edits_are_refused_with_one_clear_line_and_change_nothing(env, args, code, message):
    result = invoke("feeds", *args, env=env)
    assert result.exit_code == code
    assert message.format(feeds=env["MONITOR_FEEDS"]) in result.stderr
    assert feeds_text(env) == FEEDS


def test_a_missing_or_broken_feeds_file_is_named_and_left_alone(env, tmp_path):
    missing = dict(env, MONITOR_FEEDS=str(tmp_path / "nope.yaml"))
    result = invoke("feeds", "add", "https://x.example/feed", env=missing)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: MONITOR_FEEDS: no feeds file at {tmp_path / 'nope.yaml'}; create it with the "
        "line `feeds: []`, or set MONITOR_FEEDS to its path\n"
    )
    assert not (tmp_path / "nope.yaml").exists()
    broken = FEEDS.replace("name: Biometric Update", "nme: Biometric Update")
    Path(env["MONITOR_FEEDS"]).write_text(broken)
    result = invoke("feeds", "add", "https://x.example/feed", env=env)
    assert result.exit_code == 1
    assert "unknown key 'nme'" in result.stderr
    assert feeds_text(env) == broken


def test_a_feeds_file_that_cannot_be_written_is_named_and_kept(env):
    # The draft beside the file is where the new text goes first: a folder in its place makes
    # the write fail, as a read-only folder would for a user who is not root.
    feeds = Path(env["MONITOR_FEEDS"])
    (feeds.parent / f".{feeds.name}.{os.getpid()}.new").mkdir()
    result = invoke("feeds", "add", "https://x.example/feed", env=env)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: MONITOR_FEEDS: cannot write {feeds} (Is a directory); "
        "check its folder's permissions\n"
    )
    assert feeds_text(env) == FEEDS


def test_import_reads_a_readers_nested_export_categories_become_tags(env):
    result = invoke("feeds", "import", str(DATA / "reader-export.opml"), env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{env['MONITOR_FEEDS']}: imported 2 feeds from {DATA / 'reader-export.opml'} "
        "(1 already there, 2 skipped)\n"
    )
    assert result.stderr.splitlines() == [
        f"{DATA / 'reader-export.opml'}: skipped https://www.eff.org/rss/updates.xml: "
        "listed twice; kept the first",
        f"{DATA / 'reader-export.opml'}: skipped A mail link: "
        "'mailto:someone@example.org' is not an http(s) URL",
    ]
    feeds = load_feeds(Path(env["MONITOR_FEEDS"]))
    assert feeds[2:] == (
        FeedSpec("https://www.aclu.org/news/feed", "ACLU", ("civil-liberties",)),
        FeedSpec("https://edri.org/feed/", "EDRi", ("tech-policy", "europe", "privacy", "eu")),
    )
    assert feeds_text(env).startswith(FEEDS)  # the operator's part untouched
    assert len(listed(env)) == 4
    again = invoke("feeds", "import", str(DATA / "reader-export.opml"), env=env)
    assert again.stdout.endswith("imported 0 feeds from " f"{DATA / 'reader-export.opml'} "
                                 "(3 already there, 2 skipped)\n")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "billion-laughs.opml",
            "refused: the document declares a DTD or entities (DTDForbidden)",
        ),
        (
            "external-entity.opml",
            "refused: the document declares a DTD or entities (DTDForbidden)",
        ),
        ("broken.opml", ":2:0: not well-formed XML (no element found: line 2, column 0)"),
    ],
)
def test_hostile_or_broken_opml_is_one_error_and_the_feeds_keep_working(env, name, message):
    invoke("feeds", "add", "https://edri.org/feed/", env=env)
    before = feeds_text(env)
    result = invoke("feeds", "import", str(DATA / name), env=env)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {DATA / name}")
    assert message in result.stderr
    assert feeds_text(env) == before
    assert [row["url"] for row in listed(env)] == [
        "https://edri.org/feed/",
        "https://www.biometricupdate.com/feed",
        "https://www.eff.org/rss/updates.xml",
    ]


def test_export_opml_and_yaml_round_trip(env, tmp_path):
    opml = invoke("feeds", "export", env=env)
    assert opml.exit_code == 0, opml.output
    assert opml.stdout.startswith("<?xml version='1.0' encoding='utf-8'?>\n<opml version=\"2.0\">")
    assert (
        '<outline type="rss" text="EFF Deeplinks" title="EFF Deeplinks" '
        'xmlUrl="https://www.eff.org/rss/updates.xml" category="civil-liberties" />'
    ) in opml.stdout
    (tmp_path / "exported.opml").write_text(opml.stdout)
    fresh = dict(env, MONITOR_FEEDS=str(tmp_path / "fresh.yaml"))
    (tmp_path / "fresh.yaml").write_text("feeds: []\n")
    assert invoke("feeds", "import", str(tmp_path / "exported.opml"), env=fresh).exit_code == 0
    original = load_feeds(Path(env["MONITOR_FEEDS"]))
    imported = load_feeds(tmp_path / "fresh.yaml")
    assert imported == tuple(FeedSpec(f.url, f.name, f.tags) for f in original)  # no interval
    yaml = invoke("feeds", "export", "--format", "yaml", env=env)
    (tmp_path / "exported.yaml").write_text(yaml.stdout)
    assert load_feeds(tmp_path / "exported.yaml") == original
    assert "    interval: 15m\n" in yaml.stdout


@pytest.fixture
def polled(env, feed_server):
    """Three feeds polled once: one healthy and busy, one failing, one not found yet."""
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Story {n}</title><guid>s{n}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=6 * n))}</pubDate></item>"
        for n in range(8)
    )
    feed_server.add(
        "/busy.xml", f'<rss version="2.0"><channel><title>B</title>{items}</channel></rss>'
    )
    feed_server.add("/down.xml", "oops", status=503)
    Path(env["MONITOR_FEEDS"]).write_text("feeds: []\n")
    for path in ("/busy.xml", "/down.xml"):
        assert invoke("feeds", "add", feed_server.url(path), env=env).exit_code == 0
    result = invoke("poll", "--once", env=env)
    assert result.exit_code == 0, result.output
    return env


def test_feeds_list_json_shows_status_errors_next_poll_and_items_per_day(polled, feed_server):
    rows = {row["url"]: row for row in listed(polled)}
    busy, down = rows[feed_server.url("/busy.xml")], rows[feed_server.url("/down.xml")]
    assert busy["status"] == "ok"
    assert busy["consecutive_errors"] == 0 and busy["last_error"] is None
    assert busy["last_success"] is not None and busy["next_poll"] is not None
    assert busy["items_per_day"] == pytest.approx(8 / 7, abs=0.01)  # 8 items in 7 days
    assert down["status"] == "failing"
    assert down["failing_since"] is not None and down["last_success"] is None
    assert down["consecutive_errors"] == 1
    assert down["last_error"].startswith("HTTP 503 Service Unavailable")
    assert [row["url"] for row in listed(polled, "--failing")] == [feed_server.url("/down.xml")]


def test_feeds_list_plain_when_piped_and_a_table_on_a_terminal(polled, feed_server):
    plain = invoke("feeds", "list", "--failing", env=polled)
    lines = plain.stdout.splitlines()
    assert lines[0].startswith(f"{feed_server.url('/down.xml')}  [failing since ")
    assert lines[0].endswith(" (1 in a row)]")
    assert "; last success: never; next: " in lines[1]
    assert lines[1].endswith("; 0.0 items/day")
    assert lines[2].startswith("    last error: HTTP 503 Service Unavailable")
    # rich draws a table when stdout is a terminal; FORCE_COLOR is rich's way to say it is.
    table = invoke("feeds", "list", env=dict(polled, FORCE_COLOR="1", COLUMNS="200"))
    assert table.exit_code == 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", table.stdout)  # its colours
    assert "┃ feed" in text and "┃ items/day ┃" in text
    assert "│ 1.1 " in text and "HTTP 503 Service" in text


def test_the_commands_as_a_user_runs_them(env, tmp_path):
    """One real process: the installed entry point, as a shell runs it."""
    monitor = shutil.which("monitor", path=str(Path(sys.executable).parent))
    assert monitor is not None
    child_env = {**os.environ, **env}
    added = subprocess.run(
        [monitor, "feeds", "add", "https://edri.org/feed/", "--name", "EDRi"],
        env=child_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    shown = subprocess.run(
        [monitor, "feeds", "list", "--format", "json"],
        env=child_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["url"] for line in shown.stdout.splitlines()] == [
        "https://edri.org/feed/",
        "https://www.biometricupdate.com/feed",
        "https://www.eff.org/rss/updates.xml",
    ]
    store = Store.open(env["MONITOR_DATABASE_URL"])
    try:
        assert {feed.url for feed in store.feeds() if feed.active} == {
            "https://edri.org/feed/",
            "https://www.biometricupdate.com/feed",
            "https://www.eff.org/rss/updates.xml",
        }
    finally:
        store.close()
