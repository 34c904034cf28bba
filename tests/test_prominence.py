"""The `lead` and `front` fields (issue #10, "Prominence"): the first sentence of the summary,
the headline and lead read as one text, the break between them, and the fields used from a
rule file through `match_article` and through `monitor rules test`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.matching import load_rules, match_article
from monitor.matching.compile import RuleSet
from monitor.matching.match import field_texts
from monitor.matching.prominence import MAX_LEAD_CHARS, front_text, lead_sentence, source_span
from monitor.matching.text import FoldedField, FrontField, fold
from monitor.model import Article, TermHit
from tests.test_cli import invoke

NOW = datetime(2026, 12, 1, tzinfo=UTC)

RULES = """\
lists:
  face_recognition: [facial recognition, face recognition]
  ban: [ban*, moratorium]
rules:
  - id: front-ban
    title: A face term near a ban, up front
    condition: front:(face_recognition NEAR/8 ban)
  - id: lead-ban
    title: Both in the first sentence
    fields: [lead]
    condition: face_recognition and ban
  - id: front-phrase
    title: A phrase that would span the break
    condition: front:"recognition ban"
  - id: front-adjacent
    title: Face term right before the break
    condition: front:(face_recognition BEFORE/1 ban)
  - id: plain
    title: Anywhere in title and summary
    condition: face_recognition and ban
"""


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    load = load_rules(tmp_path / "r.yaml")
    assert load.ok, [str(problem) for problem in load.problems]
    return load.ruleset


def article(title: str, summary: str = "", language: str | None = None) -> Article:
    return Article("f", "e", title, NOW, summary=summary, language=language)


def matched(ruleset: RuleSet, title: str, summary: str) -> list[str]:
    return [match.rule_id for match in match_article(ruleset, article(title, summary))]


@pytest.mark.parametrize(
    ("summary", "lead"),
    [
        ("The U.S. Senate voted 52-48. Critics said it was late.", "The U.S. Senate voted 52-48."),
        ("Dr. Lee said the ban is final. Then more.", "Dr. Lee said the ban is final."),
        ("Shares rose 3.5 percent on the news. Then more.", "Shares rose 3.5 percent on the news."),
        ('He said: "No more." Then it ended.', 'He said: "No more."'),
        ("Police (e.g. in N.Y.) use it daily. Then more.", "Police (e.g. in N.Y.) use it daily."),
        ("  Leading spaces. Second.", "Leading spaces."),
        ("北京禁止人脸识别。法院周二裁定。", "北京禁止人脸识别。"),
        ("东京\uff1f不\uff01是的。", "东京\uff1f"),  # fullwidth ? and !
        ("얼굴인식을 금지했다. 다음 문장.", "얼굴인식을 금지했다."),
        ("A summary with no sentence end", "A summary with no sentence end"),
        ("", ""),
    ],
)
def test_the_lead_is_the_first_sentence(summary: str, lead: str) -> None:
    assert lead_sentence(summary) == lead
    assert summary.strip().startswith(lead)  # a prefix: hits map back to the summary


def test_a_summary_without_a_sentence_end_is_cut_at_a_word_boundary() -> None:
    summary = "word " * 200
    lead = lead_sentence(summary)
    assert len(lead) <= MAX_LEAD_CHARS and lead.endswith("word") and " " + lead in " " + summary


def test_the_article_language_chooses_the_abbreviations() -> None:
    summary = "Laut Nr. 5 der Verordnung ist es verboten. Zweiter Satz."
    assert lead_sentence(summary, "de") == "Laut Nr. 5 der Verordnung ist es verboten."


def test_front_is_the_title_then_the_lead_on_the_next_line() -> None:
    assert front_text("Headline", "Lead.") == "Headline\nLead."
    assert front_text("Headline", "") == "Headline"
    assert front_text("", "Lead.") == "Lead."
    texts = field_texts(article("Ban on face recognition", "It passed. Police objected."))
    assert texts[2:4] == ("It passed.", "Ban on face recognition\nIt passed.")


@pytest.mark.parametrize(
    ("title", "lead"),
    [
        ("Council bans facial recognition!", "Straße und Café: the ﬁrst vote."),
        ("“Quoted” headline —", "  — lead with dashes"),
        ("顔認識を禁止", "東京都は顔認識を禁止した。"),
        ("Überwachung", "Die Stadt verbietet es."),
    ],
)
def test_front_maps_every_folded_character_back_to_where_it_came_from(
    title: str, lead: str
) -> None:
    front = FrontField(FoldedField(title), FoldedField(lead))
    assert front.original == front_text(title, lead)
    head, _, tail = front.folded.partition(" \n ")
    assert (head, tail) == (fold(title).removesuffix(" "), fold(lead).removeprefix(" "))
    for position, char in enumerate(front.folded):
        origin = front.offset(position)
        if char == "\n":
            assert front.original[origin] == "\n"
        elif char != " ":
            # the original character folds to a text that holds this folded character
            assert char in fold(front.original[origin])
    offsets = [front.offset(position) for position in range(len(front.folded))]
    assert offsets == sorted(offsets)


def test_near_reads_the_headline_and_the_lead_as_one_text(ruleset: RuleSet) -> None:
    title, summary = "Council votes on facial recognition", "Ban passed on Tuesday. More."
    assert matched(ruleset, title, summary) == ["front-ban", "front-adjacent", "plain"]
    (match,) = [
        m for m in match_article(ruleset, article(title, summary)) if m.rule_id == "front-ban"
    ]
    front = front_text(title, "Ban passed on Tuesday.")
    assert match.hits == (
        TermHit("facial recognition", "front", "facial recognition", 17, 35, "face_recognition"),
        TermHit("ban*", "front", "Ban", 36, 39, "ban"),
    )
    assert front[36:39] == "Ban"


def test_no_phrase_spans_the_break(ruleset: RuleSet) -> None:
    # The folded front text is "... facial recognition \n ban passed ...": the mark between
    # the two sentences is not a letter, so the phrase "recognition ban" cannot match it.
    title, summary = "Council votes on facial recognition", "Ban passed on Tuesday."
    assert "front-phrase" not in matched(ruleset, title, summary)
    assert "front-phrase" in matched(ruleset, "Facial recognition ban passes", "")
    assert "front-phrase" in matched(ruleset, "Vote", "Facial recognition ban passes.")


def test_the_break_counts_as_one_word(ruleset: RuleSet) -> None:
    # BEFORE/1: at most one word between; the break is that word.
    assert "front-adjacent" in matched(ruleset, "Vote on facial recognition", "Ban passed.")
    assert "front-adjacent" not in matched(ruleset, "Vote on facial recognition", "The ban.")
    assert "front-adjacent" in matched(ruleset, "Facial recognition: the ban", "")


def test_the_rest_of_the_summary_is_background(ruleset: RuleSet) -> None:
    title = "Startup raises $20m for retail analytics"
    summary = "The round was led by Acme. A campaigner said facial recognition bans are coming."
    assert matched(ruleset, title, summary) == ["plain"]
    # Far apart in a long first sentence: NEAR/8 does not hold, the lead rule does.
    lead = "Facial recognition " + "word " * 12 + "was banned."
    assert matched(ruleset, "City news", lead + " Then more.") == ["lead-ban", "plain"]
    (match,) = [
        m
        for m in match_article(ruleset, article("City news", lead + " x."))
        if m.rule_id == "lead-ban"
    ]
    assert [(hit.field, hit.text, hit.start) for hit in match.hits] == [
        ("lead", "Facial recognition", 0),
        ("lead", "banned", lead.index("banned")),
    ]


def test_only_rule_sets_that_search_them_find_the_lead(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: r\n    title: t\n    terms: {a: [facial recognition]}\n"
    )
    plain = load_rules(tmp_path / "r.yaml").ruleset
    assert not plain.index.needs_prominence
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: r\n    title: t\n    fields: [front]\n"
        "    terms: {a: [facial recognition]}\n"
    )
    up_front = load_rules(tmp_path / "r.yaml").ruleset
    assert up_front.index.needs_prominence
    story = article("Facial recognition", "Second. Third.")
    assert [m.rule_id for m in match_article(up_front, story)] == ["r"]
    assert [m.rule_id for m in match_article(plain, story)] == ["r"]


def test_case_sensitive_and_regex_terms_in_front(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        """\
rules:
  - id: cased
    title: t
    fields: [front]
    terms:
      agency: [{phrase: ICE, case_sensitive: true}]
  - id: regex
    title: t
    fields: [front]
    terms:
      pattern: [{regex: 'Gesichtserkennung.*Verbot'}]
""",
        encoding="utf-8",
    )
    ruleset = load_rules(tmp_path / "r.yaml").ruleset
    found = match_article(ruleset, article("Über die Gesichtserkennung", "ICE plans. Verbot."))
    assert [(m.rule_id, [(h.field, h.text, h.start) for h in m.hits]) for m in found] == [
        ("cased", [("front", "ICE", len("Über die Gesichtserkennung") + 1)])
    ]  # the regex's '.' does not cross the line break
    found = match_article(ruleset, article("Gesichtserkennung: Verbot", "ice cream."))
    assert [m.rule_id for m in found] == ["regex"]


def test_hits_in_lead_and_front_show_in_the_title_and_summary() -> None:
    title, summary = "Vote on facial recognition", "  Ban passed. More."
    front = front_text(title, lead_sentence(summary))
    start = front.index("Ban")
    assert source_span(title, summary, "front", start, start + 3) == ("summary", 2, 5)
    assert source_span(title, summary, "front", 8, 26) == ("title", 8, 26)
    assert source_span(title, summary, "lead", 0, 3) == ("summary", 2, 5)
    assert source_span(title, summary, "front", 20, start + 3) is None  # spans the break
    assert source_span(title, summary, "summary", 1, 2) == ("summary", 1, 2)


def test_rules_test_reports_front_and_lead_matches(tmp_path: Path, ruleset: RuleSet) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "r.yaml").write_text(RULES, encoding="utf-8")
    articles = tmp_path / "a.jsonl"
    rows = [
        {"id": "near", "title": "Council votes on facial recognition", "summary": "Ban passed."},
        {
            "id": "background",
            "title": "Startup raises $20m",
            "summary": "Led by Acme. A campaigner wants facial recognition bans.",
        },
    ]
    articles.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = invoke(
        "rules", "test", "--input", str(articles), "--rules", str(folder), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["id"], [m["rule"] for m in line["matches"]]) for line in lines] == [
        ("near", ["front-ban", "front-adjacent", "plain"]),
        ("background", ["plain"]),
    ]
    table = invoke(
        "rules", "test", "--input", str(articles), "--rules", str(folder), env={"COLUMNS": "200"}
    )
    assert table.exit_code == 0, table.output
    assert "facial recognition [front]" in table.stdout
    assert "summary: Ban passed." in table.stdout
    assert table.stdout.splitlines()[-1] == "2 articles, 2 matched"
