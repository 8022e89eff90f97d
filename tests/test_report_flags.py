"""Flags name exactly the broken runs, in plain words; the metrics behind them behave."""

from __future__ import annotations

from pathlib import Path

import pytest
from haha.report import metrics
from haha.report.build import build_report
from report_data import make_repo, results_doc, standard_repo

BROKEN = {"haha-llama-3-8b-lora-004", "haha-llama-3-8b-lora-005", "haha-llama-3-8b-lora-006"}


def test_flags_name_exactly_the_broken_runs(tmp_path: Path) -> None:
    report = build_report(standard_repo(tmp_path))
    assert {f.name for f in report.flags} == BROKEN
    reasons = {f.name: f.reasons for f in report.flags}
    assert reasons["haha-llama-3-8b-lora-004"][0].endswith("of 165 completions are empty")
    assert reasons["haha-llama-3-8b-lora-005"][0].startswith("165 of 165 completions are repetition loops")
    assert reasons["haha-llama-3-8b-lora-006"] == ("165 of 165 completions echo the prompt back",)


def test_degenerate_run_is_flagged_and_diversity_is_not(tmp_path: Path) -> None:
    def symbols(rng, prompt, temperature, seed):
        return "#$%^ 12345 <|im_end|> ;;;; 0000"

    def identical(rng, prompt, temperature, seed):
        return "The otters asked for a raise, which explains a lot."

    root = make_repo(tmp_path, [results_doc("degen-001", symbols), results_doc("same-002", identical)])
    report = build_report(root)
    assert [str(f) for f in report.flags] == [
        "degen-001: 165 of 165 completions are degenerate text (mostly symbols or leaked special tokens)"
    ]
    same = next(r for r in report.runs if r.run.name == "same-002")
    assert same.stats.distinct2 == pytest.approx(1 / 3)  # informational: in the tables, not a flag


@pytest.mark.parametrize(
    ("text", "loop"),
    [
        ("The otters formed a union, and the pebbles are on strike.", False),
        ("ha " * 40, True),
        ("!" * 80, True),
        ("Hahaha, no.", False),
        ("I told him twice: not today. I told him twice: not today. " * 3, True),
    ],
)
def test_is_loop(text: str, loop: bool) -> None:
    assert metrics.is_loop(text) is loop


def test_echo_copy_truncation_and_distinct() -> None:
    prompt = "A zoo in Georgia says its otters have learned to juggle pebbles."
    assert metrics.is_echo(prompt, prompt)
    assert metrics.is_echo(
        prompt, "Breaking: a zoo in Georgia says its otters have learned to juggle pebbles!"
    )
    assert not metrics.is_echo(prompt, "The otters now want a pension plan.")
    lines = metrics.Punchlines(["Or at least they stay awake long enough to feel like it."])
    assert lines.is_copy("Or at least they stay awake long enough to feel like it!")
    assert lines.is_copy("Well, or at least they stay awake long enough to feel like it, I guess")
    assert not lines.is_copy("They stay awake, but only during meetings.")

    def count(text: str) -> int:
        return len(text.split())

    assert metrics.is_truncated("word " * 70 + "and then", 64, count)
    assert not metrics.is_truncated("word " * 70 + "end.", 64, count)
    assert not metrics.is_truncated("short and unfinished", 64, count)
    assert metrics.distinct_n(["a b c", "a b c"], 2) == (2, 4)
