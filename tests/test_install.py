"""tools/install-env.sh and tools/lock.sh, as `make install`, `make lock`, the Actions jobs and the pod
image run them.

Where torch's CPU build comes from: the scripts run with a stand-in for uv (HAHA_UV) that records its
arguments, so the choice of source is seen without PyTorch's index, which these machines cannot reach.
Then the package installed for real as the Actions jobs and the pod image install it: not editable,
into a fresh venv holding only the pinned gate set. `haha check` then runs on a copy of this repo from
outside it, so nothing can come from the checkout: schemas and boot.sh must be the wheel's package data.
"""

from __future__ import annotations

import filecmp
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv*", ".haha", "__pycache__", "*.egg-info", "build", "wandb")

PYTORCH_CPU = "--find-links=https://download.pytorch.org/whl/cpu/torch/"  # PyTorch's page of torch files
CPU_SETS = ("train-cpu", "eval-cpu")
OTHER_SETS = ("gate", "train-cuda", "eval-cuda")
# The stand-in for uv: one JSON line per call, with its arguments.
RECORDING_UV = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["UV_CALLS"], "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def run_script(
    tmp: Path, args: list[str], pip_config: bool = False, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """A tools/ script with the recording uv, `env`, and pip's configuration files (or none at all)."""
    uv = tmp / "uv"
    uv.write_text(RECORDING_UV)
    uv.chmod(0o755)
    calls = tmp / "calls.jsonl"
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp / "home"),
        "LANG": "C.UTF-8",
        "HAHA_UV": str(uv),
        "UV_CALLS": str(calls),
    }
    if not pip_config:
        base["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no configuration file at all
    done = subprocess.run(args, env=base | env, cwd=tmp, capture_output=True, text=True, timeout=60)
    lines = calls.read_text().splitlines() if calls.exists() else []
    return done, [json.loads(line) for line in lines]


def install(
    tmp: Path, env_set: str, pip_config: bool = False, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """tools/install-env.sh into a venv that exists already (so no real venv is made); uv's sync call."""
    venv = tmp / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")
    (venv / "bin" / "python").chmod(0o755)
    script = [str(ROOT / "tools" / "install-env.sh"), str(venv), env_set]
    done, calls = run_script(tmp, script, pip_config, **env)
    sync = [c for c in calls if c[:2] == ["pip", "sync"]]
    return done, sync[0] if sync else []


def sources(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("--find-links")]


@pytest.mark.parametrize("env_set", CPU_SETS)
def test_a_machine_without_pip_configuration_gets_torch_from_pytorchs_cpu_index(
    tmp_path: Path, env_set: str
) -> None:
    done, sync = install(tmp_path, env_set)
    assert done.returncode == 0, done.stderr
    assert sources(sync) == [PYTORCH_CPU]
    assert sync[-1] == str(ROOT / "requirements" / f"{env_set}.txt")


@pytest.mark.parametrize("env_set", CPU_SETS)
def test_pips_find_links_win_over_pytorchs_index(tmp_path: Path, env_set: str) -> None:
    done, sync = install(tmp_path, env_set, PIP_FIND_LINKS="/opt/wheels /srv/more")
    assert done.returncode == 0, done.stderr
    assert sources(sync) == ["--find-links=/opt/wheels", "--find-links=/srv/more"]

    # As our machines have it: find-links in the user's pip.conf (HOME is the test's own).
    config = tmp_path / "configured" / "home" / ".config" / "pip" / "pip.conf"
    config.parent.mkdir(parents=True)
    config.write_text("[global]\nfind-links = /opt/wheels\n")
    done, sync = install(tmp_path / "configured", env_set, pip_config=True)
    assert done.returncode == 0, done.stderr
    assert sources(sync) == ["--find-links=/opt/wheels"]


@pytest.mark.parametrize("env_set", OTHER_SETS)
def test_the_other_sets_come_from_pypi_alone(tmp_path: Path, env_set: str) -> None:
    done, sync = install(tmp_path, env_set)
    assert done.returncode == 0, done.stderr
    assert sync and sources(sync) == []


@pytest.mark.parametrize(
    ("env", "cpu_sources"),
    [({}, [PYTORCH_CPU]), ({"PIP_FIND_LINKS": "/opt/wheels"}, ["--find-links=/opt/wheels"])],
)
def test_lock_resolves_the_cpu_sets_with_the_same_torch_source(
    tmp_path: Path, env: dict[str, str], cpu_sources: list[str]
) -> None:
    out = tmp_path / "sets"
    done, calls = run_script(tmp_path, [str(ROOT / "tools" / "lock.sh"), str(out)], **env)
    assert done.returncode == 0, done.stderr
    compiled = {Path(c[c.index("--output-file") + 1]).stem: c for c in calls if c[:2] == ["pip", "compile"]}
    assert sorted(compiled) == sorted(CPU_SETS + OTHER_SETS)
    for name, argv in compiled.items():
        assert sources(argv) == (cpu_sources if name in CPU_SETS else []), name


def local_cpu_torch() -> Path | None:
    """The pinned torch CPU wheel where this machine's pip finds it (our machines: /opt/wheels)."""
    pin = (ROOT / "requirements" / "cpu.txt").read_text().split("torch==", 1)[1].split()[0]
    links = os.environ.get("PIP_FIND_LINKS", "") + " /opt/wheels"
    for folder in map(Path, links.split()):
        found = sorted(folder.glob(f"torch-{pin}-cp311-*linux*x86_64.whl")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


@pytest.mark.slow  # resolves every set from the registry's metadata (~20 s)
def test_lock_takes_only_torch_from_a_page_laid_out_as_pytorchs(tmp_path: Path) -> None:
    """Real uv and tools/lock.sh against PyTorch's layout, served here: /whl/cpu/torch/ lists torch's
    files with links relative to the host's root (as download.pytorch.org does). The sets come out as
    committed, and the only requests the page's server saw were for torch."""
    wheel = local_cpu_torch()
    if wheel is None:
        pytest.skip("no local torch CPU wheel to serve")
    served = tmp_path / "www" / "whl" / "cpu"
    (served / "torch").mkdir(parents=True)
    shutil.copy(wheel, served / wheel.name)
    quoted = wheel.name.replace("+", "%2B")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (served / "torch" / "index.html").write_text(
        "<!DOCTYPE html>\n<html><body><h1>Links for torch</h1>\n"
        f'<a href="/whl/cpu/{quoted}#sha256={digest}" data-requires-python="&gt;=3.10">'
        f"{wheel.name}</a><br/>\n"
        "</body></html>\n"
    )
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=tmp_path / "www"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = f"http://127.0.0.1:{server.server_port}/whl/cpu/torch/"
        env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"} | {"PIP_FIND_LINKS": page}
        out = tmp_path / "sets"
        done = subprocess.run(
            [str(ROOT / "tools" / "lock.sh"), str(out)], env=env, capture_output=True, text=True, timeout=600
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    for name in CPU_SETS + OTHER_SETS:
        assert filecmp.cmp(out / f"{name}.txt", ROOT / "requirements" / f"{name}.txt", shallow=False), name
    assert requests and {r.split("#")[0] for r in requests} == {"/whl/cpu/torch/", f"/whl/cpu/{quoted}"}


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


@pytest.mark.slow  # installs ~120 packages (seconds from uv's cache, a minute without)
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


@pytest.mark.slow
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
