"""YAML loading that keeps line numbers, so every finding can point at `file:line [field]`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from haha.errors import InputError


@dataclass(frozen=True)
class YamlDoc:
    """A parsed YAML mapping plus the 1-based line of every key (dotted paths, list items as `a.0`)."""

    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, dotted: str) -> int | None:
        """The line of `dotted`, or of its nearest parent that has one."""
        while dotted:
            if dotted in self.lines:
                return self.lines[dotted]
            dotted = dotted.rpartition(".")[0]
        return None


def _index_lines(node: yaml.Node, prefix: str, out: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            out[path] = key.start_mark.line + 1
            _index_lines(value, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}.{i}" if prefix else str(i)
            out[path] = item.start_mark.line + 1
            _index_lines(item, path, out)


def line_index(text: str) -> dict[str, int]:
    """Dotted path → line for YAML or JSON text (JSON is YAML); empty when it does not parse."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}
    if node is not None:
        _index_lines(node, "", lines)
    return lines


def parse_yaml(text: str, file: str | Path) -> YamlDoc:
    """Parse one YAML mapping safely; syntax errors name the line and column."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        raise InputError(
            f"YAML syntax error{col}: {exc.problem or exc.context}",
            file=file,
            line=line,
            fix="fix the YAML syntax at that spot (indentation, a missing colon or quote)",
        ) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", file=file) from exc
    if not isinstance(data, dict):
        raise InputError(
            "expected a YAML mapping of Axolotl keys at the top level",
            file=file,
            line=1,
            fix="start the file with `base_model: ...`",
        )
    lines: dict[str, int] = {}
    if node is not None:
        _index_lines(node, "", lines)
    return YamlDoc(data=data, lines=lines)
