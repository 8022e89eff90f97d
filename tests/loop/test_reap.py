"""reap.yml on its schedule: pods past the deadline in their name end, and a person hears of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from haha.podname import PodName

from loop.harness import Loop


def test_overdue_pod_is_terminated_and_reported_once(make_loop) -> None:
    lp: Loop = make_loop()
    now = datetime.now(UTC)
    sha = lp.github.rev("refs/heads/main")
    overdue = lp.runpod.add_pod(
        str(PodName.make("haha-smollm2-135m-lora-002", sha, now - timedelta(hours=1)))
    )
    within = lp.runpod.add_pod(str(PodName.make("haha-smollm2-135m-lora-003", sha, now + timedelta(hours=6))))
    stranger = lp.runpod.add_pod("someone-elses-notebook")
    lp.checkout("main")

    run = lp.act("schedule", "reap.yml", lp.schedule_event("*/30 * * * *"))
    assert run.rc == 0, run.output[-5000:]
    assert [c["podId"] for c in lp.runpod.calls("podTerminate")] == [overdue]
    assert set(lp.runpod.pods) == {within, stranger}
    (issue,) = lp.github.issues.values()
    assert "haha-smollm2-135m-lora-002" in issue["title"] + issue["body"]
    assert issue["user"]["login"] == "github-actions[bot]"
    listings = lp.runpod.queries("myself")
    assert listings and all(not any(p.endswith(".env") for p in q["selected"]) for q in listings)

    # The next run finds nothing overdue: no second terminate, no second issue.
    again = lp.act("schedule", "reap.yml", lp.schedule_event("*/30 * * * *"))
    assert again.rc == 0, again.output[-5000:]
    assert len(lp.runpod.calls("podTerminate")) == 1
    assert len(lp.github.issues) == 1
