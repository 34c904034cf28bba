"""The README documents every setting and every command the code has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from monitor.cli import main
from monitor.config import CONFIG_FILE_VARIABLE, Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "monitor") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names += commands(command, f"{prefix} {name}")
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_setting_is_in_the_readme_table():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    expected = set(Settings.environment_names().values()) | {CONFIG_FILE_VARIABLE}
    assert documented == expected


def test_every_command_is_in_the_readme():
    missing = [name for name in commands(main) if f"`{name}" not in README]
    assert missing == []


def test_the_readme_dry_run_example_is_what_the_shipped_pack_prints(tmp_path):
    from click.testing import CliRunner

    (example,) = re.findall(r'^\{"id": "https://example.org/story".*\}$', README, re.MULTILINE)
    article = json.loads(example)
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps({"title": article["title"], "link": article["id"]}) + "\n")
    rules = Path(__file__).resolve().parents[1] / "rules"
    result = CliRunner().invoke(
        main,
        ["rules", "test", "--input", str(source), "--rules", str(rules), "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [example]
