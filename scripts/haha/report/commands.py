"""The report verbs as plain functions for cli.py to register; heavy imports happen inside them."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from haha.repo import Repo
from haha.settings import Settings

FORMATS = ("rich", "markdown")


def _repo(repo: Path | None) -> Repo:
    return Repo(repo.resolve()) if repo else Repo.find()


def report_command(repo: Path | None = None) -> int:
    """`haha report`: write train/results/README.md, index.html and plots; list the broken runs."""
    from haha.report.build import build_report, write_files

    found = _repo(repo)
    report = build_report(found.root)
    console = Console()
    for path in write_files(found.root, report):
        console.print(f"wrote {found.rel(path)}", highlight=False)
    for flag in report.flags:
        console.print(f"[bold red]flag[/] {flag}", highlight=False)
    return 0


def compare_command(a: str, b: str, fmt: str = "rich", repo: Path | None = None) -> int:
    """`haha compare A B`: both configs' completions for the same prompt/temperature/seed."""
    from haha.errors import InputError
    from haha.report import compare
    from haha.report.load import find_run

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", field="--format", fix=f"use one of: {', '.join(FORMATS)}")
    found = _repo(repo)
    run_a, run_b = find_run(found.results_dir, a), find_run(found.results_dir, b)
    found_pairs = compare.pairs(run_a, run_b)
    console = Console()
    if fmt == "markdown":
        console.out(compare.markdown(run_a, run_b, found_pairs), end="", highlight=False)
    else:
        for table in compare.terminal(run_a, run_b, found_pairs):
            console.print(table)
    return 0


def judge_command(found: Repo, settings: Settings, a: str, b: str) -> int:
    """`haha judge A B`: LLM pairwise verdicts when HAHA_JUDGE_URL is set; a clear skip otherwise."""
    from haha.report import judge
    from haha.report.load import find_run

    console = Console()
    config = judge.JudgeConfig.from_settings(settings)
    if config is None:
        console.print(
            "judge skipped: no judge configured. Set HAHA_JUDGE_URL (an OpenAI-compatible base URL, "
            "e.g. http://localhost:8000/v1) and HAHA_JUDGE_MODEL (and HAHA_JUDGE_API_KEY if it needs one).",
            highlight=False,
        )
        return 0
    run_a, run_b = find_run(found.results_dir, a), find_run(found.results_dir, b)
    tally = judge.judge(run_a, run_b, found.results_dir, config.model, judge.http_asker(config))
    total = tally.a_wins + tally.b_wins + tally.ties + tally.unclear
    unclear = f", unclear {tally.unclear}" if tally.unclear else ""
    votes = f"{tally.votes} votes in {found.rel(tally.ratings_path)}" if tally.ratings_path else "no votes"
    console.print(
        f"{run_a.name} wins {tally.a_wins}, {run_b.name} wins {tally.b_wins}, ties {tally.ties}{unclear} "
        f"of {total} pairs (asked {tally.asked}, cached {tally.cached}); "
        f"verdicts in {found.rel(tally.path)}, {votes}",
        highlight=False,
    )
    return 0


def rate_command(
    rater: str | None = None,
    port: int = 8765,
    repo: Path | None = None,
    stop_after: float | None = None,
) -> int:
    """`haha rate`: serve the blind A/B page on 127.0.0.1 until Ctrl-C (or stop_after seconds)."""
    import getpass
    import random

    from haha.errors import InputError
    from haha.rate import ratings
    from haha.rate.deck import Deck
    from haha.rate.server import Session, serve
    from haha.report.load import load_runs

    name = (rater or getpass.getuser() or "anonymous").strip()
    if not name or name.startswith(ratings.JUDGE_PREFIX):
        raise InputError(
            f"rater name {name!r} is reserved or empty", field="--rater", fix="pass --rater NAME"
        )
    found = _repo(repo)
    runs = load_runs(found.results_dir)
    if len(runs) < 2:
        raise InputError(
            "nothing to compare: fewer than two results files",
            file=found.results_dir,
            fix="run some configs first",
        )
    deck = Deck(runs, ratings.load_ratings(found.results_dir), name, random.Random())
    path = ratings.rater_path(found.results_dir, name)
    session = Session(deck, name, path, found.rel(path))
    console = Console()
    with serve(session, port, stop_after) as running:
        # plain print, flushed: a script (or a test) reading our stdout learns the URL at once
        where = found.rel(path)
        print(f"rating as {name}: open {running.url} (votes go to {where}; Ctrl-C stops)", flush=True)
        try:
            while not running.stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    console.print(f"{session.votes} votes saved to {found.rel(path)}", highlight=False)
    return 0
