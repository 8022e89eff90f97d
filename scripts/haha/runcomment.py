"""The run-status comment on the PR that started a run: one per config, edited in place as it moves.

launched (pod, GPU type, price, deadline) → finished (the results PR, cost) or failed (reason, log).
Rendering is pure; `post` is the one edge, and it never raises: a comment matters less than the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from haha.budget import Held, MonthlyDecision
from haha.clock import stamp
from haha.repo import Repo, added_in
from haha.runstatus import RunStatus, read_status
from haha.settings import Settings
from haha.store.base import ModelStore

Log = Callable[[str], None]


def marker(basename: str) -> str:
    return f"<!-- haha-run:{basename} -->"


def launched_body(
    basename: str,
    pod_id: str,
    gpu_type: str,
    price_per_hour: float | None,
    deadline: datetime,
    override: str | None = None,
    nodes: int = 1,
) -> str:
    price = f"${price_per_hour:.2f}/h" if price_per_hour else "price unknown"
    what = f"Cluster `{pod_id}` of {nodes} nodes" if nodes > 1 else f"Pod `{pod_id}`"
    lines = [
        marker(basename),
        f"### 🚀 `{basename}` launched",
        "",
        f"- {what} on {gpu_type or '?'} ({price})",
        f"- Deadline {stamp(deadline)}: past it the pod stops itself, and the reaper terminates it",
    ]
    if override:
        lines.append(f"- Monthly spend limit overridden by a manual launch: {override}")
    return "\n".join(lines)


def held_body(decision: MonthlyDecision, held: Held) -> str:
    """A run the monthly spend limit holds: the numbers, and the two ways to launch it."""
    return "\n".join(
        [
            marker(held.config),
            f"### ⏸️ `{held.config}` held: over the monthly spend limit",
            "",
            f"- {decision.why(held)}",
            "- Nothing was launched for it. To run it: raise `monthly_dollars` in `haha.toml`'s `[budget]` "
            "(a PR; then run the launch workflow by hand, as a merge that touches only `haha.toml` plans "
            f"nothing), or run the launch workflow by hand (Actions → launch → Run workflow) with config "
            f"`{held.config}` and a reason: that launches it over the limit once, and the reason is recorded "
            "here and in the pod's environment",
        ]
    )


def finished_body(basename: str, status: RunStatus, where: str, cost: str) -> str:
    return "\n".join(
        [
            marker(basename),
            f"### ✅ `{basename}` finished",
            "",
            f"- Results: {where}",
            f"- Cost: {cost}",
            f"- Pod `{status.pod_id or '?'}` on {status.gpu_type or '?'}",
            *_override_line(status),
        ]
    )


def shared_note(basename: str, configs: Sequence[str]) -> str:
    """A line for a config in a shared pod: which configs share it and when this one runs."""
    if len(configs) < 2 or basename not in configs:
        return ""
    others = ", ".join(f"`{c}`" for c in configs if c != basename)
    turn = list(configs).index(basename) + 1
    return f"\n- Shares its pod with {others}: runs {turn} of {len(configs)}, one after another"


def failed_body(basename: str, status: RunStatus, log_location: str) -> str:
    return "\n".join(
        [
            marker(basename),
            f"### ❌ `{basename}` failed",
            "",
            f"- Reason: {status.reason or 'unknown'}",
            f"- Logs: {log_location}",
            f"- Pod `{status.pod_id or '?'}`; the config is held until it is edited or named in a "
            "manual launch",
            *_override_line(status),
        ]
    )


def _override_line(status: RunStatus) -> list[str]:
    """The reason a manual launch went over the monthly spend limit, kept once the run has ended."""
    if not status.budget_override:
        return []
    return [f"- Monthly spend limit overridden by a manual launch: {status.budget_override}"]


def post(settings: Settings, pr: int | None, basename: str, body: str, log: Log) -> str | None:
    """Create or edit the config's comment on `pr`; None (logged) when there is no PR or token."""
    if pr is None or settings.github_token is None:
        return None
    from haha.notify import upsert_comment

    try:
        url = upsert_comment(settings, pr, marker(basename), body)
    except Exception as exc:
        log(f"comment: could not update the status comment on PR #{pr}: {exc}")
        return None
    log(f"comment: {basename} → {url}")
    return url


def source_pr(settings: Settings, repo: Repo, configs: Sequence[str], log: Log) -> int | None:
    """The PR a launch reports on: the merged PR that added the one named config, else the PR of HEAD.

    A manual retry runs on main's tip, whose PR is someone else's (or none): the commit that added
    the config still leads to the PR where the run started. No token: none, and no comments.
    """
    if settings.github_token is None:
        return None
    from haha.errors import HahaError
    from haha.notify import pull_for_commit

    shas = []
    if len(configs) == 1:
        try:
            shas.append(added_in(repo, Path(repo.rel(repo.config_path(configs[0])))))
        except HahaError as exc:
            log(f"launch: could not tell which commit added {configs[0]}: {exc}")
    shas.append(repo.head_sha())
    for sha in dict.fromkeys(s for s in shas if s):
        try:
            if (pr := pull_for_commit(settings, sha)) is not None:
                return pr
        except HahaError as exc:
            log(f"launch: could not find the PR of {sha}: {exc}")
    return None


def refresh(
    repo: Repo,
    store: ModelStore,
    settings: Settings,
    names: Sequence[str] | None,
    results_pr: str | None,
    log: Log,
) -> list[str]:
    """Bring each run's comment up to its stored status (finished or failed); returns the URLs posted.

    Runs still going keep their "launched" comment. Safe to repeat: an unchanged comment is not edited.
    """
    from haha.collect import cost_text
    from haha.plan import desired_configs

    posted = []
    for basename in sorted(names or desired_configs(repo)):
        status = read_status(store, basename)
        if status is None or status.pr is None or not status.final:
            continue
        if status.state == "failed":
            where = status.log_location or f"{store.location(basename)}/logs/"
            body = failed_body(basename, status, where)
        else:
            body = finished_body(
                basename,
                status,
                _where(repo, basename, results_pr),
                cost_text(_results(repo, store, basename), status, settings),
            )
        if url := post(settings, status.pr, basename, body, log):
            posted.append(url)
    return posted


def _where(repo: Repo, basename: str, results_pr: str | None) -> str:
    """Merged on main, in the open results PR, or still to be collected."""
    path = repo.results_path(basename)
    if repo.read_at("HEAD", Path(repo.rel(path))) is not None:
        return f"`{repo.rel(path)}` on main"
    return results_pr or "published; the next collect opens the results PR"


def _results(repo: Repo, store: ModelStore, basename: str) -> dict:
    path = repo.results_path(basename)
    return json.loads(path.read_text()) if path.is_file() else store.fetch_results(basename) or {}
