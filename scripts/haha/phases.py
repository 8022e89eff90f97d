"""Where a run's time and money went: `meta.phases` and `meta.cost` of its results file (issue 18).

Each phase is the gap between two timestamps taken where the event happens: launch's clock when it asked
for the pod (pod created), boot.sh's when the container started, the training log's first step,
the end of training, eval, the adapter's upload, the pod's baseline, and the pod's own wrap-up. A
terminated pod can report nothing, so the last seconds (the final status upload and the terminate
call) are in no phase and in no billed second. Pure functions of those numbers; `run` and `pod`
hand them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Pod order (the results schema's meta.phases): `haha run` publishes the adapter, then the pod
# evaluates the base model (baseline). A phase that did not happen is absent.
POD_ORDER = ("boot", "setup", "train", "eval", "publish", "baseline", "teardown")


@dataclass(frozen=True)
class Prediction:
    """What the gate predicted for a run when it was launched (recorded in the pod's environment)."""

    seconds: float | None
    dollars: float | None
    source: str  # "7 runs", "assumed"

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "dollars": self.dollars, "from": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        seconds, dollars = data.get("seconds"), data.get("dollars")
        return cls(
            float(seconds) if isinstance(seconds, (int, float)) else None,
            float(dollars) if isinstance(dollars, (int, float)) else None,
            str(data.get("from") or "assumed"),
        )


def ordered(phases: Mapping[str, float]) -> dict[str, float]:
    """The phases in pod order, rounded to 0.1 s, negatives (clock skew) clamped to 0."""
    return {k: round(max(float(phases[k]), 0.0), 1) for k in POD_ORDER if phases.get(k) is not None}


def run_phases(
    setup_from: float, first_step_at: float | None, trained_at: float, eval_seconds: float
) -> dict[str, float]:
    """`haha run`'s phases from unix times: set-up until the first logged step, training, eval.

    `setup_from` is the container's start in a pod (boot.sh), else the run's start. Without a first
    step (the adapter was reused), all of the training stage is set-up.
    """
    if first_step_at is None:
        return ordered({"setup": trained_at - setup_from, "eval": eval_seconds})
    setup, train = first_step_at - setup_from, trained_at - first_step_at
    return ordered({"setup": setup, "train": train, "eval": eval_seconds})


def cost_meta(
    billed_seconds: float,
    gpu_type: str,
    gpu_count: int,
    cost_per_hour: float | None,
    list_price_per_hour: float | None,
    prediction: Prediction | None,
) -> dict[str, Any]:
    """`meta.cost`: the provider's price per hour (`billed`) where it reported one, else the list price.

    `cost_per_hour` is the whole pod's (RunPod's costPerHr); `list_price_per_hour` is one GPU's.
    """
    if cost_per_hour is not None:
        per_hour, priced = cost_per_hour, "billed"
    else:
        per_hour = None if list_price_per_hour is None else list_price_per_hour * gpu_count
        priced = "list price"
    seconds = round(billed_seconds, 1)  # the dollars are of the seconds recorded: a reader gets the same
    return {
        "gpu_type": gpu_type,
        "gpu_count": gpu_count,
        "cost_per_hour": per_hour,
        "billed_seconds": seconds,
        "billed_dollars": None if per_hour is None else round(seconds / 3600 * per_hour, 4),
        "priced": priced,
        "predicted_seconds": prediction.seconds if prediction else None,
        "predicted_dollars": prediction.dollars if prediction else None,
        "predicted_from": prediction.source if prediction else "not recorded",
    }


def phases_text(phases: Mapping[str, float]) -> str:
    """`boot 3 min, setup 40 s, …` for a PR body."""
    return ", ".join(f"{k} {human_duration(v)}" for k, v in ordered(phases).items())


def human_duration(seconds: float | None) -> str:
    """`<1 s`, `25 s`, `12 min`, `3.5 h` (`?` for unknown)."""
    if seconds is None:
        return "?"
    if seconds < 1:
        return "<1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gpu_key(name: str) -> str:
    """The GPU model in a type's name: `NVIDIA H200` and RunPod's display name `H200 SXM` are both `h200`."""
    words = name.lower().replace("-", " ").split()
    return next((w for w in words if w != "nvidia" and any(c.isdigit() for c in w)), name.lower())
