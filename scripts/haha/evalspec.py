"""train/eval/eval.json as a typed value: prompts × sampling settings × seeds 1..N."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haha.errors import InputError


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
    from haha.check.evalspec import check_eval

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
