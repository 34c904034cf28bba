"""Digests, silences and quiet hours as pure values (#9): the rule's `delivery:` key checked
at load with file and line, the digest's stories and its Block Kit limits, quiet hours
across midnight and time zones, and the gate's order of checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.digest import HeldItem, PendingDigest, group_stories, headline_key, render_digest
from monitor.gate import DeliveryPolicy, Hold, next_hour, route
from monitor.matching import load_rules
from monitor.matching.rule import Delivery
from monitor.model import Article, Match
from monitor.silence import QuietHours, Silence, parse_quiet_hours

RULE = """\
rules:
  - id: fr-digest
    title: Facial recognition, weekly
    terms: {face: [facial recognition]}
    condition: face
"""


def rule_file(tmp_path: Path, delivery: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE + delivery, encoding="utf-8")
    return path


def test_a_digest_schedule_in_a_time_zone_is_loaded(tmp_path):
    path = rule_file(
        tmp_path,
        "    delivery:\n      digest: '0 9 * * mon-fri'\n      timezone: Europe/Berlin\n",
    )
    loaded = load_rules(path)
    assert loaded.problems == ()
    assert loaded.ruleset.rules[0].delivery == Delivery("0 9 * * mon-fri", "Europe/Berlin")
    limited = load_rules(rule_file(tmp_path, "    delivery: {max_per_hour: 5}\n"))
    assert limited.ruleset.rules[0].delivery == Delivery(max_per_hour=5)


def test_immediate_is_the_default_and_can_be_written(tmp_path):
    written = load_rules(rule_file(tmp_path, "    delivery: immediate\n"))
    assert written.problems == ()
    assert written.ruleset.rules[0].delivery == Delivery()
    (tmp_path / "rules.yaml").write_text(RULE)
    assert load_rules(tmp_path / "rules.yaml").ruleset.rules[0].delivery == Delivery()


@pytest.mark.parametrize(
    ("delivery", "expected"),
    [
        (
            "    delivery:\n      digest: '0 25 * * *'\n",
            "rules.yaml:7:15: digest '0 25 * * *' is not a crontab schedule (Error validating "
            "expression '25': the last value (25) is higher than the maximum value (23)); write "
            "five fields: minute hour day month day-of-week, e.g. '0 9 * * mon-fri'",
        ),
        (
            "    delivery:\n      digest: '0 9 * *'\n",
            "rules.yaml:7:15: digest '0 9 * *' is not a crontab schedule (Wrong number of "
            "fields; got 4, expected 5); write five fields: minute hour day month day-of-week, "
            "e.g. '0 9 * * mon-fri'",
        ),
        (
            "    delivery:\n      digest: '0 9 * * *'\n      timezone: Europe/Berln\n",
            "rules.yaml:8:17: timezone 'Europe/Berln' is not a time zone; use an IANA name such "
            "as Europe/Berlin or UTC",
        ),
        (
            "    delivery:\n      digets: '0 9 * * *'\n",
            "rules.yaml:7:7: unknown key 'digets' (did you mean 'digest'?)",
        ),
        (
            "    delivery:\n      digest: '0 9 * * *'\n      max_per_hour: 3\n",
            "rules.yaml:7:7: delivery has both digest and max_per_hour: a digest rule sends no "
            "immediate alerts to limit; remove one",
        ),
        (
            "    delivery: daily\n",
            "rules.yaml:6:15: delivery must be immediate or a mapping such as "
            "{digest: '0 9 * * mon-fri'} (got 'daily')",
        ),
    ],
)
def test_a_bad_delivery_is_an_error_at_its_file_and_line(tmp_path, delivery, expected):
    path = rule_file(tmp_path, delivery)
    result = CliRunner().invoke(main, ["rules", "check", str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.removeprefix(str(tmp_path) + "/").startswith(expected)
    assert load_rules(path).ruleset.rules == ()  # the bad rule is left out, not half-loaded


NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def item(n: int, title: str, *, link: str | None = None, minutes: int = 0) -> HeldItem:
    article = Article(
        feed_url="https://a.example/rss",
        entry_id=f"urn:{n}",
        title=title,
        published=NOW + timedelta(minutes=minutes),
        link=link if link is not None else f"https://news.example/{n}",
        feed_name="Paper A",
    )
    return HeldItem(n, article, Match("fr", "Facial recognition", "high", "#news"))


def test_stories_group_by_the_exact_headline_in_published_order():
    items = [
        item(1, "Ban passes", minutes=5),
        item(2, "Council debates ban", minutes=1),
        item(3, "Ban  passes", minutes=2),  # the same headline, spaced differently
        item(4, "ban passes", minutes=3),  # not the same: the key is the exact headline
    ]
    stories = group_stories(items)
    assert [(s.key, [i.article_id for i in s.items]) for s in stories] == [
        ("Council debates ban", [2]),
        ("Ban passes", [3, 1]),
        ("ban passes", [4]),
    ]


def test_stories_group_by_any_key_a_caller_gives():
    items = [item(n, f"Headline {n}", minutes=n) for n in range(6)]
    stories = group_stories(items, key=lambda held: str(held.article_id % 2))
    assert [[i.article_id for i in s.items] for s in stories] == [[0, 2, 4], [1, 3, 5]]
    assert headline_key(items[0]) == "Headline 0"


def digest_of(items: list[HeldItem], kind: str = "digest") -> PendingDigest:
    return PendingDigest(1, "#news", kind, "fr", 0, tuple(items))  # type: ignore[arg-type]


def test_a_digest_links_each_story_once_escaped_and_pings_nobody():
    items = [
        item(1, "<!channel> Ban & <http://evil|Reuters>", minutes=1),
        item(2, "<!channel> Ban & <http://evil|Reuters>", minutes=2, link="https://b.example/2"),
        item(3, "Council *votes*", link="javascript:alert(1)", minutes=3),
    ]
    message = render_digest(digest_of(items))
    body = "\n".join(block["text"]["text"] for block in message.blocks[1:])
    assert message.blocks[0]["text"]["text"] == "Digest: Facial recognition"
    assert "3 matches since the last digest, in 2 stories" in body
    assert (
        "• <https://news.example/1|&lt;!channel&gt; Ban &amp; &lt;http://evil|Reuters&gt;> — "
        "Paper A · 2 articles"
    ) in body
    assert "• Council *votes* — Paper A" in body  # no javascript: link
    assert "<!channel>" not in body and "javascript" not in body
    assert "<!channel>" not in message.text


def test_a_huge_digest_stays_within_block_kit_limits_and_says_what_it_left_out():
    # 2,000 stories with long CJK and emoji headlines: far past 50 blocks and 40,000 characters.
    items = [item(n, f"顔認識 🛑 {n} " + "監視カメラ禁止" * 60, minutes=n) for n in range(2000)]
    message = render_digest(digest_of(items, "throttle"))
    texts = [
        block["text"]["text"] if "text" in block else block["elements"][0]["text"]
        for block in message.blocks
    ]
    assert len(message.blocks) <= 50
    assert all(len(text.encode("utf-16-le")) // 2 <= 3000 for text in texts)
    assert sum(len(text) for text in texts) <= 40_000
    assert len(message.blocks[0]["text"]["text"]) <= 150
    shown = sum(text.count("\n• ") + text.startswith("• ") for text in texts)
    assert texts[-1] == f"…and {2000 - shown} more stories: `monitor matches list`"
    assert texts[1].startswith("…and 2000 more matches this hour (over the hourly limit)")


def test_quiet_hours_span_midnight_in_their_time_zone():
    quiet = parse_quiet_hours("#fr-policy=22:00-07:00 Europe/London; news=12:00-13:00")
    assert quiet == (
        QuietHours("#fr-policy", time(22), time(7), "Europe/London"),
        QuietHours("news", time(12), time(13), "UTC"),
    )
    london = quiet[0]
    # 23:30 London in winter is 23:30 UTC; quiet until 07:00 the next morning.
    assert london.quiet_until(datetime(2026, 12, 3, 23, 30, tzinfo=UTC)) == datetime(
        2026, 12, 4, 7, 0, tzinfo=UTC
    )
    # 06:59 in summer (BST) is 05:59 UTC: still quiet, until 06:00 UTC.
    assert london.quiet_until(datetime(2026, 7, 1, 5, 59, tzinfo=UTC)) == datetime(
        2026, 7, 1, 6, 0, tzinfo=UTC
    )
    assert london.quiet_until(datetime(2026, 12, 3, 12, 0, tzinfo=UTC)) is None
    assert parse_quiet_hours({"#ops": "01:00-02:00 Asia/Tokyo"})[0].timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("#news 22:00-07:00", "'#news 22:00-07:00' needs channel=HH:MM-HH:MM"),
        ("#news=22-07", "#news='22-07': write channel=HH:MM-HH:MM"),
        ("#news=25:00-07:00", "#news='25:00-07:00': hour must be in 0..23"),
        ("#news=22:00-22:00", "the start and the end are the same"),
        ("#news=22:00-07:00 Mars/Olympus", "'Mars/Olympus' is not a time zone"),
    ],
)
def test_bad_quiet_hours_say_what_to_write(value, message):
    with pytest.raises(ValueError) as caught:
        parse_quiet_hours(value)
    assert message in str(caught.value)


@dataclass
class Recent:
    channel: int = 0
    rules: dict[str, int] = field(default_factory=dict)

    def to_channel(self, channel: str) -> int:
        return self.channel

    def of_rule(self, rule_id: str, channel: str) -> int:
        return self.rules.get(rule_id, 0)


def match(rule_id: str) -> Match:
    return Match(rule_id, rule_id.upper(), "high", "#news")


def decide(policy: DeliveryPolicy, recent: Recent, *rules: str, silences=(), now=NOW):
    return route(
        policy,
        silences,
        recent,
        feed_url="https://a.example/rss",
        link="https://news.example/x",
        channel="",
        matches=[match(rule) for rule in rules],
        now=now,
    )


def test_the_gate_holds_digests_then_silences_then_quiet_hours_then_limits():
    policy = DeliveryPolicy(
        digest_rules=frozenset({"d"}),
        rule_max_per_hour={"r": 2},
        quiet_hours=(QuietHours("news", time(22), time(7)),),
        default_channel="#news",
    )
    silence = Silence(7, "noisy", NOW, NOW + timedelta(hours=2), domain="news.example")
    ended = Silence(8, "old", NOW - timedelta(hours=3), NOW - timedelta(hours=1), rule_id="a")

    assert decide(policy, Recent(), "a", "d") == decide(policy, Recent(), "a", "d")
    routed = decide(policy, Recent(), "a", "d")
    assert routed.alert == (match("a"),) and routed.held == (Hold("d", "digest"),)
    routed = decide(policy, Recent(), "a", "d", silences=[silence, ended])
    assert routed.alert == ()
    assert routed.held == (Hold("a", "silence", silence_id=7), Hold("d", "digest"))
    assert decide(policy, Recent(), "a", silences=[ended]).alert == (match("a"),)

    night = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
    quiet = decide(policy, Recent(), "a", now=night)
    assert quiet.held == (Hold("a", "quiet", release_at=datetime(2026, 12, 4, 7, tzinfo=UTC)),)

    over_rule = decide(policy, Recent(rules={"r": 2}), "r", "a")
    assert over_rule.alert == (match("a"),)
    assert over_rule.held == (Hold("r", "throttle", release_at=next_hour(NOW)),)
    # The shipped default: 30 alerts an hour per channel.
    over_channel = decide(policy, Recent(channel=30), "a")
    assert over_channel.alert == ()
    assert over_channel.held == (Hold("a", "throttle", release_at=NOW + timedelta(hours=1)),)
    assert decide(policy, Recent(channel=29), "a").alert == (match("a"),)
    unlimited = DeliveryPolicy(channel_max_per_hour=None)
    assert decide(unlimited, Recent(channel=10_000), "a").alert == (match("a"),)


@pytest.mark.parametrize(
    ("criteria", "covered"),
    [
        ({"rule_id": "fr"}, True),
        ({"rule_id": "other"}, False),
        ({"feed_url": "https://a.example/rss"}, True),
        ({"feed_url": "https://b.example/rss"}, False),
        ({"domain": "example.org"}, True),  # the link is on a subdomain
        ({"domain": "ample.org"}, False),  # a suffix that is not a parent domain
        ({"channel": "news"}, True),  # as rules write it, with or without '#'
        ({"channel": "#alerts"}, False),
        ({"rule_id": "fr", "channel": "#alerts"}, False),  # every criterion must hold
        ({"rule_id": "fr", "domain": "www.example.org", "channel": "#NEWS"}, True),
    ],
)
def test_a_silence_covers_what_every_criterion_names(criteria, covered):
    silence = Silence(1, "why", NOW, NOW + timedelta(hours=1), **criteria)
    link = "https://www.news.example.org/story"
    assert silence.covers("fr", "https://a.example/rss", link, "#news") is covered
    assert silence.active(NOW) and not silence.active(NOW + timedelta(hours=1))


def test_a_schedule_fires_next_in_its_time_zone_strictly_after_now():
    from monitor.digest_schedule import digest_trigger, next_digest_at

    weekdays = digest_trigger("0 9 * * mon-fri", "Europe/Berlin")
    friday_nine = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)  # 09:00 in Berlin, a Friday
    assert next_digest_at(weekdays, friday_nine - timedelta(minutes=1)) == friday_nine
    monday = next_digest_at(weekdays, friday_nine)  # at the fire time: the next one
    assert monday is not None and monday.astimezone(UTC) == datetime(2026, 12, 7, 8, tzinfo=UTC)
