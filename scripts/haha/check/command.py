"""`haha check` as a plain function: the CLI registers it; it returns the exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from haha.check.gate import run_check
from haha.check.render import RENDERERS, render_markdown, render_text
from haha.repo import Repo
from haha.settings import load_settings

FORMATS = tuple(RENDERERS)


def check_command(base: str | None, fmt: str, repo: Path | None) -> int:
    """Run the gate and print it in `fmt`: 1 when there are errors, 0 with warnings only.

    In `github` format on Actions, the markdown view also goes to the job summary page.
    """
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    found = Repo(repo.resolve()) if repo else Repo.find()
    report = run_check(found, load_settings(found.root, os.environ), base)
    if fmt == "text":
        sys.stdout.write(render_text(report, color=sys.stdout.isatty()))
    else:
        sys.stdout.write(RENDERERS[fmt](report))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt == "github" and summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(render_markdown(report) + "\n")
    return report.exit_code
