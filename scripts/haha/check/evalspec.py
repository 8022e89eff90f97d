"""Checking train/eval/eval.json against schemas/eval.schema.json, with line numbers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from haha.check.fields import explain
from haha.findings import Finding, Severity
from haha.schemas import iter_errors
from haha.yamlfile import YamlDoc, line_index

EVAL_SCHEMA = "eval"
FIX = "see schemas/eval.schema.json: prompts (strings), settings ({temperature, ...}), seedVariants (integer)"


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
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON (column {exc.colno}): {exc.msg}"
        return EvalCheck(
            [Finding(Severity.ERROR, message, file, exc.lineno, fix="fix the JSON syntax there")]
        )
    doc = YamlDoc(data if isinstance(data, dict) else {}, line_index(text))
    findings = []
    for error in iter_errors(EVAL_SCHEMA, data):
        field, message = explain(error)
        findings.append(Finding(Severity.ERROR, message, file, doc.line_of(field), field or None, FIX))
    prompts = data.get("prompts") if isinstance(data, dict) else None
    # Non-strings become "" so indices keep matching `prompts.N` lines; "" never matches a row.
    strings = [p if isinstance(p, str) else "" for p in prompts] if isinstance(prompts, list) else []
    return EvalCheck(findings, strings, doc)
