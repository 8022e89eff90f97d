"""Pytest fixtures for the loopback fakes. Import them into a test module (or a conftest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.github_api import GitHubFake
from fakes.hf_hub import HubFake
from fakes.runpod_graphql import RunPodFake
from fakes.server import serve


@pytest.fixture
def runpod_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunPodFake]:
    """A RunPod GraphQL fake; the SDK reaches it through RUNPOD_API_BASE_URL."""
    with serve(RunPodFake()) as (fake, url):
        monkeypatch.setenv("RUNPOD_API_BASE_URL", url)
        yield fake


@pytest.fixture
def hub_api() -> Iterator[tuple[HubFake, str]]:
    """A HF Hub fake and its endpoint URL."""
    with serve(HubFake()) as served:
        yield served


@pytest.fixture
def github_api() -> Iterator[tuple[GitHubFake, str]]:
    """A GitHub REST fake and its API URL."""
    with serve(GitHubFake()) as served:
        yield served
