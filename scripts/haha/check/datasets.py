"""Scanning a JSONL dataset: every line parsed and validated, duplicates and empty outputs counted."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from haha.findings import Finding, Severity
from haha.schemas import explain, iter_errors, validator

ROW_SCHEMA = "dataset-row"
MAX_LINE_FINDINGS = 20  # per file; the rest are summarised in one finding with their line numbers
MAX_LISTED_LINES = 50
MAX_ROW_CHARS = 256 * 1024  # one joke is ~200 characters; longer rows are not parsed
MAX_DATASET_BYTES = 256 * 1024**2  # read before parsing; beyond it the file is refused unread


@dataclass(frozen=True)
class Row:
    """One valid training row and the line it came from."""

    line: int
    instruction: str
    input: str
    output: str
    system: str


@dataclass(frozen=True)
class DatasetScan:
    """What one read of a dataset file found; shared by every config that trains on it."""

    file: str
    digest: str
    rows: tuple[Row, ...]
    invalid_lines: tuple[int, ...]
    duplicate_instructions: int
    duplicate_rows: int
    empty_outputs: int
    findings: tuple[Finding, ...]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive form, for duplicate and leakage matching."""
    return " ".join(text.casefold().split())


@functools.cache
def _string_rules() -> tuple[frozenset[str], dict[str, tuple[int, re.Pattern[str] | None]]] | None:
    """The row schema read as (required keys, allowed key → (minLength, pattern)) when it is an object
    of string fields with no other keywords; None otherwise (then every row goes to the validator)."""
    schema = validator(ROW_SCHEMA).schema
    props = schema.get("properties", {})
    known = {
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "required",
        "additionalProperties",
        "properties",
    }
    if (
        set(schema) - known
        or schema.get("type") != "object"
        or schema.get("additionalProperties") is not False
    ):
        return None
    if any(
        p.get("type") != "string" or set(p) - {"description", "type", "minLength", "pattern"}
        for p in props.values()
    ):
        return None
    rules = {
        k: (p.get("minLength", 0), re.compile(p["pattern"]) if "pattern" in p else None)
        for k, p in props.items()
    }
    return frozenset(schema.get("required", ())), rules


def _plainly_valid(value: object) -> bool:
    """True for a row the schema accepts, checked in plain Python (jsonschema takes ~40 µs a row, most
    of the gate's time on a large dataset); the rest go to the validator, which words the errors."""
    rules = _string_rules()
    if rules is None or type(value) is not dict:
        return False
    required, fields = rules
    if not required <= value.keys() <= fields.keys():
        return False
    for key, text in value.items():
        if type(text) is not str:
            return False
        min_length, pattern = fields[key]
        # jsonschema's minLength is len(); its pattern is re.search (jsonschema/_keywords.py)
        if len(text) < min_length or (pattern is not None and not pattern.search(text)):
            return False
    return True


def _problems(raw: str) -> tuple[dict[str, Any] | None, list[tuple[str | None, str]]]:
    """The parsed row and its (field, message) problems; the row is None when the line is not JSON."""
    if len(raw) > MAX_ROW_CHARS:
        return None, [(None, f"row is {len(raw):,} characters; rows are limited to {MAX_ROW_CHARS:,}")]
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, [(None, f"not valid JSON (column {exc.colno}): {exc.msg}")]
    except (ValueError, RecursionError) as exc:  # an integer too long to convert; nesting too deep
        return None, [(None, f"not readable JSON: {str(exc)[:120]}")]
    if _plainly_valid(value):
        return value, []
    problems = []
    for error in iter_errors(ROW_SCHEMA, value):
        field, message = explain(error)
        problems.append((field or None, f"invalid row: {message}"))
    return (value if isinstance(value, dict) else None), problems


def _line_findings(file: str, bad: list[tuple[int, str | None, str]]) -> list[Finding]:
    fix = 'each line must be one JSON object like {"instruction": "...", "input": "", "output": "..."}'
    shown = [
        Finding(Severity.ERROR, msg, file, line, field, fix) for line, field, msg in bad[:MAX_LINE_FINDINGS]
    ]
    rest = sorted({line for line, _, _ in bad[MAX_LINE_FINDINGS:]})
    if rest:
        listed = ", ".join(map(str, rest[:MAX_LISTED_LINES])) + (
            ", …" if len(rest) > MAX_LISTED_LINES else ""
        )
        shown.append(Finding(Severity.ERROR, f"and {len(rest)} more invalid lines: {listed}", file, fix=fix))
    return shown


def _duplicates(keys: Iterable[tuple[int, Any]]) -> tuple[int, tuple[int, int] | None]:
    """How many entries repeat an earlier key, and the first (line, earlier line) pair."""
    seen: dict[Any, int] = {}
    count, first = 0, None
    for line, key in keys:
        if key in seen:
            count += 1
            first = first or (line, seen[key])
        else:
            seen[key] = line
    return count, first


def scan_dataset(file: str, text: str) -> DatasetScan:
    """Parse and validate every line of `text` (the content of `file`); blank lines are skipped."""
    rows, bad, empty_outputs = [], [], 0
    # JSON Lines end lines at \n only: str.splitlines() would also split at U+2028 inside a string.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        value, problems = _problems(raw)
        if value is not None and isinstance(value.get("output"), str) and not value["output"].strip():
            empty_outputs += 1
        if problems:
            bad += [(number, field, message) for field, message in problems]
            continue
        assert value is not None
        rows.append(
            Row(
                number, value["instruction"], value.get("input", ""), value["output"], value.get("system", "")
            )
        )
    dup_instructions, first_instr = _duplicates((r.line, normalise(r.instruction)) for r in rows)
    dup_rows, first_row = _duplicates((r.line, (r.instruction, r.input, r.output, r.system)) for r in rows)
    findings = _line_findings(file, bad)
    if not rows and not bad:
        findings.append(
            Finding(
                Severity.ERROR,
                "dataset has no rows: training would stop at once with nothing learned",
                file,
                1,
                fix='add JSON Lines rows {"instruction", "input", "output"}, one per line',
            )
        )
    if dup_rows and first_row:
        findings.append(
            Finding(
                Severity.WARNING,
                f"{dup_rows} rows repeat an earlier row exactly "
                f"(first: line {first_row[0]} = line {first_row[1]})",
                file,
                first_row[0],
                fix="delete the repeated rows; they over-weight those jokes",
            )
        )
    if dup_instructions and first_instr:
        findings.append(
            Finding(
                Severity.NOTICE,
                f"{dup_instructions} rows repeat an earlier instruction "
                f"(first: line {first_instr[0]} repeats line {first_instr[1]})",
                file,
                first_instr[0],
            )
        )
    return DatasetScan(
        file=file,
        digest=digest(text),
        rows=tuple(rows),
        invalid_lines=tuple(sorted({line for line, _, _ in bad})),
        duplicate_instructions=dup_instructions,
        duplicate_rows=dup_rows,
        empty_outputs=empty_outputs,
        findings=tuple(findings),
    )


def leaks(scan: DatasetScan, prompts: list[str]) -> list[tuple[int, int]]:
    """(eval prompt index, training line) for every eval prompt that is also a training instruction."""
    lines = {}
    for row in scan.rows:
        lines.setdefault(normalise(row.instruction), row.line)
    return [(i, lines[key]) for i, p in enumerate(prompts) if (key := normalise(p)) and key in lines]
