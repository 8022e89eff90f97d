"""`haha new`: the next config of a series from its latest, run as the `haha` process users run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from check_helpers import SMOL, make_repo

HAHA = Path(sys.executable).parent / "haha"
SERIES = "haha-smollm2-135m-lora"


def haha_new(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HAHA), "new", SERIES, "--repo", str(root), *args], capture_output=True, text=True, timeout=300
    )


def snapshot(root: Path) -> dict[str, bytes]:
    files = sorted((root / "train").rglob("*"))
    return {str(p.relative_to(root)): p.read_bytes() for p in files if p.is_file()}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def test_set_and_sweep_write_consecutive_configs_that_keep_comments(repo: Path) -> None:
    source = (repo / SMOL).read_text()
    done = haha_new(repo, "--set", "learning_rate=1e-5", "--sweep", "lora_r=8,32")
    assert done.returncode == 0, done.stderr
    written = sorted((repo / "train/config").glob(f"{SERIES}-*.yml"))
    assert [p.name for p in written] == [f"{SERIES}-001.yml", f"{SERIES}-002.yml", f"{SERIES}-003.yml"]
    for path, rank in zip(written[1:], (8, 32), strict=True):
        text = path.read_text()
        config = yaml.safe_load(text)  # PyYAML: what Axolotl and the gate read
        assert config["lora_r"] == rank
        assert config["learning_rate"] == pytest.approx(1e-5)  # a float, not the string "1e-05"
        # Everything else as the source wrote it, comments and blank lines included.
        assert len(text.splitlines()) == len(source.splitlines())
        pairs = zip(source.splitlines(), text.splitlines(), strict=True)
        assert sum(a != b for a, b in pairs) == 2
        assert source.splitlines()[0].startswith("#") and text.splitlines()[0] == source.splitlines()[0]
    assert f"+++ train/config/{SERIES}-002.yml" in done.stdout  # the diff is shown
    assert f"{SERIES}-003" in done.stdout  # and the prediction table names each new config


def test_the_number_after_results_of_removed_configs(repo: Path) -> None:
    (repo / f"train/results/{SERIES}-002.json").write_text("{}")  # trained, then its config removed
    assert haha_new(repo, "--set", "lora_r=8").returncode == 0
    assert (repo / f"train/config/{SERIES}-003.yml").is_file()
    assert not (repo / f"train/config/{SERIES}-002.yml").exists()


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--set", "lora_rr=8"], 2, "did you mean lora_r"),  # a typo Axolotl would silently ignore
        (["--set", "micro_batch_size=fast"], 1, "[micro_batch_size]"),  # the gate's own error
        (["--set", "datasets.3.path=/workspace/data/x.jsonl"], 2, "datasets.3"),
        (["--set", "lora_r=[1"], 2, "not a YAML value"),
        (["--sweep", "lora_r=8"], 2, "one value only"),
        (["--set", "no-equals-sign"], 2, "KEY=VALUE"),
    ],
)
def test_bad_changes_are_refused_before_anything_is_written(
    repo: Path, args: list[str], code: int, says: str
) -> None:
    before = snapshot(repo)
    done = haha_new(repo, *args)
    assert done.returncode == code, done.stdout + done.stderr
    assert says in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(repo) == before


def test_unknown_series_names_the_known_ones(repo: Path) -> None:
    done = subprocess.run([str(HAHA), "new", "nope", "--repo", str(repo)], capture_output=True, text=True)
    assert done.returncode == 2
    assert SERIES in done.stderr


def test_dry_run_writes_nothing(repo: Path) -> None:
    before = snapshot(repo)
    done = haha_new(repo, "--set", "lora_r=8", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "+lora_r: 8" in done.stdout
    assert snapshot(repo) == before
