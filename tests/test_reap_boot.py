"""The boot timeout: a pod whose run never reported a start (its image never pulled) is reaped.

The decision as a pure function, and `haha launch` then `haha reap` as processes against the strict
RunPod fake, whose private image never pulls without registry credentials.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.github_api import GitHubFake
from fakes.runpod_graphql import RunPodFake
from haha.compute.base import Pod
from haha.podname import PodName
from haha.reap import BootTimeout, decide
from haha.runstatus import RunStatus
from haha.settings import load_settings
from haha.store import get_store
from test_runpod_launch import ENV, NEW, git, haha, root, set_compute

pytest_plugins = ["fakes.fixtures"]
__all__ = ["root"]  # the fixture, shared with the launch tests

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BOOT = BootTimeout(minutes=30, deadline_hours=6)


def launched(basename: str, minutes_ago: float, pod_id: str) -> Pod:
    """A pod as launch names it: deadline = launch + deadline_hours + a minute."""
    deadline = NOW - timedelta(minutes=minutes_ago) + timedelta(hours=6, minutes=1)
    return Pod(pod_id, str(PodName.make(basename, "1234567", deadline)))


def test_a_pod_whose_run_never_reported_a_start_is_reaped_after_the_boot_timeout() -> None:
    silent, young = launched("a-001", 31, "p1"), launched("b-001", 29, "p2")
    started, earlier_run = launched("c-001", 60, "p3"), launched("d-001", 60, "p4")
    unreadable = launched("e-001", 60, "p5")
    statuses = {
        "a-001": None,
        "b-001": None,
        "c-001": RunStatus("running", pod_id="p3"),
        "d-001": RunStatus("failed", pod_id="p0"),  # the run before this pod's: not its start
    }
    reaps = decide([silent, young, started, earlier_run, unreadable], NOW, statuses, BOOT)

    assert sorted(r.pod.id for r in reaps) == ["p1", "p4"]
    assert all(r.reason.startswith("never started: image pull or boot failed within 30 min") for r in reaps)
    assert decide([silent], NOW) == []  # no statuses read: only deadlines count


def test_a_pod_still_up_ten_minutes_after_its_run_ended_is_reaped_and_its_end_kept() -> None:
    """Its own teardown failed (a cluster has no in-pod fallback): it would bill to its deadline."""

    def ended(pod: Pod, minutes_ago: float, state: str = "succeeded") -> RunStatus:
        finished = (NOW - timedelta(minutes=minutes_ago)).isoformat()
        return RunStatus(state, pod_id=pod.id, pod_name=pod.name, finished_at=finished)  # type: ignore[arg-type]

    lingering, just_done = launched("a-001", 90, "p1"), launched("b-001", 90, "p2")
    still_running, other_pods = launched("c-001", 90, "p3"), launched("d-001", 90, "p4")
    failed = launched("f-001", 90, "p6")
    statuses = {
        "a-001": ended(lingering, 11),
        "b-001": ended(just_done, 9),  # its teardown may still be under way
        "c-001": RunStatus("running", pod_id="p3"),
        "d-001": RunStatus("succeeded", pod_id="p0", finished_at=(NOW - timedelta(hours=1)).isoformat()),
        "f-001": ended(failed, 30, "failed"),
    }
    reaps = decide([lingering, just_done, still_running, other_pods, failed], NOW, statuses, BOOT)
    assert sorted((r.pod.id, r.outlived) for r in reaps) == [("p1", True), ("p4", False), ("p6", True)]
    # p4: a status of an earlier run names another pod, so p4 never reported a start: boot-reaped.
    assert "was still up" in next(r for r in reaps if r.pod.id == "p1").reason


def test_haha_reap_ends_a_pod_whose_private_image_never_pulls_and_says_why(
    root: Path, runpod_api: RunPodFake, github_api: tuple[GitHubFake, str]
) -> None:
    github, url = github_api
    set_compute(root, boot_timeout_minutes=0.01)
    github.merges[git(root, "rev-parse", "HEAD").strip()] = 7
    env = {**ENV, "RUNPOD_API_KEY": runpod_api.api_key, "GITHUB_TOKEN": github.token, "GITHUB_API_URL": url}
    done = haha(root, "launch", env=env)
    assert done.returncode == 0, done.stderr
    (pod_id,) = runpod_api.pods
    assert runpod_api.pulling == {pod_id}  # no registry credentials: created, billed, never started

    time.sleep(1.0)  # past the 0.6 s boot timeout
    done = haha(root, "reap", env=env)

    assert done.returncode == 0, done.stderr
    assert [c["podId"] for c in runpod_api.calls("podTerminate")] == [pod_id]
    assert runpod_api.pods == {}
    (reaped,) = json.loads(done.stdout)
    assert (reaped["config"], reaped["marked_failed"]) == (NEW, True)
    status = get_store(load_settings(root, {}), root).fetch_status(NEW)
    assert status["state"] == "failed" and status["pod_id"] == pod_id and status["pr"] == 7
    assert status["reason"].startswith("never started: image pull or boot failed within 0.01 min")
    (comment,) = [c for c in github.comments.values() if c["issue_number"] == 7]
    assert "never started" in comment["body"]
    (issue,) = github.issues.values()
    assert NEW in issue["title"] and "never started" in issue["title"]
