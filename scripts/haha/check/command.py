"""`haha check` as a plain function: the CLI registers it; it returns the exit code."""

from __future__ import annotations

import sys

from haha.check.gate import run_check
from haha.check.render import RENDERERS, render_markdown, render_text
from haha.repo import Repo, default_base
from haha.settings import Settings

FORMATS = tuple(RENDERERS)


def check_command(found: Repo, settings: Settings, base: str | None, fmt: str) -> int:
    """Run the gate and print it in `fmt`: 1 when there are errors, 0 with warnings only.

    Without `base`, records (trained configs, their datasets, results) are still compared with the
    default branch when the clone knows one (origin/HEAD, origin/main). In `github` format on
    Actions, the markdown view also goes to the job summary page.
    """
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    report = run_check(found, settings, base, None if base else default_base(found))
    if fmt == "text":
        sys.stdout.write(render_text(report, color=sys.stdout.isatty()))
    else:
        sys.stdout.write(RENDERERS[fmt](report))
    summary = settings.github_step_summary
    if fmt == "github" and summary:
        with summary.open("a", encoding="utf-8") as out:
            out.write(render_markdown(report) + "\n")
    return report.exit_code
