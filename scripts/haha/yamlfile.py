"""YAML loading that keeps line numbers, so every finding can point at `file:line [field]`.

A PR gate parses what anyone can submit, so the parse is bounded: the text's size is checked before
parsing, nesting depth is capped, and aliases (`*name`) are refused outright. An alias lets a few
hundred bytes expand into billions of nodes ("billion laughs") once anything walks the data, and a
config gains nothing from them that writing the value out does not give; refusing every alias is
simpler to explain, and to trust, than counting expansions. Duplicate keys, which YAML loaders
resolve silently (the last one wins), are errors naming both lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from haha.errors import InputError

MAX_YAML_BYTES = 256 * 1024  # a config is ~2 KB; a quarter MiB leaves room for long comments
MAX_DEPTH = 32  # Axolotl's deepest keys (fsdp_config, datasets[].type) nest 3-4 levels


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


_BOUND_FIXES = {
    "alias": "write the value out instead of an anchor/alias (configs may not use aliases)",
    "nested": f"flatten it: Axolotl's options nest a few levels at most (limit {MAX_DEPTH})",
}


# libyaml (C) where PyYAML was built with it (its wheels are): ten times faster than the pure-Python
# loader, which is the fallback. Both report the same marks (line, column).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _refuse_unbounded(text: str) -> None:
    """One pass over the parse events, before anything is composed: no aliases, bounded nesting."""
    loader = _Loader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.AliasEvent):
                message = f"alias *{event.anchor} is not allowed here"
                raise yaml.composer.ComposerError(None, None, message, event.start_mark)
            if isinstance(event, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    message = f"nested more than {MAX_DEPTH} levels deep"
                    raise yaml.composer.ComposerError(None, None, message, event.start_mark)
            elif isinstance(event, _CLOSE):
                depth -= 1
    finally:
        loader.dispose()


def _index_lines(node: yaml.Node, prefix: str, out: dict[str, int], file: str | Path | None) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            line = key.start_mark.line + 1
            if file is not None and path in seen:
                raise InputError(
                    f"duplicate key {key.value!r} (first on line {seen[path]}, again on line {line}): "
                    "YAML keeps only the last one",
                    file=file,
                    line=line,
                    field=path,
                    fix=f"keep one {key.value!r}: delete line {seen[path]} or line {line}",
                )
            seen[path] = line
            out[path] = line
            _index_lines(value, path, out, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}.{i}" if prefix else str(i)
            out[path] = item.start_mark.line + 1
            _index_lines(item, path, out, file)


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    _refuse_unbounded(text)
    loader = _Loader(text)
    try:
        return loader.get_single_node(), loader
    finally:
        loader.dispose()


def load_bounded(text: str) -> Any:
    """The data of a YAML document within the parse bounds; raises yaml.YAMLError (or ValueError,
    RecursionError) where `parse_yaml` would report an error."""
    if len(text) > MAX_YAML_BYTES:
        raise ValueError(f"over {MAX_YAML_BYTES:,} characters")
    node, loader = _compose(text)
    return loader.construct_document(node) if node is not None else None


def line_index(text: str) -> dict[str, int]:
    """Dotted path → line for YAML or JSON text (JSON is YAML); empty when it does not parse."""
    if len(text) > MAX_YAML_BYTES * 64:
        return {}
    try:
        node, _ = _compose(text)
    except (yaml.YAMLError, RecursionError):
        return {}
    lines: dict[str, int] = {}
    if node is not None:
        _index_lines(node, "", lines, None)
    return lines


def parse_yaml(text: str, file: str | Path) -> YamlDoc:
    """Parse one YAML mapping safely and within bounds; errors name the line, column and fix."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_YAML_BYTES:
        raise InputError(
            f"file is {size:,} bytes; configs are limited to {MAX_YAML_BYTES:,} bytes",
            file=file,
            fix="a config holds settings only: move data into train/data/ and drop long comments",
        )
    try:
        node, loader = _compose(text)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        problem = str(exc.problem or exc.context)
        bound = next((fix for word, fix in _BOUND_FIXES.items() if word in problem), None)
        raise InputError(
            f"YAML {'error' if bound else 'syntax error'}{col}: {problem}",
            file=file,
            line=line,
            fix=bound or "fix the YAML syntax at that spot (indentation, a missing colon or quote)",
        ) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", file=file, fix="fix the YAML syntax") from exc
    except (ValueError, RecursionError) as exc:  # e.g. an integer longer than Python converts
        raise InputError(
            f"YAML value cannot be read: {str(exc)[:120]}", file=file, fix="write the value as a plain number"
        ) from exc
    if not isinstance(data, dict):
        raise InputError(
            "expected a YAML mapping of Axolotl keys at the top level",
            file=file,
            line=1,
            fix="start the file with `base_model: ...`",
        )
    lines: dict[str, int] = {}
    _index_lines(node, "", lines, file)
    for key in data:
        if not isinstance(key, str):
            raise InputError(
                f"top-level key {key!r} is not a name",
                file=file,
                line=lines.get(str(key)),
                field=str(key),
                fix="Axolotl keys are names like learning_rate: quote or rename it",
            )
    return YamlDoc(data=data, lines=lines)
