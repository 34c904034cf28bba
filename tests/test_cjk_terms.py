"""CJK terms (issue #10, "Languages"): a phrase written in Chinese, Japanese or Korean is found
inside text without word boundaries, and Korean with particles attached.

The headlines are real rows of the labelled dev set, copied with their source into
tests/data/cjk-dev-rows.jsonl (`copied_from`: shared/data/labelled/headlines-dev.jsonl). Before
this change, a CJK phrase matched only where it stood alone between spaces or punctuation:
`人脸识别` did not match D037, `顔認証` did not match D057, D058 or D078.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.matching import load_rules, match_article
from monitor.matching.compile import RuleSet, automaton_keys
from monitor.matching.rule import Term
from monitor.model import Article, TermHit

ROWS = {
    row["id"]: row
    for row in map(
        json.loads,
        (Path(__file__).parent / "data" / "cjk-dev-rows.jsonl")
        .read_text(encoding="utf-8")
        .splitlines(),
    )
}
NOW = datetime(2026, 12, 1, tzinfo=UTC)
RULES = """\
lists:
  face: ["人脸识别", "人臉識別", "顔認証", "顔認識", "얼굴인식", "안면인식", "얼굴"]
  law: ["法的規制", "法規制", "治理", "기술", "법적"]
  surveillance: ["감시"]
  unlock: ["解鎖*"]
rules:
  - id: face
    title: t
    fields: [title]
    condition: face
  - id: face-law
    title: t
    fields: [title]
    condition: face and law
  - id: face-near-law
    title: t
    fields: [title]
    condition: face NEAR/1 law
  - id: surveillance
    title: t
    condition: surveillance
  - id: unlock
    title: t
    condition: unlock
"""


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "r.yaml").write_text(RULES, encoding="utf-8")
    load = load_rules(folder)
    assert load.ok, [str(problem) for problem in load.problems]
    return load.ruleset


def hits(ruleset: RuleSet, title: str) -> dict[str, list[tuple[str, int, int]]]:
    article = Article("f", "e", title, NOW)
    return {
        match.rule_id: [(hit.text, hit.start, hit.end) for hit in match.hits]
        for match in match_article(ruleset, article)
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # Chinese: the term starts the headline and runs on into 治理 (governance).
        (
            "D037",
            {
                "face": [("人脸识别", 0, 4)],
                "face-law": [("人脸识别", 0, 4), ("治理", 4, 6)],
                "face-near-law": [("人脸识别", 0, 4), ("治理", 4, 6)],
            },
        ),
        # Japanese: 顔認証 and 法的規制 inside one run of text.
        (
            "D057",
            {
                "face": [("顔認証", 0, 3)],
                "face-law": [("顔認証", 0, 3), ("法的規制", 11, 15)],
                "face-near-law": [("顔認証", 0, 3), ("法的規制", 11, 15)],
            },
        ),
        (
            "D058",
            {
                "face": [("顔認証", 0, 3)],
                "face-law": [("顔認証", 0, 3), ("法規制", 11, 14)],
                "face-near-law": [("顔認証", 0, 3), ("法規制", 11, 14)],
            },
        ),
        # A payment column: the face term is found, no law term.
        ("D078", {"face": [("顔認証", 0, 3)]}),
        # Korean: 기술 with the particle 의 attached (기술의); 법적 is one word from 얼굴인식.
        (
            "D061",
            {
                "face": [("얼굴인식", 0, 4), ("얼굴", 0, 2)],
                "face-law": [("얼굴인식", 0, 4), ("얼굴", 0, 2), ("기술", 5, 7), ("법적", 9, 11)],
                "face-near-law": [
                    ("얼굴인식", 0, 4),
                    ("얼굴", 0, 2),
                    ("기술", 5, 7),
                    ("법적", 9, 11),
                ],
            },
        ),
        ("D177", {"face": [("얼굴", 4, 6)]}),
        # Traditional Chinese; a '*' after a CJK term changes nothing: the hit is the term.
        ("D182", {"unlock": [("解鎖", 16, 18)]}),
    ],
)
def test_cjk_terms_in_real_headlines(ruleset: RuleSet, row: str, expected: dict) -> None:
    title = ROWS[row]["title"]
    found = hits(ruleset, title)
    assert found == expected
    for rule_hits in found.values():
        for text, start, end in rule_hits:
            assert title[start:end] == text


def test_korean_terms_match_with_particles_attached(ruleset: RuleSet) -> None:
    # Matching behaviour, not relevance: the particles 을, 은 and 를 attached to the noun.
    assert hits(ruleset, "경찰, 얼굴인식을 도입")["face"] == [("얼굴인식", 4, 8), ("얼굴", 4, 6)]
    assert hits(ruleset, "안면인식은 위험")["face"] == [("안면인식", 0, 4)]
    assert hits(ruleset, "경찰 감시를 강화") == {"surveillance": [("감시", 3, 5)]}


def test_a_korean_term_is_not_found_inside_a_syllable(ruleset: RuleSet) -> None:
    # 감시 (surveillance) and 감식 (forensics) differ only by the final consonant of the
    # second syllable: syllables are compared whole, not as jamo.
    assert hits(ruleset, "감식 결과 발표") == {}


def test_latin_terms_keep_their_word_boundaries() -> None:
    # Only an end written in a script without spaces drops the boundary.
    assert automaton_keys(Term("ban")) == {" ban ", " bans "}
    assert automaton_keys(Term("人脸识别")) == {"人脸识别"}
    assert automaton_keys(Term("AI 监控")) == {" ai 监控", " ai监控"}
    assert automaton_keys(Term("顔認証*")) == {"顔認証"}


def test_cjk_hits_are_explained_with_their_text(ruleset: RuleSet) -> None:
    article = Article("f", "e", ROWS["D057"]["title"], NOW)
    (match,) = [m for m in match_article(ruleset, article) if m.rule_id == "face"]
    assert match.hits == (TermHit("顔認証", "title", "顔認証", 0, 3, "face"),)


def test_the_docs_table_of_cjk_terms(tmp_path: Path) -> None:
    # docs/rules.md, "CJK terms": each row's matches and non-matches.
    (tmp_path / "r.yaml").write_text(
        'rules:\n  - id: r\n    title: t\n    terms:\n      a: ["人脸识别", "AI 监控"]\n',
        encoding="utf-8",
    )
    ruleset = load_rules(tmp_path / "r.yaml").ruleset
    for title, found in [
        ("中国人脸识别第一案", True),
        ("人臉識別", False),
        ("AI 监控", True),
        ("AI监控学生", True),
        ("用AI监控", False),
    ]:
        assert bool(match_article(ruleset, Article("f", "e", title, NOW))) is found, title


def test_before_keeps_the_order_inside_a_run(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        'rules:\n  - id: r\n    title: t\n    condition: \'"治理" BEFORE/1 "人脸识别"\'\n',
        encoding="utf-8",
    )
    ruleset = load_rules(tmp_path / "r.yaml").ruleset
    assert match_article(ruleset, Article("f", "e", ROWS["D037"]["title"], NOW)) == ()
    assert match_article(ruleset, Article("f", "e", "加强治理人脸识别", NOW)) != ()
