"""reap.yml on its schedule: pods past the deadline in their name, or whose run never reported a start
within the boot timeout, end, and a person hears of it."""

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
    # Launched 40 minutes ago and its run never reported a start: its image never pulled.
    silent = lp.runpod.add_pod(
        str(PodName.make("haha-smollm2-135m-lora-004", sha, now + timedelta(hours=6, minutes=-39)))
    )
    lp.checkout("main")

    run = lp.act("schedule", "reap.yml", lp.schedule_event("*/30 * * * *"))
    assert run.rc == 0, run.output[-5000:]
    assert sorted(c["podId"] for c in lp.runpod.calls("podTerminate")) == sorted([overdue, silent])
    assert set(lp.runpod.pods) == {within, stranger}
    issues = sorted(lp.github.issues.values(), key=lambda i: "never started" in i["title"])
    deadline_issue, boot_issue = issues
    assert "haha-smollm2-135m-lora-002" in deadline_issue["title"] + deadline_issue["body"]
    assert deadline_issue["user"]["login"] == "github-actions[bot]"
    assert "haha-smollm2-135m-lora-004" in boot_issue["title"] and "never started" in boot_issue["title"]
    assert "image pull or boot failed within 30 min" in boot_issue["body"]
    listings = lp.runpod.queries("myself")
    assert listings and all(not any(p.endswith(".env") for p in q["selected"]) for q in listings)

    # The next run finds nothing overdue: no second terminate, no second issue.
    again = lp.act("schedule", "reap.yml", lp.schedule_event("*/30 * * * *"))
    assert again.rc == 0, again.output[-5000:]
    assert len(lp.runpod.calls("podTerminate")) == 2
    assert len(lp.github.issues) == 2
