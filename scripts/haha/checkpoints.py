"""Training checkpoints that outlive an interruptible pod: saved by Axolotl, uploaded to the model store
while training runs, and downloaded by the pod that resumes the run (haha.resume decides when).

Axolotl saves HF Trainer checkpoints (`output_dir/checkpoint-<step>`: adapter, optimizer, scheduler,
RNG state, `trainer_state.json` written last) every `save_steps`; an uploader thread in `haha run`
sends the newest complete one to the store (`checkpoint/`, replacing the previous one) and records
its step in the run's status. Only runs on interruptible pods checkpoint to the store; the adapter a
finished run publishes is the same either way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from haha.clock import stamp
from haha.resume import checkpoint_step, save_steps
from haha.runstatus import RunStatus, read_status, write_status
from haha.store.base import ModelStore

Log = Callable[[str], None]
TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last: its presence means complete
POLL_S = 2.0


def checkpoint_settings(config: dict[str, Any], checkpoints_per_run: int) -> dict[str, Any]:
    """The keys that make Axolotl checkpoint `checkpoints_per_run` times (haha.resume.save_steps) on
    an interruptible pod, whatever the config says about saving (`save_strategy: no` included): a
    pod that may vanish must leave something to resume from. A config's own numeric `save_steps`
    is kept. Two checkpoints stay on disk: the uploader may still be sending the older one.

    Values None are keys to drop (Axolotl refuses `saves_per_epoch` beside `save_steps`).
    """
    steps = config.get("save_steps")
    own = isinstance(steps, int | float) and not isinstance(steps, bool) and steps > 0
    return {
        "save_strategy": "steps",
        "save_steps": steps if own else save_steps(checkpoints_per_run),
        "saves_per_epoch": None,
        "save_total_limit": max(int(config.get("save_total_limit") or 0), 2),
    }


def newest_complete(output_dir: Path) -> Path | None:
    """The latest checkpoint folder the Trainer finished writing, else None."""
    found = [
        (step, p)
        for p in (output_dir.iterdir() if output_dir.is_dir() else [])
        if (step := checkpoint_step(p.name)) is not None and (p / TRAINER_STATE).is_file()
    ]
    return max(found)[1] if found else None


def record_checkpoint(store: ModelStore, basename: str, step: int, wandb_run_id: str | None) -> None:
    """The run's status, as its pod last wrote it, with this checkpoint and the W&B run it continues."""
    status = read_status(store, basename) or RunStatus(state="running")
    changed = replace(status, checkpoint_step=step, checkpoint_at=stamp(), wandb_run_id=wandb_run_id)
    write_status(store, basename, changed)


def fetch_for_resume(store: ModelStore, basename: str, output_dir: Path, log: Log) -> Path | None:
    """Download the run's last checkpoint to `output_dir/checkpoint-<step>` for Axolotl to resume."""
    status = read_status(store, basename)
    step = status.checkpoint_step if status else None
    if step is None:
        log("train: resuming a preempted run with no checkpoint: training from the start")
        return None
    dest = output_dir / f"checkpoint-{step}"
    if store.fetch_checkpoint(basename, dest) is None:
        log(f"train: the store has no checkpoint for step {step}: training from the start")
        return None
    log(f"train: resuming from checkpoint-{step} (step {step}, downloaded from the store)")
    return dest


class Uploader:
    """A thread that sends each new complete checkpoint to the store while Axolotl trains."""

    def __init__(
        self,
        store: ModelStore,
        basename: str,
        output_dir: Path,
        log: Log,
        wandb_run_id: str | None,
        after: int = 0,
    ) -> None:
        self.store, self.basename, self.output_dir, self.log = store, basename, output_dir, log
        self.wandb_run_id = wandb_run_id
        self.uploaded = after  # the step of the checkpoint the store holds (a resumed run's start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Uploader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.upload_new()

    def upload_new(self) -> None:
        """Upload the newest complete checkpoint if it is newer than the last one sent."""
        folder = newest_complete(self.output_dir)
        step = checkpoint_step(folder.name) if folder else None
        if folder is None or step is None or step <= self.uploaded:
            return
        try:
            where = self.store.publish_checkpoint(self.basename, folder)
            record_checkpoint(self.store, self.basename, step, self.wandb_run_id)
        except Exception as exc:  # the Trainer rotated it away mid-upload, or the store hiccupped
            with contextlib.suppress(Exception):
                self.log(f"checkpoint: upload of step {step} failed ({exc}); the next one is tried")
            return
        self.uploaded = step
        self.log(f"checkpoint: step {step} uploaded to {where}")
