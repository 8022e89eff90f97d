"""README.md, index.html and the plot: deterministic bytes, well-formed tables, the summary for PRs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from haha.report import summary_table, write_report
from haha.report.commands import report_command
from report_data import healthy, make_repo, results_doc, standard_repo

RESULTS = "train/results"


def test_report_files_are_byte_identical_across_runs(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    first = {p: p.read_bytes() for p in write_report(root)}
    second = {p: p.read_bytes() for p in write_report(root)}
    assert first == second
    assert {p.relative_to(root).as_posix() for p in first} == {
        f"{RESULTS}/README.md",
        f"{RESULTS}/index.html",
        f"{RESULTS}/plots/metrics.png",
    }
    assert first[root / RESULTS / "plots/metrics.png"].startswith(b"\x89PNG")
    assert b"matplotlib" not in first[root / RESULTS / "plots/metrics.png"]  # no version stamp to churn


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def tables(markdown: str) -> list[list[str]]:
    """Every block of consecutive table lines."""
    blocks, current = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks


def test_markdown_sections_and_tables_render(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    write_report(root)
    text = (root / RESULTS / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:6] == ["Flags", "Leaderboard", "Funniest", "Metrics", "Plots", "Completions"]
    flags = text.split("## Flags")[1].split("## Leaderboard")[0]
    assert re.findall(r"^- \*\*(.+?)\*\*", flags, re.M) == [
        "haha-llama-3-8b-lora-004", "haha-llama-3-8b-lora-005", "haha-llama-3-8b-lora-006"
    ]  # fmt: skip
    assert "![Metrics against temperature, per config](plots/metrics.png)" in text
    found = tables(text)
    assert len(found) == 2 + 11  # leaderboard, metrics, one per prompt
    for block in found:
        assert re.fullmatch(r"\|(---\|)+", block[1])
        assert {unescaped_pipes(line) for line in block} == {unescaped_pipes(block[0])}
    leaderboard = found[0]
    assert leaderboard[0].split(" | ")[2:5] == ["lora_r", "num_epochs", "learning_rate"]  # only what differs


def test_looping_text_is_cut_and_special_tokens_escaped(tmp_path: Path) -> None:
    def leaky(rng, prompt, temperature, seed):
        return "Fine | really <|im_end|>" + " and so on" * 200

    root = make_repo(tmp_path, [results_doc("leak-001", leaky), results_doc("ok-002", healthy)])
    write_report(root)
    text = (root / RESULTS / "README.md").read_text()
    assert "Fine \\| really &lt;\\|im_end\\|&gt;" in text
    assert "<|im_end|>" not in text
    assert max(len(line) for line in text.splitlines()) < 5000
    page = (root / RESULTS / "index.html").read_text()
    assert "&lt;|im_end|&gt;" in page and "<|im_end|>" not in page


def test_summary_table_and_links(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    path = root / RESULTS / "haha-llama-3-8b-lora-001.json"
    doc = json.loads(path.read_text())
    doc["meta"] = {"adapter": "https://huggingface.co/synagi/haha-llama-3-8b-lora-001",
                   "wandb_url": "https://wandb.ai/synagi/haha/runs/1"}  # fmt: skip
    path.write_text(json.dumps(doc))
    table = summary_table(root, ["haha-llama-3-8b-lora-001", "haha-llama-3-8b-lora-004"])
    lines = table.splitlines()
    assert lines[0].startswith("| config | status | clean |")
    assert len(lines) == 4
    assert (
        "[model](https://huggingface.co/synagi/haha-llama-3-8b-lora-001) · [W&B](https://wandb.ai/synagi/haha/runs/1)"
        in lines[2]
    )
    assert "⚠ 1" in lines[3] and "of 165 completions are empty" in lines[3]
    assert summary_table(make_repo(tmp_path / "empty", [])) == "_No eval results yet._\n"


def test_report_command_prints_files_and_flags(tmp_path: Path, capsys) -> None:
    root = standard_repo(tmp_path)
    (root / "train/config").mkdir(exist_ok=True)
    assert report_command(root) == 0
    out = capsys.readouterr().out
    assert "wrote train/results/README.md" in out
    assert out.count("flag ") == 3
