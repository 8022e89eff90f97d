"""The `haha` command: one verb per pipeline stage. Parsing and exit codes only; logic lives in stages."""

from __future__ import annotations

import os
import sys
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
