"""Rule files as YAML: the shared reader of monitor.yamlsource, speaking of "rule files".

The reader itself (positions, libyaml with the pure parser kept for messages, hints) is shared
with the feeds file; this module only fixes the noun of its messages for the rule loader.
"""

from __future__ import annotations

from typing import Any

from monitor import yamlsource
from monitor.yamlsource import Kind, PathKey, Position, Scalar, SourceMap, YamlProblem

__all__ = ["KIND", "PathKey", "Position", "Scalar", "SourceMap", "YamlProblem", "read_yaml"]

KIND = Kind("rule file", escaped="regexes")


def read_yaml(text: str) -> tuple[Any, SourceMap]:
    """Parse one rule file; raise YamlProblem with the position of a fatal problem."""
    return yamlsource.read_yaml(text, KIND)


def _read(text: str, *, pure: bool) -> tuple[Any, SourceMap]:
    """One parser only (libyaml or ruamel's own), for comparing the two on rule files."""
    return yamlsource.read_events(text, KIND, pure=pure)
