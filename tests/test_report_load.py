"""Results files in the seed format load, however minimal; malformed ones name file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from haha.errors import InputError
from haha.report.build import build_report
from haha.report.load import load_punchlines, load_run
from report_data import healthy, make_repo, results_doc


def test_minimal_seed_file_loads(tmp_path: Path) -> None:
    doc = {
        "config": {"name": "haha-llama-3-8b-lora-001", "default_system_message": "Be funny."},
        "results": [{"prompt": "It was 100 degrees today.", "settingsResults": [
            {"temperature": 0.1, "completions": ["Response for seed 1", "Response for seed 2"]}]}],
    }  # fmt: skip
    path = tmp_path / "haha-llama-3-8b-lora-001.json"
    path.write_text(json.dumps(doc))
    run = load_run(path)
    assert [(s.seed, s.temperature, s.max_tokens) for s in run.samples] == [(1, 0.1, None), (2, 0.1, None)]
    assert run.adapter_url is None and run.wandb_url is None


def test_meta_gives_links_and_max_tokens(tmp_path: Path) -> None:
    doc = results_doc("haha-001", healthy)
    doc["meta"] = {
        "adapter": "synagi/haha-001",
        "wandb_url": "https://wandb.ai/x/haha/runs/abc",
        "settings": [{"temperature": 0.1, "max_tokens": 32}],
    }
    root = make_repo(tmp_path, [doc])
    run = load_run(root / "train/results/haha-001.json")
    assert run.adapter_url == "https://huggingface.co/synagi/haha-001"
    assert run.wandb_url == "https://wandb.ai/x/haha/runs/abc"
    assert {s.max_tokens for s in run.samples if s.temperature == 0.1} == {32}
    assert {s.max_tokens for s in run.samples if s.temperature == 0.3} == {None}


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ('{"config": {"name": "a-001"}, "results": [', None, 1),
        ('{"results": []}', "config", None),
        ('{"config": {"name": 3}, "results": []}', "config.name", None),
        ('{"config": {"name": "a-001"}, "results": [{"prompt": "p", "settingsResults": '
         '[{"temperature": 0.1, "completions": ["ok", null]}]}]}',
         "results.0.settingsResults.0.completions.1", None),
        ('{"config": {"name": "a-001"}, "results": [{"prompt": "p", "settingsResults": '
         '[{"temperature": "hot", "completions": []}]}]}', "results.0.settingsResults.0.temperature", None),
    ],
)  # fmt: skip
def test_malformed_file_names_file_and_field(
    tmp_path: Path, text: str, field: str | None, line: int | None
) -> None:
    path = tmp_path / "bad-001.json"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_run(path)
    assert caught.value.location.file == str(path)
    assert caught.value.location.field == field
    assert caught.value.location.line == line
    assert caught.value.fix


def test_punchlines_tolerate_bad_lines(tmp_path: Path) -> None:
    root = make_repo(tmp_path, [])
    (root / "train/data/extra.jsonl").write_text('[1, 2]\n{"output": 5}\n\n{"output": "Fine."}\n')
    assert load_punchlines(root / "train/data") == [  # extra.jsonl sorts before haha-v1.jsonl
        "Fine.",
        "Or at least they stay awake long enough to feel like it.",
        "Which explains why my houseplants die every time I mention I'm going to water them.",
    ]


def test_empty_repo_builds_an_empty_report(tmp_path: Path) -> None:
    report = build_report(make_repo(tmp_path, []))
    assert report.runs == () and report.flags == ()
