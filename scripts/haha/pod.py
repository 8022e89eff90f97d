"""`haha pod`: the in-pod lifecycle — run, publish, notify, terminate — with teardown on every path.

Layers that stop a pod from leaking money (the third, `haha reap`, runs outside the pod):
1. `finally` here (and boot.sh's EXIT trap for failures before this starts): upload logs and status,
   then terminate this pod;
2. a deadline watchdog (HAHA_DEADLINE): kills the run, uploads logs, marks the run failed, terminates.

The run itself is a subprocess — `haha run|eval <basename>`, or the command in HAHA_RUN_ARGV — so a
crash, an out-of-memory kill or a hang in training cannot skip this process's teardown.
Results reach the store before the GitHub notification: a lost dispatch is recovered by the
scheduled `haha collect`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from haha import clock
from haha.compute.base import Compute, argv_from_env
from haha.errors import InputError
from haha.plan import sha256_file
from haha.repo import Repo
from haha.settings import Settings
from haha.store import RunArtifacts, get_store
from haha.store.base import ModelStore
from haha.workspace import workdir_for

Log = Callable[[str], None]
RUN_ARGV_ENV = "HAHA_RUN_ARGV"
KILL_GRACE_S = 10.0
# After the deadline kills the run, the main thread has this long to finish its own teardown.
FINISH_GRACE_S = 120.0
LOG_INTERVAL_S = 600.0
_ERROR_LINE = re.compile(r"(error|exception|out of memory|killed|traceback)", re.IGNORECASE)


# --- pure decisions --------------------------------------------------------------------------------
def parse_deadline(value: str | None, now: datetime, default_hours: float) -> datetime:
    """HAHA_DEADLINE (ISO 8601; `Z` allowed) or, when unset, `now` + the configured hours."""
    if not value:
        return now + timedelta(hours=default_hours)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"HAHA_DEADLINE is not an ISO time: {value!r}", field="HAHA_DEADLINE") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def seconds_left(deadline: datetime, now: datetime) -> float:
    return (deadline - now).total_seconds()


def failure_reason(rc: int | None, log_tail: Sequence[str], deadline_hit: bool) -> str:
    """One line for status.json and the notification: the deadline, else the last error-looking line."""
    if deadline_hit:
        return "deadline passed: the run was stopped"
    errors = [line.strip() for line in log_tail if _ERROR_LINE.search(line)]
    what = f"run exited with status {rc}" if rc is not None else "run did not start"
    return f"{what}: {errors[-1][:300]}" if errors else what


def run_argv(env: Mapping[str, str], repo: Repo, basename: str, mode: str) -> list[str]:
    """The command the pod runs: HAHA_RUN_ARGV (a JSON list) or `haha run|eval <basename>`."""
    raw = env.get(RUN_ARGV_ENV)
    if raw:
        return argv_from_env(raw, RUN_ARGV_ENV)
    verb = ["eval", "--force"] if mode == "eval" else ["run"]
    return [sys.executable, "-m", "haha.cli", verb[0], basename, *verb[1:], "--repo", str(repo.root)]


# --- edges -----------------------------------------------------------------------------------------
def self_pod(settings: Settings, env: Mapping[str, str]) -> tuple[Compute, str] | None:
    """This pod's Compute and id: RunPod (RUNPOD_POD_ID) or a local pod (HAHA_POD_ID)."""
    if env.get("RUNPOD_POD_ID"):
        from haha.compute.runpod import RunPodCompute

        return RunPodCompute(settings), env["RUNPOD_POD_ID"]
    if env.get("HAHA_POD_ID") and env.get("HAHA_COMPUTE_ROOT"):
        from haha.compute.local import LocalCompute

        return LocalCompute(settings, Path(env["HAHA_COMPUTE_ROOT"])), env["HAHA_POD_ID"]
    return None


def terminate_self(settings: Settings, env: Mapping[str, str], log: Log) -> None:
    """Terminate this pod (a no-op outside one). Never raises: it is the last thing on every path."""
    found = self_pod(settings, env)
    if found is None:
        log("teardown: not in a pod, nothing to terminate")
        return
    compute, pod_id = found
    log(f"teardown: terminating {compute.kind} pod {pod_id}")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a local pod is in our own process group
    try:
        compute.terminate(pod_id)
    except Exception as exc:
        log(f"teardown: could not terminate {pod_id}: {exc} (the reaper will)")


def is_final(status: Mapping[str, Any] | None) -> bool:
    return bool(status) and status.get("state") in ("succeeded", "failed")  # type: ignore[union-attr]


@dataclass
class PodInfo:
    basename: str
    mode: str
    deadline: datetime
    pod_id: str | None
    gpu_type: str | None = None
    cost_per_hour: float | None = None
    gpu_count: int | None = None


class PodRun:
    """One pod's lifecycle. `run()` returns the exit code; teardown happens inside it."""

    def __init__(
        self,
        repo: Repo,
        settings: Settings,
        env: Mapping[str, str],
        basename: str,
        log: Log,
        now: Callable[[], datetime] = clock.now,
        log_interval_s: float = LOG_INTERVAL_S,
    ) -> None:
        self.repo, self.settings, self.env, self.now = repo, settings, env, now
        self.log_interval_s = log_interval_s
        self.info = PodInfo(
            basename=basename,
            mode=env.get("HAHA_MODE", "train"),
            deadline=parse_deadline(env.get("HAHA_DEADLINE"), now(), settings.compute.deadline_hours),
            pod_id=env.get("RUNPOD_POD_ID") or env.get("HAHA_POD_ID"),
        )
        self.workdir = workdir_for(repo, basename, env)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_file = self.workdir / "pod.log"
        self._log_out: TextIO = self.log_file.open("a", buffering=1)
        self._say = log
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._finished = threading.Event()
        self._finishing = False
        self._deadline_hit = False
        self._started = now()
        self._store: ModelStore | None = None

    # logging: every line goes to stderr and to pod.log (which is what gets uploaded)
    def say(self, message: str) -> None:
        self._say(message)
        with contextlib.suppress(ValueError):
            self._log_out.write(f"{clock.stamp(self.now())} {message}\n")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, _sigterm_to_exit)
        rc: int | None = None
        error: str | None = None
        watchdog = threading.Thread(target=self._watch, name="haha-deadline", daemon=True)
        try:
            self.say(
                f"pod: {self.info.basename} ({self.info.mode}), deadline {clock.stamp(self.info.deadline)}"
            )
            self._describe_self()
            self._publish_status("running")
            watchdog.start()
            rc = self._run_child()
        except BaseException as exc:  # anything: SystemExit from SIGTERM too
            error = f"pod: {type(exc).__name__}: {exc}"
            self.say(error)
        finally:
            self._stop_child()
            ok = rc == 0 and error is None and not self._deadline_hit and self._results_ok()
            reason = None if ok else self._reason(rc, error)
            self._finish(ok, reason)
            self._finished.set()
            terminate_self(self.settings, self.env, self.say)
        return 0 if ok else 1

    # --- the run -----------------------------------------------------------------------------------
    def _run_child(self) -> int:
        argv = run_argv(self.env, self.repo, self.info.basename, self.info.mode)
        child_env = {
            "COLUMNS": "1000",  # rich and friends: one log line per message, not wrapped at 80
            **os.environ,
            **self.env,
            "HAHA_BASENAME": self.info.basename,
            "HAHA_MODE": self.info.mode,
        }
        self.say(f"run: {' '.join(argv[:6])}{' …' if len(argv) > 6 else ''}")
        with self._lock:
            if self._deadline_hit:
                return 124
            self._proc = subprocess.Popen(
                argv,
                cwd=self.repo.root,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,  # its own group: stopping it stops whatever it started
            )
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            with contextlib.suppress(ValueError):
                self._log_out.write(line)
        rc = self._proc.wait()
        self.say(f"run: exited with status {rc}")
        return rc

    def _results_ok(self) -> bool:
        from haha.schemas import validate

        path = self.repo.results_path(self.info.basename)
        try:
            validate("results", json.loads(path.read_text()), file=path)
        except (OSError, ValueError, InputError) as exc:
            self.say(f"results: missing or invalid after the run: {exc}")
            return False
        return True

    def _reason(self, rc: int | None, error: str | None) -> str:
        if error and not self._deadline_hit:
            return error
        if rc == 0 and not self._deadline_hit:
            return "the run exited 0 but left no valid results file"
        with contextlib.suppress(OSError):
            self._log_out.flush()
        tail = self.log_file.read_text(errors="replace").splitlines()[-40:]
        tail = [line for line in tail if not line.split(" ", 1)[-1].startswith(("pod:", "run: "))]
        return failure_reason(rc, tail, self._deadline_hit)

    # --- the deadline watchdog ---------------------------------------------------------------------
    def _watch(self) -> None:
        """Upload logs every `log_interval_s`; at the deadline stop the run and, if need be, the pod."""
        while True:
            left = seconds_left(self.info.deadline, self.now())
            if left <= 0:
                break
            if self._finished.wait(timeout=min(left, self.log_interval_s)):
                return
            if seconds_left(self.info.deadline, self.now()) > 0:
                self._upload_logs()
        with self._lock:
            if self._finishing:
                return
            self._deadline_hit = True
        self.say(f"deadline: {clock.stamp(self.info.deadline)} passed; stopping the run")
        self._stop_child()
        if not self._finished.wait(timeout=FINISH_GRACE_S):
            self.say("deadline: teardown is stuck; terminating the pod now")
            self._finish(False, failure_reason(None, [], deadline_hit=True))
            terminate_self(self.settings, self.env, self.say)

    def _stop_child(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=KILL_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue

    # --- store, GitHub -----------------------------------------------------------------------------
    def _describe_self(self) -> None:
        """GPU type, count and price as the provider reports this pod: collect prices runs from it."""
        found = self_pod(self.settings, self.env)
        if found is None:
            return
        compute, pod_id = found
        try:
            pod = next((p for p in compute.list_pods() if p.id == pod_id), None)
        except Exception as exc:
            self.say(f"pod: could not look this pod up: {exc}")
            return
        if pod is not None:
            self.info.gpu_type, self.info.cost_per_hour = pod.gpu_type or None, pod.cost_per_hour
        with contextlib.suppress(ValueError):
            self.info.gpu_count = int(self.env.get("RUNPOD_GPU_COUNT", "") or 0) or None

    def _status(self, state: str, reason: str | None = None) -> dict[str, Any]:
        now = self.now()
        status: dict[str, Any] = {
            "state": state,
            "mode": self.info.mode,
            "pod_id": self.info.pod_id,
            "gpu_type": self.info.gpu_type,
            "gpu_count": self.info.gpu_count,
            "cost_per_hour": self.info.cost_per_hour,
            "git_ref": self.env.get("HAHA_REF"),
            "config_sha256": self._config_sha256(),
            "started_at": clock.stamp(self._started),
            "deadline": clock.stamp(self.info.deadline),
        }
        if state != "running":
            status["finished_at"] = clock.stamp(now)
            status["pod_seconds"] = round((now - self._started).total_seconds(), 1)
        if reason:
            status["reason"] = reason
        return {k: v for k, v in status.items() if v is not None}

    def _config_sha256(self) -> str | None:
        """Which config file this run was for: plan retries a failed config once it is edited."""
        try:
            return sha256_file(self.repo.config_path(self.info.basename))
        except (InputError, OSError):
            return None

    def _get_store(self) -> ModelStore:
        if self._store is None:
            self._store = get_store(self.settings, self.repo.root)
        return self._store

    def _publish_status(self, state: str) -> None:
        try:
            self._get_store().publish(RunArtifacts(self.info.basename, status=self._status(state)))
        except Exception as exc:
            self.say(f"store: could not record the start: {exc}")

    def _upload_logs(self) -> None:
        with self._lock:
            if self._finishing:
                return
        try:
            self._log_out.flush()
            self._get_store().publish(RunArtifacts(self.info.basename, log_files=(self.log_file,)))
        except Exception as exc:
            self.say(f"store: log upload failed: {exc}")

    def _finish(self, ok: bool, reason: str | None) -> None:
        """Once: results (when good), logs and status to the store, then the GitHub dispatch."""
        with self._lock:
            if self._finishing:
                return
            self._finishing = True
        state = "succeeded" if ok else "failed"
        self.say(f"pod: {state}" + (f" ({reason})" if reason else ""))
        results = self.repo.results_path(self.info.basename) if ok else None
        with contextlib.suppress(ValueError):
            self._log_out.flush()
        published = False
        for attempt in range(3):
            try:
                logs = tuple(p for p in (self.log_file, self.workdir / "train.log") if p.is_file())
                self._get_store().publish(
                    RunArtifacts(
                        self.info.basename,
                        results_file=results,
                        log_files=logs,
                        status=self._status(state, reason),
                    )
                )
                published = True
                break
            except Exception as exc:
                self.say(f"store: publish attempt {attempt + 1} failed: {exc}")
                time.sleep(2.0 * (attempt + 1))
        self._notify(state, reason, published)

    def _notify(self, state: str, reason: str | None, published: bool) -> None:
        if self.settings.github_token is None:
            self.say("notify: no GitHub token; the scheduled collect will pick the run up")
            return
        from haha.notify import dispatch_run_finished

        payload = {
            "state": state,
            "mode": self.info.mode,
            "pod_id": self.info.pod_id or "",
            "published": published,
        }
        if reason:
            payload["reason"] = reason[:500]
        try:
            dispatch_run_finished(self.settings, self.info.basename, payload)
            self.say("notify: repository_dispatch sent")
        except Exception as exc:
            self.say(f"notify: dispatch failed ({exc}); the scheduled collect will pick the run up")


def _sigterm_to_exit(signum: int, frame: object) -> None:
    """SIGTERM (a reaper, a local terminate) unwinds through `finally`, so logs still go up."""
    raise SystemExit(128 + signum)


def mark_failed_if_unfinished(
    settings: Settings, root: Path, basename: str, reason: str, log_files: Sequence[Path], log: Log
) -> bool:
    """boot.sh's trap and the reaper: record a failure unless the run already recorded its end."""
    store = get_store(settings, root)
    if is_final(store.fetch_status(basename)):
        return False
    status = {"state": "failed", "reason": reason, "finished_at": clock.stamp()}
    store.publish(RunArtifacts(basename, log_files=tuple(p for p in log_files if p.is_file()), status=status))
    log(f"store: marked {basename} failed: {reason}")
    return True
