"""`haha collect`: bring published results from the model store into the repo, for one rolling bot PR.

Collect is the only writer of train/results/<basename>.json from pods. It is driven twice — by the
pod's repository_dispatch and by a schedule that catches lost dispatches — so it must be idempotent:
a result already in the repo, byte for byte, writes nothing.

One PR (branch `haha/results`) carries every collected run and the regenerated report, rebuilt from
main on each collect: runs that finish together never conflict over the report, and merging the PR
leaves nothing behind. A per-run PR would let each one regenerate README.md, index.html and the plots,
so the second to merge always conflicted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from haha.atomic import write_atomic
from haha.budget import list_price
from haha.errors import HahaError, InputError
from haha.phases import phases_text
from haha.plan import desired_configs
from haha.repo import Repo
from haha.results import write_results
from haha.runstatus import RunStatus, read_status
from haha.schemas import validate
from haha.settings import Settings
from haha.store.base import ModelStore

Log = Callable[[str], None]
Change = Literal["new", "updated", "same", "missing", "error"]
BRANCH = "haha/results"
# A Hub model id, as a published baseline names its base model (it becomes a file name here).
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


def change_of(local: Mapping[str, Any] | None, remote: Mapping[str, Any] | None) -> Change:
    """How the published results relate to the repo's copy."""
    if remote is None:
        return "missing"
    if local is None:
        return "new"
    return "same" if local == remote else "updated"


@dataclass(frozen=True)
class Collected:
    basename: str
    change: Change
    files: tuple[str, ...] = ()
    error: str | None = None  # change "error": why this run was not collected


def pr_title(changed: Sequence[str]) -> str:
    return f"Results: {changed[0]}" if len(changed) == 1 else f"Results: {len(changed)} runs"


def summary(done: Sequence[Collected]) -> dict[str, Any]:
    """What `haha collect` prints: the changed runs, their files, the PR's branch and title, errors."""
    changed = [c for c in done if c.change not in ("same", "error")]
    return {
        "changed": [c.basename for c in changed],
        "files": sorted({f for c in changed for f in c.files}),
        "branch": BRANCH,
        "title": pr_title([c.basename for c in changed]) if changed else "",
        "errors": [{"config": c.basename, "error": c.error} for c in done if c.change == "error"],
    }


def _local(repo: Repo, basename: str) -> dict[str, Any] | None:
    path = repo.results_path(basename)
    try:
        document = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:
        return None  # a corrupt file is replaced by the published one
    return document if isinstance(document, dict) else None


def pending(repo: Repo, store: ModelStore, names: Sequence[str] | None = None) -> list[Collected]:
    """Runs whose published results are not in the repo yet (or differ): what a matrix collects.

    A run whose published files cannot be read comes back with change "error" and the reason.
    """
    out = []
    for basename in sorted(names or desired_configs(repo)):
        try:
            change = change_of(_local(repo, basename), store.fetch_results(basename))
        except HahaError as exc:
            out.append(Collected(basename, "error", error=str(exc)))
            continue
        if change in ("new", "updated"):
            out.append(Collected(basename, change))
    return out


@dataclass
class _Undo:
    """What each file held before this collect wrote it, to put back if the collect fails."""

    before: dict[Path, bytes | None] = field(default_factory=dict)

    def write(self, document: dict[str, Any], path: Path) -> Path:
        self.before.setdefault(path, path.read_bytes() if path.is_file() else None)
        return write_results(document, path)

    def restore(self) -> None:
        for path, content in self.before.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, content)


def collect(
    repo: Repo, store: ModelStore, names: Sequence[str] | None, log: Log, report: bool = True
) -> list[Collected]:
    """Validate and write each run's results; regenerate the report when anything changed.

    A run whose published files are unreadable or invalid is skipped with change "error" (the others
    are still collected). If the report cannot be written, every file this call wrote is put back.
    """
    done = []
    undo = _Undo()
    try:
        for basename in sorted(names or desired_configs(repo)):
            try:
                item = _collect_one(repo, store, basename, log, undo)
            except HahaError as exc:
                log(f"collect: {basename}: not collected, the repo keeps what it had: {exc}")
                item = Collected(basename, "error", error=str(exc))
            if item.change != "missing":
                done.append(item)
        if report and any(c.change in ("new", "updated") for c in done):
            from haha.report import write_report

            written = write_report(repo.root)
            log(f"collect: report regenerated ({len(written)} files)")
    except BaseException:
        undo.restore()
        log("collect: failed; every file it wrote is back as it was")
        raise
    return done


def _collect_one(repo: Repo, store: ModelStore, basename: str, log: Log, undo: _Undo) -> Collected:
    """One run: everything read and validated first, then written (results, then its baseline)."""
    remote = store.fetch_results(basename)
    change = change_of(_local(repo, basename), remote)
    if change == "missing":
        log(f"collect: {basename}: nothing published yet")
        return Collected(basename, change)
    if change == "same":
        log(f"collect: {basename}: already in the repo")
        return Collected(basename, change)
    assert remote is not None
    where = f"{store.location(basename)}/results.json"
    _validate(remote, where)
    if remote.get("config", {}).get("name") != basename:
        raise InputError(
            f"published results name {remote.get('config', {}).get('name')!r}, not {basename}",
            file=where,
            field="config.name",
            fix="republish the run from its own pod",
        )
    baseline = _published_baseline(repo, store, basename)
    path = undo.write(remote, repo.results_path(basename))
    log(f"collect: {basename}: {change} → {repo.rel(path)}")
    files = [repo.rel(path)]
    if baseline is not None:
        files.append(repo.rel(undo.write(*baseline)))
        log(f"collect: baseline of {baseline[0]['meta']['base_model']} → {files[-1]}")
    return Collected(basename, change, tuple(files))


def collect_command(
    repo: Repo, settings: Settings, names: Sequence[str] | None, pr_body_file: Path | None, log: Log
) -> list[Collected]:
    """`haha collect`: collect, then write the results PR's body (the changed runs, else all of them)."""
    from haha.store import get_store

    store = get_store(settings, repo.root)
    done = collect(repo, store, names, log)
    good = [c for c in done if c.change != "error"]
    changed = [c for c in good if c.change != "same"]
    if pr_body_file is not None and good:
        write_pr_body(repo, store, settings, [c.basename for c in (changed or good)], pr_body_file)
        log(f"collect: PR body → {pr_body_file}")
    if errors := [c.basename for c in done if c.change == "error"]:
        log(f"collect: {len(errors)} run(s) not collected ({', '.join(errors)}); the rest are whole")
    return done


def _published_baseline(repo: Repo, store: ModelStore, basename: str) -> tuple[dict[str, Any], Path] | None:
    """The baseline the run's pod made (validated), unless the repo has one for that eval.json."""
    from haha.baseline import baseline_path, is_current

    remote = store.fetch_baseline(basename)
    meta = (remote or {}).get("meta") or {}
    if remote is None or not isinstance(meta, dict) or not meta.get("base_model"):
        return None
    where = f"{store.location(basename)}/baseline.json"
    base_model = meta["base_model"]
    if not isinstance(base_model, str) or ".." in base_model or not MODEL_ID.fullmatch(base_model):
        raise InputError(
            f"meta.base_model {base_model!r} is not a Hub model id",
            file=where,
            field="meta.base_model",
            fix="republish the run from its own pod",
        )
    path = baseline_path(repo, base_model)
    if is_current(path, meta.get("eval_sha256", ""), meta.get("engine")):
        return None
    _validate(remote, where)
    return remote, path


def _validate(document: dict[str, Any], where: str) -> None:
    """schemas/results.schema.json, with the fix for a published file: publish it again."""
    try:
        validate("results", document, file=where)
    except InputError as exc:
        raise InputError(
            exc.message,
            file=where,
            field=exc.location.field,
            fix="republish the run from its own pod (results must match schemas/results.schema.json)",
        ) from exc


# --- the PR body -----------------------------------------------------------------------------------
def run_cost(
    results: Mapping[str, Any], status: RunStatus | None, settings: Settings
) -> tuple[float, float | None, str]:
    """(seconds, dollars, how priced) of what was billed.

    A pod bills its whole life — image pull, model download, boot, publish — not just train and eval.
    The run's `meta.cost` says what it billed (issue 18). Files written before it: the pod's lifetime
    from the status × the price RunPod reported for it; without a pod (a local run), the stage seconds
    × the first GPU type's list price estimate what it would cost.
    """
    recorded = (results.get("meta") or {}).get("cost")
    if isinstance(recorded, Mapping) and isinstance(recorded.get("billed_seconds"), (int, float)):
        dollars = recorded.get("billed_dollars")
        how = "billed" if recorded.get("priced") == "billed" else "list price"
        gpus = f"{recorded.get('gpu_count', 1)}× {recorded.get('gpu_type') or '?'}"
        return (
            float(recorded["billed_seconds"]),
            float(dollars) if isinstance(dollars, (int, float)) else None,
            f"{how} of {gpus}",
        )
    stages = stage_seconds(results)
    if status is not None and status.cost_per_hour is not None:
        seconds = status.pod_seconds if status.pod_seconds is not None else stages
        basis = "pod lifetime" if status.pod_seconds is not None else "train + eval"
        return (
            seconds,
            seconds / 3600 * status.cost_per_hour,
            f"{basis} at the {status.gpu_type or 'pod'} price",
        )
    if price := list_price(settings):
        count = (status.gpu_count if status else None) or 1
        return stages, price.dollars(stages, count), f"estimate at {price.gpu_type} list price"
    return stages, None, "no price configured"


def stage_seconds(results: Mapping[str, Any]) -> float:
    """Train + eval (+ publish) seconds as the run measured them."""
    return float(sum(((results.get("meta") or {}).get("stage_seconds") or {}).values()))


def cost_text(results: Mapping[str, Any], status: RunStatus | None, settings: Settings) -> str:
    seconds, dollars, priced = run_cost(results, status, settings)
    money = f"${dollars:.2f}" if dollars is not None else "unknown"
    return f"{money} for {duration(seconds)} ({priced})" + _predicted(results)


def _predicted(results: Mapping[str, Any]) -> str:
    """`; predicted $1.10 for 20 min 00 s (from 7 runs)` where launch recorded a prediction."""
    cost = (results.get("meta") or {}).get("cost") or {}
    if not isinstance(cost, Mapping) or not isinstance(cost.get("predicted_dollars"), (int, float)):
        return ""
    seconds = cost.get("predicted_seconds")
    took = f" for {duration(seconds)}" if isinstance(seconds, (int, float)) else ""
    return f"; predicted ${cost['predicted_dollars']:.2f}{took} ({cost.get('predicted_from', 'assumed')})"


def wandb_link(settings: Settings, basename: str) -> str | None:
    if not settings.wandb_entity:
        return None
    return f"https://wandb.ai/{settings.wandb_entity}/{settings.wandb_project}/runs?search={basename}"


def pr_body(
    basename: str,
    results: Mapping[str, Any],
    status: RunStatus | None,
    settings: Settings,
    location: str,
    table: str,
) -> str:
    """A markdown summary of one run for its bot PR: links, duration, cost and the top-line table."""
    meta = results.get("meta") or {}
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in (meta.get("stage_seconds") or {}).items())
    lines = [
        f"<!-- haha:collect:{basename} -->",
        f"## {basename}",
        "",
        f"- Model store: {_link(location)}",
    ]
    if wandb := wandb_link(settings, basename):
        lines.append(f"- W&B: [{settings.wandb_project}/{basename}]({wandb})")
    lines += [
        f"- Duration: {duration(stage_seconds(results))} ({stages or 'no stage timings'})",
        f"- Cost: {cost_text(results, status, settings)}",
        *([f"- Phases: {phases_text(meta['phases'])}"] if isinstance(meta.get("phases"), Mapping) else []),
        f"- Engine: {meta.get('engine', '?')} on {meta.get('device', '?')}; base model "
        f"`{meta.get('base_model', '?')}`; commit `{(meta.get('git_commit') or '?')[:7]}`",
    ]
    if status and status.pod_id:
        lines.append(f"- Pod: `{status.pod_id}` ({status.mode}, {status.state})")
    lines += ["", table.rstrip(), ""]
    return "\n".join(lines)


def _link(location: str) -> str:
    return (
        f"[{location.rsplit('/', 2)[-2]}/{location.rsplit('/', 1)[-1]}]({location})"
        if "://" in location
        else f"`{location}`"
    )


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def write_pr_body(
    repo: Repo, store: ModelStore, settings: Settings, basenames: Sequence[str], out: Path
) -> Path:
    """The PR body for the collected runs (normally one), from the repo's files and the store status."""
    from haha.report import summary_table

    parts = []
    for basename in basenames:
        results = _local(repo, basename)
        if results is None:
            raise InputError(
                f"no results for {basename} in the repo", fix=f"run `haha collect {basename}` first"
            )
        parts.append(
            pr_body(basename, results, read_status(store, basename), settings, store.location(basename), "")
        )
    table = summary_table(repo.root, list(basenames))
    return write_atomic(out, "\n".join(p.rstrip() for p in parts) + "\n\n" + table)
