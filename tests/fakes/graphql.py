"""Just enough GraphQL to read what the runpod SDK sends: root fields, their arguments, selections.

The SDK builds queries by string interpolation, so parsing them for real (rather than regex-matching)
is what catches a value that breaks the query text, as a real GraphQL server would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r'\s+|,|#[^\n]*|(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<punct>[{}()\[\]:!$=])'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
)


class GraphQLSyntaxError(ValueError):
    pass


@dataclass
class Field:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    selections: list[Field] = field(default_factory=list)


@dataclass
class Operation:
    kind: str  # "query" or "mutation"
    fields: list[Field]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise GraphQLSyntaxError(f"Syntax Error: Unexpected character {text[pos]!r} at {pos}")
        pos = match.end()
        if match.lastgroup:
            out.append((match.lastgroup, match.group(match.lastgroup)))
    return out


class _Parser:
    def __init__(self, text: str, variables: dict[str, Any] | None = None) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.variables = variables or {}

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok[0] == "eof" or (value is not None and tok[1] != value):
            raise GraphQLSyntaxError(f"Syntax Error: Expected {value or 'token'}, found {tok[1] or '<EOF>'}")
        self.i += 1
        return tok

    def operation(self) -> Operation:
        kind = "query"
        if self.peek()[1] in ("query", "mutation"):
            kind = self.take()[1]
            if self.peek()[0] == "name":
                self.take()
            if self.peek()[1] == "(":
                self.variable_definitions()
        fields = self.selection_set()
        if self.peek()[0] != "eof":
            raise GraphQLSyntaxError(f"Syntax Error: Unexpected {self.peek()[1]}")
        return Operation(kind, fields)

    def variable_definitions(self) -> None:
        """`($name: Type! $other: [Type] = default)`: checked for shape; values come from `variables`."""
        self.take("(")
        while self.peek()[1] != ")":
            self.take("$")
            self.take()
            self.take(":")
            self.type_ref()
            if self.peek()[1] == "=":
                self.take("=")
                self.value()
        self.take(")")

    def type_ref(self) -> None:
        if self.peek()[1] == "[":
            self.take("[")
            self.type_ref()
            self.take("]")
        elif self.take()[0] != "name":
            raise GraphQLSyntaxError("Syntax Error: Expected a type name")
        if self.peek()[1] == "!":
            self.take("!")

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields = []
        while self.peek()[1] != "}":
            fields.append(self.field())
        self.take("}")
        return fields

    def field(self) -> Field:
        kind, name = self.take()
        if kind != "name":
            raise GraphQLSyntaxError(f"Syntax Error: Expected Name, found {name}")
        result = Field(name)
        if self.peek()[1] == "(":
            self.take("(")
            while self.peek()[1] != ")":
                key = self.take()[1]
                self.take(":")
                result.args[key] = self.value()
            self.take(")")
        if self.peek()[1] == "{":
            result.selections = self.selection_set()
        return result

    def value(self) -> Any:
        kind, text = self.take()
        if text == "$":
            return self.variables.get(self.take()[1])
        if kind == "string":
            return json.loads(text)  # GraphQL string escapes are JSON's
        if kind == "number":
            return json.loads(text)
        if text == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
            self.take("]")
            return items
        if text == "{":
            obj = {}
            while self.peek()[1] != "}":
                key = self.take()[1]
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(text, text)  # else an enum value
        raise GraphQLSyntaxError(f"Syntax Error: Unexpected {text}")


def parse(text: str, variables: dict[str, Any] | None = None) -> Operation:
    """Parse one anonymous or named query/mutation; raise GraphQLSyntaxError like a server would.

    `$name` arguments take their values from `variables` (as sent beside the query).
    """
    return _Parser(text, variables).operation()


# --- validation against a schema -----------------------------------------------------------------
# The messages are graphql-js's validation rules (FieldsOnCorrectTypeRule, KnownArgumentNamesRule,
# ValuesOfCorrectTypeRule, ScalarLeafsRule; github.com/graphql/graphql-js src/validation/rules), which
# a GraphQL server answers with HTTP 400 and `{"errors": [{"message": ...}]}` before running anything.


@dataclass(frozen=True)
class FieldDef:
    """A field of an object type: the object type its value has (None: a leaf), its arguments."""

    type: str | None = None
    args: dict[str, str] = field(default_factory=dict)  # argument → input type ("": a scalar/enum)


@dataclass(frozen=True)
class Schema:
    types: dict[str, dict[str, FieldDef]]  # object types, "Query" and "Mutation" among them
    inputs: dict[str, dict[str, str]]  # input object types: field → input type ("": scalar/enum)

    def validate(self, op: Operation) -> str | None:
        """The first validation error a GraphQL server would answer for `op`, or None."""
        root = "Mutation" if op.kind == "mutation" else "Query"
        return self._selections(root, op.fields)

    def _selections(self, parent: str, fields: list[Field]) -> str | None:
        for f in fields:
            found = self.types[parent].get(f.name)
            if found is None:
                return f'Cannot query field "{f.name}" on type "{parent}".'
            for arg, value in f.args.items():
                if arg not in found.args:
                    return f'Unknown argument "{arg}" on field "{parent}.{f.name}".'
                if error := self._value(found.args[arg], value):
                    return error
            if found.type is None and f.selections:
                return f'Field "{f.name}" must not have a selection since its type has no subfields.'
            if found.type is not None and not f.selections:
                return f'Field "{f.name}" of type "{found.type}" must have a selection of subfields.'
            if found.type is not None and (error := self._selections(found.type, f.selections)):
                return error
        return None

    def _value(self, type_name: str, value: Any) -> str | None:
        if isinstance(value, list):
            return next((e for v in value if (e := self._value(type_name, v))), None)
        if not type_name or not isinstance(value, dict):
            return None
        known = self.inputs[type_name]
        for key, item in value.items():
            if key not in known:
                return f'Field "{key}" is not defined by type "{type_name}".'
            if error := self._value(known[key], item):
                return error
        return None
