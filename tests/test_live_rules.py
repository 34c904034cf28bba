"""Hot reload: changed rule and list files are picked up; a broken edit keeps the last good one."""

from __future__ import annotations

import logging
from pathlib import Path

from monitor.live_rules import LiveRules
from monitor.metrics import Metrics

LIST = "lists:\n  face: [facial recognition]\n"
RULE = """\
rules:
  - id: fr-ban
    title: Ban
    terms:
      action: [{action}]
    condition: face and action
"""


def ids(live: LiveRules) -> list[str]:
    return [rule.id for rule in live.ruleset.rules]


def write(folder: Path, action: str = "ban*", face: str = LIST) -> None:
    (folder / "lists").mkdir(exist_ok=True)
    (folder / "lists" / "face.yaml").write_text(face)
    (folder / "fr.yaml").write_text(RULE.format(action=action))


def terms(live: LiveRules) -> set[str]:
    return {
        term
        for rule in live.ruleset.rules
        for terms in rule.lists.values()
        for term in (t.text for t in terms)
    }


def test_reload_only_when_a_file_changes(tmp_path, caplog):
    write(tmp_path)
    live = LiveRules(tmp_path)
    assert ids(live) == ["fr-ban"]
    assert live.refresh() is False
    (tmp_path / "other.yaml").write_text(
        "rules:\n  - id: other\n    title: Other\n    terms:\n      t: [moratorium]\n"
    )
    with caplog.at_level(logging.INFO, logger="monitor.live_rules"):
        assert live.refresh() is True
    assert ids(live) == ["fr-ban", "other"]
    assert "rules reloaded: added rule other" in caplog.text


def test_a_changed_shared_list_reaches_the_rules_that_use_it(tmp_path):
    write(tmp_path)
    live = LiveRules(tmp_path)
    assert "face surveillance" not in terms(live)
    write(tmp_path, face="lists:\n  face: [facial recognition, face surveillance]\n")
    assert live.refresh() is True
    assert "face surveillance" in terms(live)


def test_a_broken_edit_keeps_the_last_good_version_until_fixed(tmp_path, caplog):
    notices: list[str] = []
    write(tmp_path)
    live = LiveRules(tmp_path, on_problems=notices.append)
    before = live.ruleset
    (tmp_path / "fr.yaml").write_text(RULE.format(action="ban*").replace("title:", "titel:"))
    with caplog.at_level(logging.ERROR, logger="monitor.live_rules"):
        assert live.refresh() is True
    assert ids(live) == ["fr-ban"] and live.ruleset.rules == before.rules
    assert len(notices) == 1 and f"{tmp_path}/fr.yaml:3:5: unknown key 'titel'" in notices[0]
    assert "the last good version of each broken rule stays active" in notices[0]
    assert "unknown key 'titel'" in caplog.text

    write(tmp_path, action="moratorium")
    assert live.refresh() is True
    assert "moratorium" in terms(live)
    assert len(notices) == 1


def test_a_broken_edit_shows_in_the_metrics_until_fixed(tmp_path):
    metrics = Metrics()
    write(tmp_path)
    live = LiveRules(tmp_path, metrics=metrics)

    def value(name: str) -> float | None:
        return metrics.registry.get_sample_value(name)

    assert (value("monitor_rules_active"), value("monitor_rule_errors")) == (1, 0)
    assert value("monitor_rule_reload_failures_total") == 0
    (tmp_path / "fr.yaml").write_text(RULE.format(action="ban*").replace("title:", "titel:"))
    live.refresh()  # two errors: "titel" is unknown and "title" is missing
    assert (value("monitor_rules_active"), value("monitor_rule_errors")) == (1, 2)
    assert value("monitor_rule_reload_failures_total") == 1
    write(tmp_path, action="moratorium")
    live.refresh()
    assert (value("monitor_rules_active"), value("monitor_rule_errors")) == (1, 0)
    assert value("monitor_rule_reload_failures_total") == 1  # a counter: the failure happened


def test_the_service_tells_the_ops_channel_about_a_broken_edit(tmp_path, slack_server):
    from monitor.config import load_settings
    from monitor.service import Service
    from monitor.store.store import Store

    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    settings = load_settings(
        {
            "MONITOR_RULES": str(rules),
            "MONITOR_FEEDS": str(tmp_path / "feeds.yaml"),
            "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
            "SLACK_BOT_TOKEN": slack_server.token,
            "SLACK_API_URL": slack_server.api_url,
            "MONITOR_OPS_CHANNEL": "#news",
            "MONITOR_SLACK_MAX_RETRIES": "0",
        }
    )
    store = Store.open(settings.database_url)
    store.upgrade()
    service = Service(settings, store)
    service.start()
    try:
        (rules / "fr.yaml").write_text("rules:\n  - id: fr-ban\n\ttitle: x\n")
        service.reload()
    finally:
        service.close()
        store.close()
    (notice,) = slack_server.messages
    assert notice.channel == "C0NEWS"
    assert "tab character in indentation" in (notice.text or "") + str(notice.blocks)
    assert [rule.id for rule in service.rules.ruleset.rules] == ["fr-ban"]


def test_a_start_with_a_broken_rule_says_what_was_left_out_and_what_runs(tmp_path, caplog):
    write(tmp_path)
    (tmp_path / "other.yaml").write_text(
        "rules:\n  - id: broken\n    title: Broken\n    terms:\n      t: [{regex: 'x(?=y)'}]\n"
    )
    with caplog.at_level(logging.ERROR, logger="monitor.live_rules"):
        live = LiveRules(tmp_path)
    assert ids(live) == ["fr-ban"]
    assert caplog.messages[-1] == (
        f"1 rule error(s) in {tmp_path}; the rules they break are left out (1 rules running)"
    )
    write(tmp_path, action="moratorium")
    with caplog.at_level(logging.ERROR, logger="monitor.live_rules"):
        live.refresh()
    assert caplog.messages[-1] == (
        f"1 rule error(s) in {tmp_path}; the last good version of each broken rule stays "
        "active (1 rules running)"
    )
