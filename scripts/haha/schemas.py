"""Loading the JSON Schemas in `schemas/` and applying them with jsonschema.

The schemas live in the repo's top-level `schemas/` (what users read; `haha schema` writes there). The
package reaches them through `haha/schema_files`, a link to that folder in a checkout (so an editable
install sees edits at once) and a folder of copies in a built wheel (package data), so a non-editable
install (the pod image, the Actions jobs) needs no checkout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from haha.errors import InputError

SCHEMA_DIR = Path(__file__).resolve().parent / "schema_files"


def refuse_constant(name: str) -> float:
    """For json.loads(parse_constant=…): NaN and Infinity are not JSON; range checks let them pass."""
    raise ValueError(f"{name} is not a JSON number")


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator for `schemas/<name>.schema.json` (built once per process)."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    schema = json.loads(path.read_text())
    if name != "axolotl-config":
        Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def dotted(error: ValidationError) -> str:
    """`a.0.b` for the instance path of an error (the field users see in messages)."""
    return ".".join(str(p) for p in error.absolute_path)


def short_message(error: ValidationError) -> str:
    """jsonschema's message without echoing huge instances back at the user."""
    if error.validator in {
        "required",
        "additionalProperties",
        "type",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "pattern",
        "minItems",
        "uniqueItems",
        "exclusiveMinimum",
    }:
        message = error.message
        return message if len(message) <= 200 else message[:197] + "..."
    return f"does not match the schema ({error.validator})"


def explain(error: ValidationError) -> tuple[str, str]:
    """(dotted field, message) a user can act on; a missing key names the key, a failed union its
    closest branch."""
    if error.validator in {"anyOf", "oneOf"} and error.context:
        error = best_match(error.context)
    field = dotted(error)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [key for key in error.validator_value if key not in error.instance]
        field = ".".join(filter(None, [field, ",".join(missing)]))
    return field, short_message(error)


def iter_errors(name: str, instance: Any) -> Iterator[ValidationError]:
    """Every schema violation, in document order."""
    yield from sorted(validator(name).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))


def validate(name: str, instance: Any, file: str | Path) -> None:
    """Raise an InputError for the first violation."""
    for error in iter_errors(name, instance):
        raise InputError(short_message(error), file=file, field=dotted(error) or None)
