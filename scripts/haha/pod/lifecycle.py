"""`haha pod`: run, publish, notify, terminate — with teardown on every path.

Layers that stop a pod from leaking money (boot.sh's EXIT trap and the scheduled reaper are the others):
1. `finally` here: upload logs and status, then terminate this pod;
2. the deadline watchdog (HAHA_DEADLINE): stops the run, records the failure, terminates.
A container that RunPod restarts after its run ended (its self-terminate failed) finds its own final
status in the store and only terminates again: it never trains twice.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from haha import clock
from haha.errors import InputError
from haha.plan import sha256_file
from haha.pod.baseline_step import baseline_in_pod
from haha.pod.child import ChildRun
from haha.pod.record import RunRecord
from haha.pod.teardown import describe_self, terminate_self
from haha.pod.watchdog import LOG_INTERVAL_S, Watchdog
from haha.podenv import PodEnv
from haha.repo import Repo
from haha.resume import carried, last_step, preempted_exit
from haha.runstatus import RunStatus, read_status
from haha.settings import Settings
from haha.store import get_store
from haha.store.base import ModelStore
from haha.workspace import workdir_for

Log = Callable[[str], None]
# After the deadline stops the run, the main thread has this long to finish its own teardown.
FINISH_GRACE_S = 120.0
_ERROR_LINE = re.compile(r"(error|exception|out of memory|killed|traceback)", re.IGNORECASE)


# --- pure decisions --------------------------------------------------------------------------------
def failure_reason(rc: int | None, log_tail: Sequence[str], deadline_hit: bool) -> str:
    """One line for the status and the notification: the deadline, else the last error-looking line."""
    if deadline_hit:
        return "deadline passed: the run was stopped"
    errors = [line.strip() for line in log_tail if _ERROR_LINE.search(line)]
    what = f"run exited with status {rc}" if rc is not None else "run did not start"
    return f"{what}: {errors[-1][:300]}" if errors else what


def run_argv(pod: PodEnv, repo: Repo) -> list[str]:
    """The command the pod runs: HAHA_RUN_ARGV, or `haha run|eval <basename>`."""
    if pod.run_argv:
        return list(pod.run_argv)
    verb = ["eval", "--force"] if pod.mode == "eval" else ["run"]
    return [sys.executable, "-m", "haha.cli", verb[0], pod.basename, *verb[1:], "--repo", str(repo.root)]


def already_ended(status: RunStatus | None, pod_id: str | None) -> bool:
    """This very pod recorded an end before: the container was restarted after its run."""
    return status is not None and status.final and pod_id is not None and status.pod_id == pod_id


# --- the lifecycle ---------------------------------------------------------------------------------
class PodRun:
    """One pod's lifecycle. `run()` returns the exit code; teardown happens inside it."""

    def __init__(
        self,
        repo: Repo,
        settings: Settings,
        basename: str,
        log: Log,
        now: Callable[[], datetime] = clock.now,
        log_interval_s: float = LOG_INTERVAL_S,
        pod: PodEnv | None = None,
        terminate: bool = True,
    ) -> None:
        # `pod`, `terminate`: a shared pod (pod.shared) gives each config its env, terminates once.
        self.repo, self.settings, self.now = repo, settings, now
        self.pod = pod or settings.pod_env(basename, now())
        self.terminate, self.interrupted = terminate, False  # interrupted: by a signal
        self.preempted = False  # an interruptible pod's run ended by SIGTERM: left `running` to resume
        self.workdir = workdir_for(repo, self.pod.basename, settings)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_file = self.workdir / "pod.log"
        self._log_out = self.log_file.open("a", buffering=1)
        self._say = log
        self._store: ModelStore | None = None
        started = datetime.fromtimestamp(self.pod.boot_epoch, UTC) if self.pod.boot_epoch else now()
        sha = config_sha256(repo, self.pod.basename)
        self.record = RunRecord(settings, self.store, self.pod, started, sha, self.say)
        self.child = ChildRun(self._log_out)
        self.watchdog = Watchdog(self.pod.deadline, now, self._upload_logs, self._expired, log_interval_s)
        self._lock = threading.Lock()
        self._finishing = False
        self._deadline_hit = False
        self._baseline: Path | None = None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, _sigterm_to_exit)
        try:
            previous = read_status(self.store(), self.pod.basename)
        except Exception as exc:  # a store hiccup must not cost the run; a restart is the rare case
            self.say(f"store: could not read the run's status ({exc}); running")
            previous = None
        if already_ended(previous, self.pod.pod_id):
            assert previous is not None
            self.say(f"pod: this pod already {previous.state}; a restarted container only terminates")
            if self.terminate:
                terminate_self(self.settings, self.pod, self.say)
            return 0 if previous.state == "succeeded" else 1
        rc: int | None = None
        error: str | None = None
        stopped = None  # SIGTERM's exit status: on an interruptible pod, likely a preemption
        try:
            self.say(f"pod: {self.pod.basename} ({self.pod.mode}), deadline {clock.stamp(self.pod.deadline)}")
            self.record.carried = resume_fields(self.store, self.pod, previous)
            described = describe_self(self.settings, self.pod, self.say)
            self.record.gpu_type, self.record.cost_per_hour = described
            self.record.running(self.now())
            self.watchdog.start()
            rc = self.child.run(
                run_argv(self.pod, self.repo), child_env(self.settings, self.pod), self.repo.root
            )
            self.say(f"run: exited with status {rc}")
            if rc == 0 and self.pod.run_argv is None and results_ok(self.repo, self.pod.basename, self.say):
                self.child = ChildRun(self._log_out)  # the watchdog stops whichever runs now
                self.record.baseline_from = self.now()
                self._baseline = baseline_in_pod(
                    self.repo, self.pod.basename, child_env(self.settings, self.pod), self.child, self.say
                )
        except BaseException as exc:  # anything: SystemExit from SIGTERM too
            error = f"pod: {type(exc).__name__}: {exc}"
            self.interrupted = isinstance(exc, (SystemExit, KeyboardInterrupt))
            stopped = exc.code if isinstance(exc, SystemExit) else None
            self.say(error)
        finally:
            self.child.stop()
            ok = (
                rc == 0
                and error is None
                and not self._deadline_hit
                and results_ok(self.repo, self.pod.basename, self.say)
            )
            self.preempted = preempted_exit(self.pod.interruptible, stopped) and not self._deadline_hit  # type: ignore[arg-type]
            if self.preempted:
                self._upload_logs()  # no end recorded: the run stays `running`; plan resumes it
            else:
                self._finish(ok, None if ok else self._reason(rc, error))
            self.watchdog.finished()
            if self.terminate:
                terminate_self(self.settings, self.pod, self.say)
        return 0 if ok else 1

    def say(self, message: str) -> None:
        """Every line goes to stderr and to pod.log (which is what gets uploaded); a stderr whose reader
        died (boot.sh's tee, stopped with the container) must not cut teardown short."""
        with contextlib.suppress(OSError):
            self._say(message)
        with contextlib.suppress(ValueError):
            self._log_out.write(f"{clock.stamp(self.now())} {message}\n")

    def store(self) -> ModelStore:
        if self._store is None:
            self._store = get_store(self.settings, self.repo.root)
        return self._store

    def _reason(self, rc: int | None, error: str | None) -> str:
        if error and not self._deadline_hit:
            return error
        if rc == 0 and not self._deadline_hit:
            return "the run exited 0 but left no valid results file"
        with contextlib.suppress(OSError, ValueError):
            self._log_out.flush()
        tail = self.log_file.read_text(errors="replace").splitlines()[-40:]
        tail = [line for line in tail if not line.split(" ", 1)[-1].startswith(("pod:", "run: "))]
        return failure_reason(rc, tail, self._deadline_hit)

    def _logs(self) -> list[Path]:
        with contextlib.suppress(ValueError):
            self._log_out.flush()
        return [p for p in (self.log_file, self.workdir / "train.log") if p.is_file()]

    def _upload_logs(self) -> None:
        with self._lock:
            if self._finishing:
                return
        self.record.upload_logs(self._logs())

    def _expired(self) -> None:
        """The deadline passed: stop the run; if the main thread's teardown sticks, end it here."""
        with self._lock:
            if self._finishing:
                return
            self._deadline_hit = True
        self.say(f"deadline: {clock.stamp(self.pod.deadline)} passed; stopping the run")
        self.child.stop()
        if not self.watchdog.wait_finished(FINISH_GRACE_S):
            self.say("deadline: teardown is stuck; terminating the pod now")
            self._finish(False, failure_reason(None, [], deadline_hit=True))
            terminate_self(self.settings, self.pod, self.say)

    def _finish(self, ok: bool, reason: str | None) -> None:
        with self._lock:
            if self._finishing:
                return
            self._finishing = True
        state = "succeeded" if ok else "failed"
        self.say(f"pod: {state}" + (f" ({reason})" if reason else ""))
        status = self.record.status(state, self.now(), reason)
        results = self.repo.results_path(self.pod.basename) if ok else None
        self.record.finish(status, results, self._logs(), self._baseline if ok else None)


def child_env(settings: Settings, pod: PodEnv) -> dict[str, str]:
    """The run's environment: this process's (settings) plus what the pod was told."""
    return {
        "COLUMNS": "1000",  # rich and friends: one log line per message, not wrapped at 80
        **settings.child_env(),
        **pod.to_env(),
    }


def results_ok(repo: Repo, basename: str, say: Log) -> bool:
    """The run left a results file the schema accepts (else it did not succeed, whatever it exited)."""
    from haha.schemas import validate

    path = repo.results_path(basename)
    try:
        validate("results", json.loads(path.read_text()), file=path)
    except (OSError, ValueError, InputError) as exc:
        say(f"results: missing or invalid after the run: {exc}")
        return False
    return True


def config_sha256(repo: Repo, basename: str) -> str | None:
    """Which config file this run was for: plan retries a failed config once it is edited."""
    try:
        return sha256_file(repo.config_path(basename))
    except (InputError, OSError):
        return None


def resume_fields(
    store: Callable[[], ModelStore], pod: PodEnv, previous: RunStatus | None
) -> dict[str, object]:
    """Interruptible and resumed runs: what this pod's status carries (haha.resume.carried); the steps
    a preemption repeats are read from the train.log the preempted pod last uploaded."""
    reached = None
    if pod.resume:
        with contextlib.suppress(Exception):  # no log: no steps counted as repeated
            reached = last_step(store().fetch_log(pod.basename, "train.log") or "")
    return carried(previous, pod.interruptible, pod.resume, pod.preemptions, reached)


def _sigterm_to_exit(signum: int, frame: object) -> None:
    """SIGTERM (a reaper, a local terminate) unwinds through `finally`, so logs still go up."""
    raise SystemExit(128 + signum)
