"""The base model without an adapter, evaluated for real on CPU: file, format, once per eval.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from haha.baseline import base_models, baseline_path, make_baseline
from haha.repo import Repo
from haha.schemas import validate
from haha.settings import load_settings
from run_fixtures import make_tiny_repo

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.slow
def test_baseline_is_a_results_file_made_once_per_eval_spec(tmp_path: Path) -> None:
    rows = make_tiny_repo(tmp_path)
    repo = Repo(tmp_path)
    env = {"HF_HUB_OFFLINE": "1", "HAHA_WORKDIR": str(tmp_path / "work")}
    settings = load_settings(tmp_path, env)
    assert list(base_models(repo)) == [SMOL]
    log: list[str] = []

    path = make_baseline(repo, settings, SMOL, log.append, engine="transformers")
    assert (
        path
        == baseline_path(repo, SMOL)
        == tmp_path / "train/results/baseline/HuggingFaceTB--SmolLM2-135M-Instruct.json"
    )
    document = json.loads(path.read_text())
    validate("results", document, file=path)
    assert document["config"]["name"] == f"baseline:{SMOL}"
    assert document["meta"]["baseline"] is True and document["meta"]["engine"] == "transformers"
    assert [r["prompt"] for r in document["results"]] == [r["instruction"] for r in rows]

    written = path.stat().st_mtime_ns
    make_baseline(repo, settings, SMOL, log.append, engine="transformers")
    assert path.stat().st_mtime_ns == written  # same eval.json and engine: kept
    assert any("is current" in line for line in log)


def test_collect_brings_the_baseline_a_pod_published(tmp_path: Path) -> None:
    from check_helpers import make_repo
    from haha.collect import collect
    from haha.store import RunArtifacts
    from haha.store.local import LocalStore
    from pod_results import write_fake_results

    root = make_repo(tmp_path)
    repo = Repo(root)
    name = "haha-smollm2-135m-lora-001"
    results = write_fake_results(root, name)
    document = json.loads(results.read_text())
    document["config"] = {"name": f"baseline:{SMOL}", "default_system_message": "s", "base_model": SMOL}
    document["meta"] |= {"baseline": True, "base_model": SMOL}
    made = tmp_path / "baseline.json"
    made.write_text(json.dumps(document))
    store = LocalStore(tmp_path / "store")
    store.publish(RunArtifacts(name, results_file=results, baseline_file=made))
    results.unlink()

    (collected,) = collect(repo, store, [name], print, report=False)
    target = baseline_path(repo, SMOL)
    assert collected.files == (f"train/results/{name}.json", repo.rel(target))
    assert json.loads(target.read_text())["config"]["name"] == f"baseline:{SMOL}"
    results.unlink()
    (again,) = collect(repo, store, [name], print, report=False)
    assert again.files == (f"train/results/{name}.json",)  # the baseline is current: kept as it is
