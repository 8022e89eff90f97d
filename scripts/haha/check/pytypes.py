"""Python type annotations, as `str(annotation)` prints them, turned into JSON Schema.

`axolotl config-schema` (0.19.0) cannot serialise its pydantic model (a torch.dtype default), so it
falls back to `{"properties": {name: {"type": "int | None", ...}}}`. This module makes that a real
schema. Scalars mirror pydantic's lax mode, which is what Axolotl validates with: YAML 1.1 reads
`2e-4` as a string and pydantic still accepts it as a float, so the schema must too.
Class types (Axolotl's nested models and enums) are left unconstrained.
"""

from __future__ import annotations

import ast
import re
from typing import Any

_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
LAX_DEFS: dict[str, Any] = {
    "integer": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\s*[+-]?\d+\s*$"}]},
    "number": {"anyOf": [{"type": "number"}, {"type": "string", "pattern": _NUMBER}]},
    "boolean": {
        "anyOf": [
            {"type": "boolean"},
            {"enum": [0, 1, "0", "1", "true", "false", "True", "False", "yes", "no", "on", "off"]},
        ]
    },
}
_SCALARS: dict[str, dict[str, Any]] = {
    "int": {"$ref": "#/$defs/integer"},
    "float": {"$ref": "#/$defs/number"},
    "bool": {"$ref": "#/$defs/boolean"},
    "str": {"type": "string"},
    "None": {"type": "null"},
    "NoneType": {"type": "null"},
}
_ARRAYS = {"list", "List", "set", "Set", "tuple", "Tuple", "Sequence", "frozenset"}
_OBJECTS = {"dict", "Dict", "Mapping"}
_GENERIC = re.compile(r"^(?P<head>[\w.]+)\[(?P<args>.*)\]$", re.DOTALL)
_CLASS = re.compile(r"^<class '(?P<name>[\w.]+)'>$")


def _split(text: str, sep: str) -> list[str]:
    """Split at `sep` outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _union(members: list[dict[str, Any]]) -> dict[str, Any]:
    if any(m == {} for m in members):
        return {}
    unique = [m for i, m in enumerate(members) if m not in members[:i]]
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


def _generic(head: str, args: list[str]) -> dict[str, Any]:
    if head == "Union":
        return _union([type_schema(a) for a in args])
    if head == "Optional":
        return _union([type_schema(args[0]), {"type": "null"}])
    if head == "Literal":
        return {"enum": [ast.literal_eval(a) for a in args]}
    if head == "Annotated":
        return type_schema(args[0])
    if head in _ARRAYS:
        items = (
            _union([type_schema(a) for a in args if a != "..."])
            if head in {"tuple", "Tuple"}
            else type_schema(args[0])
        )
        return {"type": "array", "items": items} if items else {"type": "array"}
    if head in _OBJECTS:
        return {"type": "object"}
    return {}


def type_schema(text: str) -> dict[str, Any]:
    """The JSON Schema for one annotation string, e.g. `int | None` or `typing.Literal['a', 'b']`."""
    text = text.strip()
    members = _split(text, "|")
    if len(members) > 1:
        return _union([type_schema(m) for m in members])
    if match := _CLASS.match(text):
        text = match["name"]
    if match := _GENERIC.match(text):
        return _generic(match["head"].removeprefix("typing."), _split(match["args"], ","))
    return dict(_SCALARS.get(text.removeprefix("builtins."), {}))
