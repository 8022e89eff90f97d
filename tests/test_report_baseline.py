"""Baselines beside their configs; flags for no-op adapters, runaways and losses far off their series."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from haha.errors import InputError
from haha.report import write_report
from haha.report.baseline import NO_EFFECT_SHARE
from haha.report.build import build_report
from haha.report.load import find_run, load_runs
from report_data import (
    BASE_MODEL,
    baseline_doc,
    healthy,
    make_repo,
    results_doc,
    standard_repo,
    write_baseline,
)

BASE = f"baseline:{BASE_MODEL}"


def test_baselines_load_from_their_folder_and_are_not_configs(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    write_baseline(root, baseline_doc(healthy, seed=9))
    runs = load_runs(root / "train/results")
    assert [r.name for r in runs if r.is_baseline] == [BASE]
    assert find_run(root / "train/results", BASE).is_baseline
    report = build_report(root)
    assert BASE not in {f.name for f in report.flags}
    assert report.baselines == {BASE_MODEL: BASE}
    assert report.rows[0].run.name == BASE  # above its configs in the side-by-side view
    assert "lora_r" in report.hyperparameters  # the baseline's missing keys do not count as differences
    write_report(root)
    text = (root / "train/results/README.md").read_text()
    assert "6 configs and 1 baseline, 1,155 completions." in text
    leaderboard = text.split("## Leaderboard")[1].split("## Funniest")[0]
    assert f"| {BASE} |" in leaderboard
    first_prompt = text.split("### 1. ")[1].split("### 2. ")[0]
    assert first_prompt.splitlines()[4].startswith(f"| {BASE} |")
    page = (root / "train/results/index.html").read_text()
    assert f'<tr class="baseline"><td class="config">{BASE}</td>' in page


def test_a_file_in_baseline_that_is_not_one_is_an_error(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    doc = results_doc("haha-llama-3-8b-lora-009", healthy)
    path = root / "train/results/baseline/x.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as caught:
        load_runs(root / "train/results")
    assert caught.value.location.file == str(path) and caught.value.location.field == "config.name"


def test_run_identical_to_its_baseline_is_flagged(tmp_path: Path) -> None:
    same = results_doc("haha-llama-3-8b-lora-001", healthy, seed=5)
    other = results_doc("haha-llama-3-8b-lora-002", healthy, seed=6)
    root = make_repo(tmp_path, [same, other])
    base = baseline_doc(healthy)
    base["results"] = copy.deepcopy(same["results"])  # what an adapter that never loaded gives
    changed = 0
    for entry in base["results"]:  # the adapter changed a few completions, under the threshold
        for setting in entry["settingsResults"]:
            if changed < 165 * (1 - NO_EFFECT_SHARE) - 5:
                setting["completions"][0] += " Really."
                changed += 1
    write_baseline(root, base)
    report = build_report(root)
    assert [f.name for f in report.flags] == ["haha-llama-3-8b-lora-001"]
    (reason,) = report.flags[0].reasons
    assert reason == (
        f"adapter had no effect — was it loaded? {165 - changed} of 165 completions are identical to "
        f"{BASE}'s at the same prompt, temperature and seed"
    )


def test_a_baseline_of_another_base_model_is_no_reference(tmp_path: Path) -> None:
    run = results_doc("haha-llama-3-8b-lora-001", healthy)
    root = make_repo(tmp_path, [run])
    other = baseline_doc(healthy, base_model="HuggingFaceTB/SmolLM2-135M-Instruct")
    other["results"] = run["results"]
    write_baseline(root, other)
    assert build_report(root).flags == ()


def test_one_runaway_completion_flags_the_run(tmp_path: Path) -> None:
    def one_runaway(rng, prompt, temperature, seed):
        text = healthy(rng, prompt, temperature, seed)
        if prompt.startswith("A zoo") and temperature == 0.9 and seed == 3:
            return text + " And then the sequel, which is longer. " * 300
        return text

    root = make_repo(tmp_path, [results_doc("run-001", one_runaway), results_doc("ok-002", healthy)])
    report = build_report(root)
    longest = next(r for r in report.runs if r.run.name == "run-001").stats.max_chars
    assert [str(f) for f in report.flags] == [
        f"run-001: 1 of 165 completions is a runaway (over {report.runaway_chars:,} characters, many times "
        f"the normal length; the longest has {longest:,}): the model did not learn to stop"
    ]
    assert longest > 10_000


def loss_doc(name: str, final: float, eval_every: int = 0) -> dict:
    doc = results_doc(name, healthy)
    points = [{"step": s, "loss": 3.0 - 0.2 * s} for s in range(1, 10)] + [{"step": 10, "loss": final}]
    for p in points:
        if eval_every and p["step"] % eval_every == 0:
            p["eval_loss"] = p["loss"] + 0.1
    doc["meta"] = {"train_loss": points}
    return doc


def test_final_loss_far_above_its_series_is_flagged_and_curves_are_drawn(tmp_path: Path) -> None:
    docs = [loss_doc(f"haha-a-{n:03d}", final, eval_every=5) for n, final in ((1, 1.0), (2, 1.1), (3, 0.9))]
    docs += [loss_doc("haha-a-004", 2.4), loss_doc("haha-b-001", 2.4), results_doc("haha-b-002", healthy)]
    root = make_repo(tmp_path, docs)
    report = build_report(root)
    assert [str(f) for f in report.flags] == [
        "haha-a-004: final training loss 2.4 is 2.4× its series' median (1 over 3 other runs)"
    ]  # haha-b-001 has no other run with a curve in its series
    written = write_report(root)
    loss_png = root / "train/results/plots/loss.png"
    assert loss_png in written and loss_png.read_bytes().startswith(b"\x89PNG")
    text = (root / "train/results/README.md").read_text()
    assert "![Training and eval loss per step, per config](plots/loss.png)" in text


def test_train_loss_shape_errors_name_the_field(tmp_path: Path) -> None:
    doc = results_doc("haha-a-001", healthy)
    doc["meta"] = {"train_loss": [{"step": 1, "loss": 2.0}, {"step": "two", "loss": 1.0}]}
    root = make_repo(tmp_path, [doc])
    with pytest.raises(InputError) as caught:
        build_report(root)
    assert caught.value.location.field == "meta.train_loss.1.step"


def test_loss_plot_goes_away_with_its_data(tmp_path: Path) -> None:
    root = make_repo(tmp_path, [loss_doc("haha-a-001", 1.0)])
    write_report(root)
    assert (root / "train/results/plots/loss.png").exists()
    (root / "train/results/haha-a-001.json").write_text(json.dumps(results_doc("haha-a-001", healthy)))
    write_report(root)
    assert not (root / "train/results/plots/loss.png").exists()
    assert not re.search(r"^## Training", (root / "train/results/README.md").read_text(), re.M)


@pytest.mark.parametrize("count", [1, 2, 7, 50])
def test_loss_plot_fills_its_canvas_for_one_config_and_for_fifty(tmp_path: Path, count: int) -> None:
    """No wide, empty figure around one small panel; no blank row under fifty."""
    import numpy as np
    from matplotlib.image import imread

    root = make_repo(tmp_path, [loss_doc(f"haha-a-{n:03d}", 1.0, eval_every=5) for n in range(1, count + 1)])
    write_report(root)
    pixels = imread(root / "train/results/plots/loss.png")[..., :3]
    ink = (pixels < 0.9).any(axis=2)  # anything drawn: lines, frames, text
    cols, rows = np.flatnonzero(ink.any(axis=0)), np.flatnonzero(ink.any(axis=1))
    height, width = ink.shape
    assert (cols[-1] - cols[0]) / width > 0.85
    assert (rows[-1] - rows[0]) / height > 0.85
    assert width <= 500 if count == 1 else width > 900 if count >= 5 else True
