"""`haha reap`: the third teardown layer. Terminates Haha pods past the deadline in their name.

The decision is a pure function of (pods, now): no stored state, so a reaper that itself crashed
loses nothing. Runs that never recorded an end are marked failed in the store and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from haha import runcomment
from haha.clock import stamp
from haha.compute.base import Compute, Pod
from haha.errors import HahaError
from haha.podname import PodName
from haha.runstatus import RunStatus, is_final, read_status, write_status
from haha.settings import Settings
from haha.store.base import LOGS_DIR, ModelStore

Log = Callable[[str], None]
TAIL_LINES = 40
LABEL = "haha-reaper"


@dataclass(frozen=True)
class Reap:
    pod: Pod
    name: PodName

    @property
    def reason(self) -> str:
        return f"deadline {self.name.deadline:%Y-%m-%dT%H:%MZ} passed; pod {self.pod.id} reaped"


def decide(pods: Iterable[Pod], now: datetime) -> list[Reap]:
    """Our pods (by name) that still exist, are not terminated, and are past their deadline."""
    out = []
    for pod in pods:
        name = PodName.parse(pod.name)
        if name is not None and pod.status != "TERMINATED" and name.expired(now):
            out.append(Reap(pod, name))
    return sorted(out, key=lambda r: (r.name.deadline, r.pod.id))


@dataclass(frozen=True)
class Reaped:
    reap: Reap
    marked_failed: bool
    report: str  # an issue URL, or "printed"

    def to_dict(self) -> dict[str, object]:
        return {
            "config": self.reap.name.basename,
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
    done = []
    for item in decide(compute.list_pods(), now):
        basename = item.name.basename
        log(f"reap: {item.pod.name} ({item.pod.id}, {item.pod.status}): {item.reason}")
        if dry_run:
            continue
        compute.terminate(item.pod.id)
        try:
            status = read_status(store, basename)
        except HahaError as exc:  # unreadable: the run recorded no end we can trust; reaping goes on
            log(f"reap: {basename}: status unreadable ({exc}); recording it as failed")
            status = None
        marked = not is_final(status)
        if marked:
            status = RunStatus(
                state="failed",
                reason=item.reason,
                pod_id=item.pod.id,
                pod_name=item.pod.name,
                pr=status.pr if status else None,
                reaped_at=stamp(now),
                log_location=f"{store.location(basename)}/{LOGS_DIR}/pod.log",
            )
            write_status(store, basename, status)
            if status.pr is not None:
                body = runcomment.failed_body(basename, status, status.log_location or "")
                runcomment.post(settings, status.pr, basename, body, log)
        tail = _tail(store, basename, compute.log_file(item.pod.id))
        done.append(Reaped(item, marked, _report(settings, item, status, marked, tail, log)))
    return done


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
    title = f"haha: {item.name.basename} pod reaped past its deadline"
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
