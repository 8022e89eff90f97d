"""Turning a jsonschema error into the field and message a user can act on."""

from __future__ import annotations

from jsonschema.exceptions import ValidationError, best_match

from haha.schemas import dotted, short_message


def explain(error: ValidationError) -> tuple[str, str]:
    """(dotted field, message); a missing key names the key, a failed union its closest branch."""
    if error.validator in {"anyOf", "oneOf"} and error.context:
        error = best_match(error.context)
    field = dotted(error)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [key for key in error.validator_value if key not in error.instance]
        field = ".".join(filter(None, [field, ",".join(missing)]))
    return field, short_message(error)
