"""Every ```yaml block of docs/rules.md loads with the real loader.

A block that starts at column 0 is a whole rule file; all of them are loaded together, as
files of one rules folder. An indented block is a fragment of a rule (``condition: >``,
``examples:``): its keys replace those of the first rule of the page's complete example, and
that folder is loaded. A block meant to be wrong must say so with a ``# error:`` comment
giving the start of the message it produces. There are none today, and the first test
fails when one appears, so that its check is written with it.
"""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from monitor.matching import check_examples, load_rules

DOC = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
BLOCKS = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
WHOLE = [block for block in BLOCKS if not block.startswith(" ")]
FRAGMENTS = [block for block in BLOCKS if block.startswith(" ")]
COMPLETE = next(block for block in WHOLE if re.search(r"^rules:", block, re.M))
# Lists a fragment names that no block of the page defines.
NEEDED_LISTS = "lists:\n  consumer_device: [Face ID, iPhone, Pixel]\n"
WRONG = re.compile(r"^\s*# error: (.+)$", re.M)


def load_folder(folder: Path, files: dict[str, str]) -> Any:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return load_rules(folder)


def with_fragment(fragment: str) -> str:
    yaml = YAML(typ="safe", pure=True)
    document = yaml.load(COMPLETE)
    document["rules"][0].update(yaml.load(textwrap.dedent(fragment)))
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def first_line(block: str) -> str:
    return next(line.strip() for line in block.splitlines() if line.strip())


def test_the_page_has_the_blocks_this_test_expects() -> None:
    assert len(WHOLE) >= 2 and len(FRAGMENTS) >= 1, BLOCKS
    assert not any(WRONG.search(block) for block in BLOCKS), "check the marked blocks' errors"


def test_the_whole_files_load_together_and_their_examples_pass(tmp_path: Path) -> None:
    load = load_folder(tmp_path, {f"block{n}.yaml": block for n, block in enumerate(WHOLE)})
    assert [str(problem) for problem in load.problems] == []
    assert [rule.id for rule in load.ruleset.rules] == ["fr-vendor-exit", "fr-ban-up-front"]
    assert [str(failure) for failure in check_examples(load.ruleset)] == []


@pytest.mark.parametrize(
    "fragment",
    [pytest.param(block, id=first_line(block)) for block in FRAGMENTS],
)
def test_each_fragment_loads_in_the_complete_example_and_its_examples_pass(
    tmp_path: Path, fragment: str
) -> None:
    others = {f"block{n}.yaml": block for n, block in enumerate(WHOLE) if block is not COMPLETE}
    load = load_folder(
        tmp_path,
        {**others, "complete.yaml": with_fragment(fragment), "needed.yaml": NEEDED_LISTS},
    )
    # "needed.yaml" defines lists for one fragment only; the others leave them unused.
    assert [str(p) for p in load.problems if p.severity == "error"] == []
    assert [str(failure) for failure in check_examples(load.ruleset)] == []
