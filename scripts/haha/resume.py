"""Interruptible pods: what to do with a run whose pod RunPod took back, and what a pod resumes from.

RunPod stops an interruptible pod when its capacity is wanted (a higher bid, an on-demand rental); a
stopped interruptible pod cannot be started again (its `desiredStatus` reads EXITED). The run's last
status then still says `running`, written by a pod that was interruptible. Such a run is resumed,
not failed and not trained afresh: a new pod downloads the last checkpoint the old one uploaded and
Axolotl continues from it (`resume_from_checkpoint`), logging to the same W&B run. After
`compute.max_preemptions` preemptions the next pod is on-demand (or, with `on_demand_fallback`
off, the run is given up). `decide` is the pure core; plan calls it, launch follows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from haha.runstatus import RunStatus

Action = Literal["fresh", "resume", "resume on-demand", "give up"]
INTERRUPTIBLE = "interruptible"
ON_DEMAND = "on-demand"
# The checkpoint's place in the store (beside the adapter; never part of it).
CHECKPOINT_DIR = "checkpoint"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# The Trainer's progress bar starts its line; labelled bars ("Loading weights: 100%|...") are not it.
_BAR = re.compile(r"(?m)^\s*\d+%\|[^|\n]*\|\s*(\d+)/(\d+) \[")


@dataclass(frozen=True)
class Decision:
    """What the next pod of a run does: train from scratch or resume, on which kind of pod."""

    action: Action
    interruptible: bool
    preemptions: int = 0  # preemptions so far, this one included
    checkpoint_step: int | None = None  # the step the next pod resumes from (None: from scratch)
    reason: str = ""


def was_preempted(status: RunStatus | None, pod_alive: bool) -> bool:
    """The run's pod was interruptible and is gone (or stopped) while its status still says running."""
    if status is None or pod_alive:
        return False
    return status.state == "running" and status.pod_type == INTERRUPTIBLE


def decide(
    status: RunStatus | None,
    pod_alive: bool,
    config_sha256: str,
    wants_interruptible: bool,
    max_preemptions: int,
    on_demand_fallback: bool = True,
) -> Decision:
    """The pure resume decision for a run that is to be launched (no results, no live pod).

    status: the run's last status (None: never ran); pod_alive: a pod of this run still runs;
    config_sha256: the config file now (a checkpoint of an edited config is not resumed);
    wants_interruptible: the config (or haha.toml) asks for interruptible pods.
    """
    if not was_preempted(status, pod_alive):
        return Decision("fresh", wants_interruptible, reason="no preempted run to resume")
    assert status is not None
    count = (status.preemptions or 0) + 1
    if status.config_sha256 not in (None, config_sha256):
        return Decision("fresh", wants_interruptible, reason="the config changed since the preempted run")
    step = status.checkpoint_step
    where = f"from step {step}" if step is not None else "from the start (no checkpoint was uploaded)"
    if count <= max_preemptions:
        return Decision("resume", True, count, step, f"preempted {count}×; resuming {where}")
    if not on_demand_fallback:
        return Decision(
            "give up", True, count, step, f"preempted {count}× (compute.max_preemptions {max_preemptions})"
        )
    return Decision(
        "resume on-demand", False, count, step, f"preempted {count}×; resuming {where} on an on-demand pod"
    )


def checkpoint_step(name: str) -> int | None:
    """The global step of a Trainer checkpoint folder (`checkpoint-<step>`), else None."""
    m = _CHECKPOINT.match(name)
    return int(m.group(1)) if m else None


def save_steps(checkpoints_per_run: int) -> float:
    """HF Trainer's `save_steps` as a ratio of the run's total steps (a float below 1 is read so).

    With n checkpoints a preemption repeats at most 1/n of the run, and the run uploads n
    checkpoints: for a LoRA on an 8B model (84M trainable params at r=32) one checkpoint is the
    adapter plus its Adam state, about 1 GB, some 10 s at 100 MB/s, so 10 of them cost minutes on a
    run of hours. One checkpoint per run means none before the end: the ratio is capped at 1/2.
    """
    return round(1.0 / max(checkpoints_per_run, 2), 4)


def last_step(log_text: str) -> int | None:
    """The last training step a Trainer progress bar reached in a log (`  42%|...| 5/12 [`)."""
    bars = [(int(t), int(s)) for s, t in _BAR.findall(log_text.replace("\r", "\n"))]
    if not bars:
        return None
    total = max(t for t, _ in bars)  # the training bar; evaluation bars in between are shorter
    return next(s for t, s in reversed(bars) if t == total)


# SIGTERM's exit status: RunPod stops an interruptible pod's container with SIGTERM, then SIGKILL.
SIGTERM_EXIT = 143


def preempted_exit(interruptible: bool, rc: int | None) -> bool:
    """An interruptible pod's run ended by SIGTERM: likely a preemption, so not recorded as failed
    (the run's status stays `running`; plan resumes it). A deadline stop is recorded before this."""
    return interruptible and rc == SIGTERM_EXIT


def carried(
    previous: RunStatus | None, interruptible: bool, resume: bool, preemptions: int, reached: int | None
) -> dict[str, object]:
    """What a pod's status says about interruptibility: its pod type, and for a resumed run what the
    run's earlier pods recorded (checkpoint, W&B run) plus the steps this preemption repeats
    (`reached`: the last step the preempted pod logged, read from its uploaded train.log)."""
    out: dict[str, object] = {}
    if interruptible or resume:
        out["pod_type"] = INTERRUPTIBLE if interruptible else ON_DEMAND
    if not resume or previous is None:
        return out
    start = previous.checkpoint_step or 0
    repeated = max((reached or start) - start, 0)
    return out | {
        "preemptions": preemptions,
        "checkpoint_step": previous.checkpoint_step,
        "checkpoint_at": previous.checkpoint_at,
        "wandb_run_id": previous.wandb_run_id,
        "steps_repeated": (previous.steps_repeated or 0) + repeated,
    }
