"""`haha compare A B`: both configs aligned on prompt, temperature and seed."""

from __future__ import annotations

from pathlib import Path

from haha.report.commands import compare_command
from haha.report.compare import pairs
from haha.report.load import find_run
from report_data import PROMPTS, TEMPERATURES, standard_repo

A, B = "haha-llama-3-8b-lora-001", "haha-llama-3-8b-lora-004"


def test_pairs_align_on_prompt_temperature_seed(tmp_path: Path) -> None:
    results = standard_repo(tmp_path) / "train/results"
    a, b = find_run(results, A), find_run(results, B)
    found = pairs(a, b)
    assert len(found) == len(PROMPTS) * len(TEMPERATURES) * 3
    sample_a = {(s.prompt, s.temperature, s.seed): s.text for s in a.samples}
    assert all(p.a == sample_a[(p.prompt, p.temperature, p.seed)] for p in found)


def test_compare_markdown_and_terminal(tmp_path: Path, capsys) -> None:
    root = standard_repo(tmp_path)
    assert compare_command(A, B, "markdown", root) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# {A} vs {B}")
    assert text.count("\n## ") == len(PROMPTS)
    assert f"| T | seed | {A} | {B} |" in text and "(empty)" in text

    assert compare_command(f"{A}.json", B, "rich", root) == 0
    out = capsys.readouterr().out
    assert PROMPTS[0] in out and "(empty)" in out
