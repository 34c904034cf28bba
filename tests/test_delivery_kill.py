"""`kill -9` a real `monitor run` while it delivers, restart it, count what reached Slack (#9).

The kills land at chosen points, made deterministic by the local Slack server: it parks a
message and signals its arrival, and the test kills the process while the message is
parked. First with the message not stored (a batch claimed, one send under way, the rest
not sent yet), then with the message stored but its answer held back (Slack has it; the
"sent" commit never happens), then at whatever point a run is at after a few sends.
Nothing may be lost, and only a delivery in flight at a kill may arrive twice.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.support.slack_server import Hold, SlackServer
from tests.test_delivery_failures import queue
from tests.test_delivery_failures import store as store  # the fixture

ALERTS = 12
WAIT_S = 120  # per step: far above what it needs, so only a hang meets it
RULES = """\
rules:
  - id: flood
    title: Floods
    severity: high
    channel: "#news"
    terms:
      flood: [flood]
    condition: flood
"""


def environment(tmp_path: Path, database_url: str, slack: SlackServer) -> dict[str, str]:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "flood.yaml").write_text(RULES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "SLACK_"))}
    return {
        **env,
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_FEEDS": "",
        "MONITOR_RULES": str(rules),
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.api_url,
        # A killed run's claims come back after the lease plus a batch at Slack's pace
        # (5 min + 50 s by default); these keep that to 10 s so the test takes a minute, not
        # twenty. The path is the same: test_delivery_failures covers the default batch.
        "MONITOR_DELIVERY_LEASE": "5",
        "MONITOR_DELIVERY_BATCH": "5",
        "MONITOR_DELIVERY_INTERVAL": "1",  # a run a second, not every 15 s: the same job
    }


def start(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=WAIT_S)  # reads and closes its pipe
    assert process.returncode == -signal.SIGKILL, err


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kill_when_parked(process: subprocess.Popen[str], hold: Hold) -> None:
    wait_for(hold.arrived.is_set, "a message to reach the server")
    kill(process)
    hold.release()


def titles(server: SlackServer) -> list[str]:
    return [message.blocks[0]["text"]["text"] for message in server.messages]


def test_kill_9_at_several_points_loses_nothing_and_duplicates_only_what_was_in_flight(
    store, slack_server, database_url, tmp_path
):
    expected = queue(store, ALERTS)  # more than one batch
    env = environment(tmp_path, database_url, slack_server)
    cwd = Path(__file__).resolve().parents[1]

    # 1. The first send reaches the server and is never stored: the batch is claimed, one
    #    send is under way and the rest are not sent yet.
    unstored = slack_server.hold_next(stored=False)
    first = start(env, cwd)
    kill_when_parked(first, unstored)
    assert titles(slack_server) == []

    # 2. After a few sends, one is stored and its answer held: killed between Slack's
    #    answer and the "sent" commit.
    second = start(env, cwd)
    wait_for(lambda: len(slack_server.messages) >= 3, "three alerts sent after a restart")
    stored = slack_server.hold_next(stored=True)
    kill_when_parked(second, stored)
    in_flight = titles(slack_server)[-1]

    # 3. Killed wherever the next run is after two more alerts: pacing, claiming or sending.
    third = start(env, cwd)
    sent = len(slack_server.messages)
    wait_for(lambda: len(slack_server.messages) >= sent + 2, "two more alerts")
    kill(third)

    last = start(env, cwd)
    try:
        wait_for(lambda: set(titles(slack_server)) == set(expected), "every alert")
        time.sleep(3)  # runs go on a second apart: anything sent twice would show by now
    finally:
        last.send_signal(signal.SIGTERM)
        last.communicate(timeout=WAIT_S)

    copies = Counter(titles(slack_server))
    duplicated = sorted(title for title, count in copies.items() if count > 1)
    logging.getLogger(__name__).info(
        "kill -9 x3 (%s): %d alerts, %d messages reached Slack, duplicated: %s",
        database_url.split(":", 1)[0],
        ALERTS,
        len(slack_server.messages),
        duplicated,
    )
    assert set(copies) == set(expected)  # nothing lost
    assert copies[in_flight] == 2  # stored before the kill, sent again once after it
    assert max(copies.values()) <= 2
    # Only what was in flight at a kill: the stored one, and at most one at the third kill.
    assert len(duplicated) <= 2
    assert in_flight in duplicated
    firsts = list(dict.fromkeys(titles(slack_server)))
    assert firsts == expected  # first copies in published order
    assert store.delivery_counts() == {"sent": ALERTS}
