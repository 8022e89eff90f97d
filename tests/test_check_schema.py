"""Axolotl's schema: regeneration from the CLI's output, the type translation, and config validation."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from check_helpers import SMOL, check, edit_config, errors, make_repo, only, warnings
from haha.check.axolotl_schema import SCHEMA_PATH, regenerate
from haha.check.pytypes import LAX_DEFS, type_schema
from jsonschema import Draft202012Validator

FALLBACK = {
    "properties": {
        "base_model": {"default": "PydanticUndefined", "type": "<class 'str'>"},
        "trl": {"default": "PydanticUndefined", "type": "axolotl.utils.schemas.trl.TRLConfig | None"},
        "lora_r": {"type": "int | None", "description": "LoRA rank"},
        "type_of_model": {"type": "str | None"},
        "excess_length_strategy": {"type": "typing.Optional[typing.Literal['drop', 'truncate', 'raise']]"},
    },
    "_note": "simplified schema (full generation failed)",
}


def fake_axolotl(tmp_path: Path) -> Path:
    """An `axolotl` that prints a banner, then the simplified schema, like 0.19.0 does."""
    script = tmp_path / "axolotl"
    payload = json.dumps(FALLBACK, indent=2)
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "axolotl, version 0.19.0"; exit 0; fi\n'
        "echo '     #@@ #@@ banner'\n"
        f"cat <<'JSON'\n{payload}\nJSON\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_regenerate_strips_the_banner_and_writes_a_valid_sorted_schema(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    regenerate(out, str(fake_axolotl(tmp_path)))
    text = out.read_text()
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    assert text == json.dumps(schema, indent=2, sort_keys=True) + "\n"
    assert schema["required"] == ["base_model"]
    assert schema["title"].startswith("Axolotl 0.19.0 config")
    assert schema["properties"]["lora_r"]["description"] == "LoRA rank"
    assert schema["properties"]["model_type"] == schema["properties"]["type_of_model"]
    valid = Draft202012Validator(schema)
    assert valid.is_valid({"base_model": "m", "lora_r": "16", "excess_length_strategy": "drop"})
    assert not valid.is_valid({"base_model": "m", "excess_length_strategy": "cut"})
    assert not valid.is_valid({"lora_r": 8})


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        ("int | None", {"anyOf": [{"$ref": "#/$defs/integer"}, {"type": "null"}]}),
        ("<class 'str'>", {"type": "string"}),
        ("typing.Optional[typing.Literal['a', 'b']]", {"anyOf": [{"enum": ["a", "b"]}, {"type": "null"}]}),
        ("list[str] | None", {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}),
        ("dict[str, typing.Any] | None", {"anyOf": [{"type": "object"}, {"type": "null"}]}),
        ("axolotl.utils.schemas.peft.PeftConfig | None", {}),
        (
            "typing.Optional[typing.Annotated[list[float], MinLen(min_length=1)]]",
            {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/number"}}, {"type": "null"}]},
        ),
    ],
)
def test_type_schema(annotation: str, schema: dict) -> None:
    assert type_schema(annotation) == schema


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("number", [2e-4, 1, "2e-4", "0.5"], ["fast", True]),
        ("integer", [8, "8"], [8.5, "8.5", "x"]),
        ("boolean", [True, "yes", 0], ["maybe", 2]),
    ],
)
def test_scalars_are_as_lax_as_pydantic(kind: str, good: list, bad: list) -> None:
    check = Draft202012Validator(LAX_DEFS[kind])
    assert all(check.is_valid(v) for v in good)
    assert not any(check.is_valid(v) for v in bad)


def test_committed_schema_is_axolotls() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["title"].startswith("Axolotl 0.19.0")
    assert {"base_model", "learning_rate"} <= set(schema["required"])
    assert {"sequence_len", "sample_packing", "lora_r", "model_type", "excess_length_strategy"} <= set(
        schema["properties"]
    )


def test_config_with_wrong_type_fails_at_its_line(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    path = root / SMOL
    text = path.read_text().replace("num_epochs: 1", "num_epochs: many")
    path.write_text(text)
    finding = only(errors(check(root)), "[num_epochs]")
    assert finding.line == text.splitlines().index("num_epochs: many") + 1
    assert "'many'" in finding.message


def test_missing_required_key_names_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    edit_config(root, SMOL, learning_rate=None)
    assert only(errors(check(root)), "learning_rate").field == "learning_rate"


def test_unknown_key_is_a_warning_with_a_suggestion(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    path = root / SMOL
    path.write_text(path.read_text() + "lora_dropuot: 0.1\n")
    finding = only(warnings(check(root)), "lora_dropuot is not an Axolotl option")
    assert finding.fix == "did you mean lora_dropout?"
    assert finding.line == path.read_text().count("\n")
