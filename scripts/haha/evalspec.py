"""train/eval/eval.json: checked with line numbers (the PR gate) and loaded as a typed value (the run).

One module for both, so the run and the gate apply the same rules and the run does not depend on
the gate: prompts × sampling settings × seeds 1..N, validated against schemas/eval.schema.json.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haha.errors import InputError
from haha.findings import Finding, Severity
from haha.schemas import explain, iter_errors, refuse_constant
from haha.yamlfile import YamlDoc, line_index

EVAL_SCHEMA = "eval"
MAX_EVAL_CHARS = 4 * 1024**2  # hundreds of prompts are ~50 KB; the gate reads no more than this
FIX = "see schemas/eval.schema.json: prompts (strings), settings ({temperature, ...}), seedVariants (integer)"


@dataclass(frozen=True)
class EvalSpec:
    prompts: tuple[str, ...]
    settings: tuple[dict[str, Any], ...]
    seed_variants: int
    sha256: str

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(1, self.seed_variants + 1))

    @property
    def size(self) -> int:
        return len(self.prompts) * len(self.settings) * self.seed_variants


def load_eval_spec(path: Path) -> EvalSpec:
    """Parse and validate eval.json with the PR gate's rules; the first problem raises with its line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read eval spec: {exc.strerror}", file=path) from exc
    text = raw.decode("utf-8", errors="replace")
    for finding in check_eval(str(path), text).findings:
        raise InputError(finding.message, file=path, line=finding.line, field=finding.field, fix=finding.fix)
    data = json.loads(text)
    return EvalSpec(
        prompts=tuple(data["prompts"]),
        settings=tuple(data["settings"]),
        seed_variants=data["seedVariants"],
        sha256=hashlib.sha256(raw).hexdigest(),
    )


@dataclass(frozen=True)
class EvalCheck:
    """The findings, plus the prompts and their lines for the leakage check."""

    findings: list[Finding]
    prompts: list[str] = field(default_factory=list)
    lines: YamlDoc = field(default_factory=lambda: YamlDoc({}))


def check_eval(file: str, text: str | None) -> EvalCheck:
    """Every problem in the eval spec, each pinned to its line and field."""
    if text is None:
        return EvalCheck([Finding(Severity.ERROR, "the eval spec is missing", file, fix=f"create it; {FIX}")])
    if len(text) > MAX_EVAL_CHARS:
        message = f"eval spec is {len(text):,} characters; the limit is {MAX_EVAL_CHARS:,}"
        return EvalCheck([Finding(Severity.ERROR, message, file, fix="keep prompts to short joke setups")])
    try:
        data = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON (column {exc.colno}): {exc.msg}"
        return EvalCheck(
            [Finding(Severity.ERROR, message, file, exc.lineno, fix="fix the JSON syntax there")]
        )
    except (ValueError, RecursionError) as exc:  # an integer too long to convert; nesting too deep
        message = f"not readable JSON: {str(exc)[:120]}"
        return EvalCheck([Finding(Severity.ERROR, message, file, fix="write plain numbers and strings")])
    doc = YamlDoc(data if isinstance(data, dict) else {}, line_index(text))
    findings = []
    for error in iter_errors(EVAL_SCHEMA, data):
        field, message = explain(error)
        findings.append(Finding(Severity.ERROR, message, file, doc.line_of(field), field or None, FIX))
    prompts = data.get("prompts") if isinstance(data, dict) else None
    # Non-strings become "" so indices keep matching `prompts.N` lines; "" never matches a row.
    strings = [p if isinstance(p, str) else "" for p in prompts] if isinstance(prompts, list) else []
    return EvalCheck(findings, strings, doc)
