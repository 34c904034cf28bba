"""A killed `monitor run` leaves no parse workers behind (issue #11).

Seen: after SIGKILL of the main process its parse workers were adopted by init and lived on.
An idle worker notices its closed pipe and exits; one busy parsing does not, until its CPU
budget ends it. Judged by the process table, with the shipped defaults (the parse pool,
forkserver, a 10 s CPU budget), on a real `python -m monitor run`.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil

from tests.support.feed_server import FeedServer
from tests.test_isolation import SLOW_AUTHOR, feed
from tests.test_scale_out import environment, start

WAIT_S = 60  # for the workers to start: generous on a loaded machine
# The kernel's death signal is immediate; the default CPU budget (10 s) would end a busy
# worker too, so the kill comes after 1 s of its CPU and the bound leaves it short of 10 s.
GONE_S = 5.0


def _alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie has exited: it only waits to be reaped)."""
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _busy_worker(main: psutil.Process) -> psutil.Process | None:
    """A parse worker (any process under the main one) that has used a second of CPU."""
    for child in main.children(recursive=True):
        try:
            if sum(child.cpu_times()[:2]) >= 1.0:
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def test_a_killed_main_process_leaves_no_parse_worker_even_a_busy_one(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    # A good feed beside one whose parse backtracks for about 40 s of CPU.
    feed_server.add("/good", feed("good"))
    feed_server.add("/slow", feed("slow", items=40, extra=SLOW_AUTHOR))
    (tmp_path / "feeds.yaml").write_text(
        f"feeds:\n  - url: {feed_server.url('/good')}\n  - url: {feed_server.url('/slow')}\n"
    )
    env = environment(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")
    process = start(env, tmp_path, "run")
    main = psutil.Process(process.pid)
    descendants: set[int] = set()
    try:
        busy = None
        deadline = time.monotonic() + WAIT_S
        while busy is None and time.monotonic() < deadline:
            time.sleep(0.1)
            busy = _busy_worker(main)
        assert busy is not None, f"no parse worker got busy within {WAIT_S} s"
        descendants = {child.pid for child in main.children(recursive=True)}
        process.send_signal(signal.SIGKILL)
        # wait, not communicate: the workers inherit its output pipes and would hold it open.
        process.wait(timeout=WAIT_S)
        deadline = time.monotonic() + GONE_S
        while _alive(descendants) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {pid: psutil.Process(pid).cmdline()[-1][:80] for pid in _alive(descendants)}
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _alive(descendants):  # never leave one running after a failure
            psutil.Process(pid).kill()
        process.communicate(timeout=WAIT_S)
    assert left == {}
