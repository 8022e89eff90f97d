"""`haha reap`: the third teardown layer. Terminates Haha pods past the deadline in their name, pods
whose run never reported that it started within the boot timeout, and pods still up well after every
run of theirs recorded its end (a teardown that failed: a cluster has no in-pod fallback).

A pod whose image never pulls (private image, bad registry credentials) or that crashes before
`haha pod` runs no boot script, so no EXIT trap and no in-pod watchdog end it: only the reaper does.
The decision is a pure function of (pods, the runs' statuses, now): no stored state of its own, so a
reaper that itself crashed loses nothing. Runs that never recorded an end are marked failed in the
store and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from haha import runcomment
from haha.clock import parse, stamp
from haha.compute.base import Compute, Pod
from haha.errors import HahaError
from haha.podname import PodName
from haha.runstatus import RunStatus, is_final, read_status, write_status
from haha.settings import Settings
from haha.store.base import LOGS_DIR, ModelStore

Log = Callable[[str], None]
TAIL_LINES = 40
# How long a pod may stay up after its runs recorded their ends (its own teardown takes seconds).
FINISHED_GRACE_MIN = 10
LABEL = "haha-reaper"


@dataclass(frozen=True)
class Reap:
    pod: Pod
    name: PodName
    boot_timeout_minutes: float | None = None  # set: reaped because its run never reported a start
    preempted: bool = False  # an interruptible pod RunPod stopped: ended, its run left to resume
    outlived: bool = False  # every run of it recorded its end, but its own teardown did not end it

    @property
    def reason(self) -> str:
        if self.outlived:
            return (
                f"its run ended over {FINISHED_GRACE_MIN} min ago but pod {self.pod.id} was still up; ended"
            )
        if self.preempted:
            return f"interruptible pod {self.pod.id} was preempted by RunPod; terminated, its run resumes"
        if self.boot_timeout_minutes is not None:
            return (
                f"never started: image pull or boot failed within {self.boot_timeout_minutes:g} min; "
                f"pod {self.pod.id} reaped"
            )
        return f"deadline {self.name.deadline:%Y-%m-%dT%H:%MZ} passed; pod {self.pod.id} reaped"


@dataclass(frozen=True)
class BootTimeout:
    """How long a pod may take to report that its run started, and how launch named its deadline."""

    minutes: float
    deadline_hours: float
    overhead_minutes: float = 0.0  # a shared pod's lifetime counts it once (sharedpod.pod_hours)

    def launched_at(self, name: PodName) -> datetime:
        """When launch named the pod (its name's deadline is launch + its lifetime + up to a minute)."""
        from haha.sharedpod import pod_hours

        hours = pod_hours(self.deadline_hours, self.overhead_minutes, len(name.basenames))
        return name.deadline - timedelta(hours=hours, minutes=1)

    def overdue(self, name: PodName, now: datetime) -> bool:
        return now - self.launched_at(name) >= timedelta(minutes=self.minutes)


def _ours(pods: Iterable[Pod]) -> list[tuple[Pod, PodName]]:
    """Our pods (by name) that still exist and are not terminated."""
    named = ((pod, PodName.parse(pod.name)) for pod in pods if pod.status != "TERMINATED")
    return [(pod, name) for pod, name in named if name is not None]


def boot_candidates(pods: Iterable[Pod], now: datetime, boot: BootTimeout) -> list[tuple[Pod, PodName]]:
    """Our live pods within their deadline but past the boot timeout: their runs' statuses decide."""
    return [(p, n) for p, n in _ours(pods) if not n.expired(now) and boot.overdue(n, now)]


def reported_start(status: RunStatus | None, pod: Pod) -> bool:
    """The run status was written by this pod (a status of an earlier run names another pod)."""
    return status is not None and (status.pod_id == pod.id or status.pod_name == pod.name)


def decide(
    pods: Iterable[Pod],
    now: datetime,
    statuses: Mapping[str, RunStatus | None] | None = None,
    boot: BootTimeout | None = None,
) -> list[Reap]:
    """Our live pods past their deadline; with `boot`, also those past the boot timeout whose run has
    not reported a start. `statuses`: basename → its status as read (absent: could not be read, so
    the pod is left alone)."""
    pods = list(pods)
    # A preempted pod first: its runs resume (every config of a shared pod), though its deadline or
    # boot timeout passed while it sat stopped; reaping it as expired would fail runs RunPod stopped.
    out = preempted(pods)
    taken = {r.pod.id for r in out}
    out += [Reap(pod, name) for pod, name in _ours(pods) if name.expired(now) and pod.id not in taken]
    if boot is not None and statuses is not None:
        for pod, name in boot_candidates(pods, now, boot):
            if pod.id in taken:
                continue
            if name.basename in statuses and not reported_start(statuses[name.basename], pod):
                out.append(Reap(pod, name, boot.minutes))
                taken.add(pod.id)
        out += [Reap(pod, name, outlived=True) for pod, name in outlived(pods, statuses, now, taken)]
    return sorted(out, key=lambda r: (r.name.deadline, r.pod.id))


def outlived(
    pods: Iterable[Pod], statuses: Mapping[str, RunStatus | None], now: datetime, taken: set[str]
) -> list[tuple[Pod, PodName]]:
    """Live pods, within their deadline, whose every config recorded its end from this very pod over
    FINISHED_GRACE_MIN ago: the pod's own teardown failed and it bills on. A cluster has no fallback in
    the pod (RunPod's pod endpoints cannot delete its members), so without this it would run to its
    deadline."""
    since = now - timedelta(minutes=FINISHED_GRACE_MIN)
    out = []
    for pod, name in _ours(pods):
        if pod.id in taken or name.expired(now):
            continue
        ends = [statuses.get(b) for b in name.basenames]
        if all(s is not None and is_final(s) and reported_start(s, pod) and _ended(s, since) for s in ends):
            out.append((pod, name))
    return out


def _ended(status: RunStatus, before: datetime) -> bool:
    finished = parse(status.finished_at)
    return finished is not None and finished <= before


def preempted(pods: Iterable[Pod]) -> list[Reap]:
    """Our interruptible pods that RunPod stopped (EXITED: a stopped interruptible pod cannot be
    started again, and its volume bills): terminated, and their runs left `running` for plan to resume."""
    return [
        Reap(pod, name, preempted=True)
        for pod, name in _ours(pods)
        if pod.interruptible and pod.status == "EXITED"
    ]


@dataclass(frozen=True)
class Reaped:
    reap: Reap
    marked_failed: bool
    report: str  # an issue URL, or "printed"
    config: str = ""  # which of the pod's configs (a shared pod has several); empty: the pod's own

    def to_dict(self) -> dict[str, object]:
        return {
            "config": self.config or self.reap.name.basename,
            "pod": self.reap.pod.id,
            "marked_failed": self.marked_failed,
            "report": self.report,
        }


def reap(
    compute: Compute,
    store: ModelStore,
    settings: Settings,
    now: datetime,
    log: Log,
    dry_run: bool = False,
) -> list[Reaped]:
    """Terminate, then mark failed (unless the run recorded its own end), then report."""
    pods = compute.list_pods()
    c = settings.compute
    boot = BootTimeout(c.boot_timeout_minutes, c.deadline_hours, c.overhead_minutes)
    statuses = _statuses(store, boot_candidates(pods, now, boot), log)
    done = []
    for item in decide(pods, now, statuses, boot):
        log(f"reap: {item.pod.name} ({item.pod.id}, {item.pod.status}): {item.reason}")
        if dry_run:
            continue
        if item.preempted:  # no failure to record or report: plan resumes or restarts each config
            compute.terminate(item.pod.id)
            done += [Reaped(item, False, "resumed by plan", b) for b in item.name.basenames]
            continue
        if item.outlived:  # every run recorded its end: only the bill was left running
            compute.terminate(item.pod.id)
            done += [Reaped(item, False, "ended after its run", b) for b in item.name.basenames]
            continue
        # A run that never started wrote no status to say its PR: the pod's launch env does (read
        # while the pod exists). An earlier run's status may be in the store: never final for this one.
        never_started = item.boot_timeout_minutes is not None
        launch_pr = _launch_pr(compute, item.pod.id, log) if never_started else None
        compute.terminate(item.pod.id)
        report = ""
        for basename in item.name.basenames:  # a shared pod: each of its configs that has not ended
            marked, status = _mark(store, settings, item, basename, never_started, launch_pr, now, log)
            if not report:  # one report per pod, with the log of the config it is named after
                tail = _tail(store, basename, compute.log_file(item.pod.id))
                report = _report(settings, item, status, marked, tail, log)
            done.append(Reaped(item, marked, report, basename))
    return done


def _mark(
    store: ModelStore,
    settings: Settings,
    item: Reap,
    basename: str,
    never_started: bool,
    launch_pr: int | None,
    now: datetime,
    log: Log,
) -> tuple[bool, RunStatus | None]:
    """Record one config of a reaped pod as failed unless it recorded its own end (and tell its PR)."""
    try:
        status = read_status(store, basename)
    except HahaError as exc:  # unreadable: the run recorded no end we can trust; reaping goes on
        log(f"reap: {basename}: status unreadable ({exc}); recording it as failed")
        status = None
    marked = never_started or not is_final(status) or not _this_pods(status, item.pod)
    if not marked:
        return False, status
    pr = launch_pr or (status.pr if status else None)
    status = RunStatus(
        state="failed",
        reason=item.reason,
        pod_id=item.pod.id,
        pod_name=item.pod.name,
        pr=pr,
        reaped_at=stamp(now),
        log_location=f"{store.location(basename)}/{LOGS_DIR}/pod.log",
    )
    write_status(store, basename, status)
    if status.pr is not None:
        body = runcomment.failed_body(basename, status, status.log_location or "")
        runcomment.post(settings, status.pr, basename, body, log)
    return True, status


def _this_pods(status: RunStatus | None, pod: Pod) -> bool:
    """A final status of this pod's own run (a single-config pod's status is always taken as such, as
    before; a shared pod's later config may still hold the end of an earlier run)."""
    parsed = PodName.parse(pod.name)
    if parsed is None or len(parsed.basenames) == 1:
        return True
    return reported_start(status, pod)


def _launch_pr(compute: Compute, pod_id: str, log: Log) -> int | None:
    try:
        return compute.launch_pr(pod_id)
    except Exception as exc:  # ending the pod matters more than the comment
        log(f"reap: could not read pod {pod_id}'s PR ({exc})")
        return None


def _statuses(
    store: ModelStore, candidates: Iterable[tuple[Pod, PodName]], log: Log
) -> dict[str, RunStatus | None]:
    """The statuses of the candidates' runs; one that cannot be read is left out (its pod is spared)."""
    out: dict[str, RunStatus | None] = {}
    for basename in dict.fromkeys(b for _, name in candidates for b in name.basenames):
        try:
            out[basename] = read_status(store, basename)
        except Exception as exc:  # the store is down: no pod is reaped on a guess
            log(f"reap: could not read the status of {basename} ({exc}); leaving its pod")
    return out


def _tail(store: ModelStore, basename: str, local: Path | None) -> list[str]:
    """The last lines the pod wrote: its local log, else the log it last uploaded."""
    text = local.read_text(errors="replace") if local and local.is_file() else None
    if text is None:
        try:
            text = store.fetch_log(basename, "pod.log")
        except Exception:  # a report without log lines beats no report
            text = None
    return (text or "").splitlines()[-TAIL_LINES:]


def _report(
    settings: Settings, item: Reap, status: RunStatus | None, marked: bool, tail: list[str], log: Log
) -> str:
    why = "never started" if item.boot_timeout_minutes is not None else "past its deadline"
    title = f"haha: {item.name.basename} pod reaped {why}"
    state = "marked failed" if marked else f"run had already {status.state if status else 'ended'}"
    body = "\n".join(
        [
            f"Pod `{item.pod.name}` (`{item.pod.id}`, {item.pod.status}, {item.pod.gpu_type or '?'}) "
            f"was terminated by `haha reap`: {item.reason}. Run {state}.",
            "",
            "Last log lines:",
            "```",
            *(tail or ["(no log uploaded)"]),
            "```",
        ]
    )
    if settings.github_token is None:
        print(f"{title}\n{body}\n")
        return "printed"
    from haha.notify import open_issue

    try:
        url = open_issue(settings, title, body, [LABEL])
    except Exception as exc:
        log(f"reap: could not open an issue ({exc}); printing instead")
        print(f"{title}\n{body}\n")
        return "printed"
    log(f"reap: reported {url}")
    return url
