"""Training curves from the results' `meta.train_loss`, and the run whose loss ended far off its series'."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

from haha.report.load import Run

LOSS_FACTOR = 1.5  # final training loss above 1.5× the median final loss of the rest of its series


def final_loss(run: Run) -> float | None:
    """The last logged training loss (by step), or None without a curve."""
    losses = [p.loss for p in run.train_loss if p.loss is not None]
    return losses[-1] if losses else None


def reasons(runs: Sequence[Run]) -> dict[str, list[str]]:
    """Runs whose training diverged (non-finite loss) or ended far above the rest of their series."""
    finals = {r.name: f for r in runs if not r.is_baseline and (f := final_loss(r)) is not None}
    series: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        if run.name in finals:
            series[run.series].append(run.name)
    out: dict[str, list[str]] = {}
    for members in series.values():
        for name in members:
            loss = finals[name]
            if not math.isfinite(loss):
                out[name] = [f"training diverged: the final loss is {loss}"]
                continue
            others = [finals[n] for n in members if n != name and math.isfinite(finals[n])]
            if not others:
                continue
            typical = statistics.median(others)
            if typical > 0 and loss > LOSS_FACTOR * typical:
                out[name] = [
                    f"final training loss {loss:.3g} is {loss / typical:.1f}× its series' median "
                    f"({typical:.3g} over {len(others)} other run{'s' if len(others) > 1 else ''})"
                ]
    return out
