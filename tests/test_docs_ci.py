"""CI runs the command the README gives for testing, and that command runs every check."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Test it\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the README's 'Test it' section has no sh block"
    return block.group(1).strip()


def make_prerequisites(target: str) -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(rf"^{target}:([^#\n]*)", makefile, re.M)
    assert found is not None, f"the Makefile has no {target} target"
    return found.group(1).split()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    make_lines = [
        line.strip()
        for line in script.splitlines()
        if line.strip().startswith("make ") and not line.strip().startswith("#")
    ]
    assert make_lines == [readme_test_command()] == ["make check"]


def test_the_readme_command_runs_lint_types_and_the_gated_tests() -> None:
    assert make_prerequisites("check") == ["lint", "typecheck", "test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "--cov-fail-under=$(COVERAGE_MIN)" in test_recipe
