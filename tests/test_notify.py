"""GitHub calls through `requests` against the loopback REST fake."""

from __future__ import annotations

import pytest
import requests
from fakes.github_api import GitHubFake
from haha import notify
from haha.errors import InputError, ServiceError
from haha.settings import Settings

pytest_plugins = ["fakes.fixtures"]

TOKEN = "ghs_test_token"
MARKER = "<!-- haha:plan -->"


def gh_settings(url: str, token: str | None = TOKEN) -> Settings:
    return Settings.model_validate(
        {"github_token": token, "github_api_url": url, "github_repo": "synagi/haha"}
    )


def test_dispatch_run_finished_sends_event_and_payload(github_api: tuple[GitHubFake, str]) -> None:
    fake, url = github_api
    notify.dispatch_run_finished(
        gh_settings(url), "haha-llama-3-8b-lora-001", {"state": "succeeded", "pr": 7}
    )

    assert fake.dispatches == [
        {
            "event_type": "haha-run-finished",
            "client_payload": {"basename": "haha-llama-3-8b-lora-001", "state": "succeeded", "pr": 7},
        }
    ]
    request = fake.requests[0]
    assert request.header("authorization") == f"Bearer {TOKEN}"
    assert request.header("accept") == "application/vnd.github+json"
    assert request.header("x-github-api-version") == "2022-11-28"


def test_dispatch_rejected_payload_reports_githubs_message(github_api: tuple[GitHubFake, str]) -> None:
    _, url = github_api
    payload = {f"k{i}": i for i in range(10)}  # + basename = 11 top-level keys, over GitHub's limit
    with pytest.raises(ServiceError, match=r"(?s)422 Invalid request.*No more than 10 properties"):
        notify.dispatch_run_finished(gh_settings(url), "haha-x-001", payload)


def test_upsert_comment_posts_then_edits_in_place(github_api: tuple[GitHubFake, str]) -> None:
    fake, url = github_api
    settings = gh_settings(url)
    first = notify.upsert_comment(settings, 12, MARKER, f"{MARKER}\nplan v1")
    second = notify.upsert_comment(settings, 12, MARKER, f"{MARKER}\nplan v2")

    assert first == second
    ours = [c for c in fake.comments.values() if MARKER in c["body"]]
    assert [c["body"] for c in ours] == [f"{MARKER}\nplan v2"]
    assert [r.method for r in fake.requests if r.method != "GET"] == ["POST", "PATCH"]


def test_upsert_comment_finds_the_marker_on_a_later_page(github_api: tuple[GitHubFake, str]) -> None:
    fake, url = github_api
    for i in range(130):
        fake.add_comment(12, f"chatter {i}")
    sticky = fake.add_comment(12, f"old plan {MARKER}")
    fake.add_comment(13, f"{MARKER} on another PR")

    notify.upsert_comment(gh_settings(url), 12, MARKER, "new plan")  # marker added when missing

    assert fake.comments[sticky["id"]]["body"] == f"{MARKER}\nnew plan"
    assert len(fake.comments) == 132
    gets = [r for r in fake.requests if r.method == "GET"]
    assert [r.query.get("page", ["1"])[0] for r in gets] == ["1", "2"]


def test_open_issue_reuses_an_open_issue_with_the_same_title(github_api: tuple[GitHubFake, str]) -> None:
    fake, url = github_api
    existing = fake.add_issue("Run haha-x-001 failed", labels=("haha-failure",))
    fake.add_issue("Run haha-y-002 failed", labels=("haha-failure",), pull_request=True)

    again = notify.open_issue(gh_settings(url), "Run haha-x-001 failed", "details", ["haha-failure"])
    new = notify.open_issue(gh_settings(url), "Run haha-y-002 failed", "details", ["haha-failure"])

    assert again == existing["html_url"]
    assert new != again
    created = fake.issues[3]
    assert (created["title"], created["body"], created["labels"]) == (
        "Run haha-y-002 failed",
        "details",
        [{"name": "haha-failure"}],
    )
    assert [r.method for r in fake.requests] == ["GET", "GET", "POST"]


def test_errors_carry_status_and_message_but_never_the_token(github_api: tuple[GitHubFake, str]) -> None:
    _, url = github_api
    with pytest.raises(ServiceError, match="401 Bad credentials") as info:
        notify.upsert_comment(gh_settings(url, token="ghs_wrong_token"), 1, MARKER, "x")
    assert "ghs_wrong_token" not in str(info.value)


def test_unreachable_api_is_a_service_error() -> None:
    with pytest.raises(ServiceError, match="GitHub POST"):
        notify.dispatch_run_finished(gh_settings("http://127.0.0.1:9"), "haha-x-001", {})


def test_missing_token_says_which_secret() -> None:
    with pytest.raises(InputError, match="GITHUB_TOKEN"):
        notify.dispatch_run_finished(gh_settings("http://127.0.0.1:9", token=None), "haha-x-001", {})


def test_a_token_without_the_permission_gets_githubs_403(github_api: tuple[GitHubFake, str]) -> None:
    """A job that may write pull requests may comment but not dispatch (that needs contents: write)."""
    fake, url = github_api
    fake.permissions = {"pull-requests": "write"}
    notify.upsert_comment(gh_settings(url), 3, MARKER, "x")
    with pytest.raises(ServiceError, match="403 Resource not accessible by integration"):
        notify.dispatch_run_finished(gh_settings(url), "haha-x-001", {})
    assert fake.dispatches == []

    fake.permissions = {"contents": "write"}
    notify.dispatch_run_finished(gh_settings(url), "haha-x-001", {})
    assert len(fake.dispatches) == 1


def test_requests_outside_githubs_description_are_refused(github_api: tuple[GitHubFake, str]) -> None:
    """Unknown method on a known path: 404; a body without a required field: 422, as GitHub answers."""
    fake, url = github_api
    auth = {"Authorization": f"Bearer {TOKEN}"}
    repo = f"{url}/repos/synagi/haha"
    assert requests.post(f"{repo}/commits/{'a' * 40}/pulls", headers=auth, timeout=10).status_code == 404
    missing = requests.post(f"{repo}/issues/3/comments", json={"text": "hi"}, headers=auth, timeout=10)
    assert missing.status_code == 422
    assert missing.json()["message"] == "Invalid request.\n\nbody wasn't supplied."
    assert requests.post(f"{repo}/issues", json={"body": "x"}, headers=auth, timeout=10).status_code == 422
    assert fake.comments == {} and fake.issues == {}
