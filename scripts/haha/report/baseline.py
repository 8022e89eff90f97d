"""Each config beside its base model's baseline (the base model without an adapter).

A run whose completions mostly equal the baseline's at the same prompt, temperature and seed was
almost certainly evaluated without its adapter: the classic silent LoRA-not-loaded bug.
"""

from __future__ import annotations

from collections.abc import Sequence

from haha.report.load import Run

NO_EFFECT_SHARE = 0.8  # of the completions both runs have, identical text (whitespace-trimmed)
MIN_SHARED = 10  # fewer completions in common decide nothing


def baselines(runs: Sequence[Run]) -> dict[str, Run]:
    """Base model id → its baseline run."""
    return {r.base_model: r for r in sorted(runs, key=lambda r: r.name) if r.is_baseline and r.base_model}


def baseline_of(run: Run, found: dict[str, Run]) -> Run | None:
    return None if run.is_baseline or run.base_model is None else found.get(run.base_model)


def identical(run: Run, baseline: Run) -> tuple[int, int]:
    """(identical, shared): completions at the same prompt/temperature/seed, and how many are equal."""
    theirs = {(s.prompt, s.temperature, s.seed): s.text.strip() for s in baseline.samples}
    same = shared = 0
    for s in run.samples:
        other = theirs.get((s.prompt, s.temperature, s.seed))
        if other is not None:
            shared += 1
            same += s.text.strip() == other
    return same, shared


def no_effect(run: Run, baseline: Run) -> str | None:
    """The flag reason when the adapter changed (almost) nothing, else None."""
    same, shared = identical(run, baseline)
    if shared < MIN_SHARED or same / shared < NO_EFFECT_SHARE:
        return None
    return (
        f"adapter had no effect — was it loaded? {same} of {shared} completions are identical to "
        f"{baseline.name}'s at the same prompt, temperature and seed"
    )


def reasons(runs: Sequence[Run]) -> dict[str, list[str]]:
    found = baselines(runs)
    out: dict[str, list[str]] = {}
    for run in runs:
        base = baseline_of(run, found)
        reason = no_effect(run, base) if base else None
        if reason:
            out.setdefault(run.name, []).append(reason)
    return out
