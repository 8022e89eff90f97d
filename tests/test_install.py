"""The package installed as the Actions jobs and the pod image install it: not editable, into a fresh
venv holding only the pinned gate set (requirements/gate.txt, by tools/install-env.sh, the script the
image runs). `haha check` then runs on a copy of this repo from outside it, so nothing can come from
the checkout: schemas and boot.sh must be the wheel's package data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv*", ".haha", "__pycache__", "*.egg-info", "build", "wandb")

pytestmark = pytest.mark.slow  # installs ~120 packages (seconds from uv's cache, a minute without)


@pytest.fixture(scope="module")
def gate_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("install") / "venv"
    subprocess.run([str(ROOT / "tools" / "install-env.sh"), str(venv), "gate"], check=True, timeout=900)
    return venv


def haha(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(
        [str(venv / "bin" / "haha"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def repo_copy(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=SKIP, symlinks=True)
    return dest


def test_installed_package_is_a_wheel_with_its_data(gate_venv: Path, tmp_path: Path) -> None:
    code = (
        "import haha, haha.schemas as s, importlib.resources as r; "
        "print(haha.__file__); print(s.SCHEMA_DIR.is_symlink()); "
        "print(sorted(p.name for p in s.SCHEMA_DIR.iterdir())); "
        "print(r.files('haha').joinpath('boot.sh').is_file())"
    )
    done = subprocess.run(
        [str(gate_venv / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    where, linked, names, boot = done.stdout.splitlines()
    assert Path(where).is_relative_to(gate_venv), where
    assert linked == "False"  # copies in the wheel, not the checkout's link
    assert "axolotl-config.schema.json" in names and "results.schema.json" in names
    assert boot == "True"


def test_check_passes_on_the_repo_and_fails_on_a_broken_config(gate_venv: Path, tmp_path: Path) -> None:
    repo = repo_copy(tmp_path / "repo")
    ok = haha(gate_venv, "check", "--repo", str(repo), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    config = repo / "train" / "config" / "haha-smollm2-135m-lora-001.yml"
    config.write_text(
        config.read_text().replace("base_model:", "base_model_typo:", 1) + "learning_rate: fast\n"
    )
    bad = haha(gate_venv, "check", "--repo", str(repo), cwd=tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "haha-smollm2-135m-lora-001.yml" in bad.stdout + bad.stderr
