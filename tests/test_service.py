"""The service's wiring without a scheduler: what building it reads, and its job table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.service import Edges, Service, job_table
from monitor.store.store import Store
from tests.support.fakes import FakeFetcher, FakeReader, FakeSender

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    store.upgrade()
    yield store
    store.close()


def fake_edges() -> Edges:
    return Edges(FakeSender(), FakeFetcher(), lambda rules: FakeReader())


def test_building_a_service_reads_nothing_and_start_reads_the_files(tmp_path: Path, store: Store):
    feeds, rules = tmp_path / "feeds.yaml", tmp_path / "rules"
    settings = load_settings({"MONITOR_FEEDS": str(feeds), "MONITOR_RULES": str(rules)})

    service = Service(settings, store, fake_edges())  # neither path exists yet
    feeds.write_text("feeds:\n  - url: https://news.example/feed\n")
    rules.mkdir()
    (rules / "r.yaml").write_text("rules:\n  - id: r\n    title: R\n    condition: '\"ban\"'\n")
    assert store.feeds() == []

    service.start()

    assert [feed.url for feed in store.feeds()] == ["https://news.example/feed"]
    assert [rule.id for rule in service.rules.ruleset.rules] == ["r"]


def test_the_job_table(store: Store):
    settings = load_settings(
        {
            "MONITOR_FEEDS": "",
            "MONITOR_RULES": "",
            "MONITOR_POLL_TICK": "20",
            "MONITOR_DELIVERY_INTERVAL": "7",
        }
    )

    jobs = job_table(Service(settings, store, fake_edges()), NOW)

    table = [
        (
            job.id,
            job.seconds,
            job.first_run,
            job.coalesce,
            job.max_instances,
            job.misfire_grace_time,
        )
        for job in jobs
    ]
    assert table == [
        ("poll", 20, NOW, True, 1, 60),
        ("deliver", 7, NOW + timedelta(seconds=1), True, 1, 60),
        ("reload", 5, NOW + timedelta(seconds=5), True, 1, 60),
        ("prune", 3600, NOW + timedelta(seconds=60), True, 1, 60),
    ]
