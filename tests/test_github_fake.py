"""The strict GitHub fake's own rules (a fake is a specification): tokens carry their job's
permissions, resolved from `permissions:` as GitHub documents, and what a workflow's GITHUB_TOKEN
creates starts no workflow. The workflows themselves run against it in tests/loop."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fakes.github_git import CA, GitHubGitFake, GitHubServer
from fakes.github_rest import RESTRICTED_DEFAULT, Grant, job_permissions
from loop.harness import ROOT, refuse_untriggered, workflow_permissions

WORKFLOW, APP, USER = "ghs_workflow_token", "ghs_app_token", "ghp_octocat"


def test_job_permissions_resolve_as_github_documents() -> None:
    workflow = {
        "permissions": {"contents": "read", "issues": "write"},
        "jobs": {
            "inherits": {},
            "overrides": {"permissions": {"pull-requests": "write"}},
            "none": {"permissions": {}},
            "all": {"permissions": "read-all"},
        },
    }
    jobs = job_permissions(workflow)
    assert jobs["inherits"] == {"contents": "read", "issues": "write"}
    assert jobs["overrides"] == {"pull-requests": "write"}  # unspecified scopes: no access
    assert jobs["none"] == {}
    assert jobs["all"]["contents"] == "read" and jobs["all"]["pull-requests"] == "read"
    assert job_permissions({"jobs": {"plain": {}}}) == {"plain": RESTRICTED_DEFAULT}
    with pytest.raises(ValueError):
        job_permissions({"jobs": {"bad": {"permissions": {"pull_requests": "write"}}}})


def test_the_repos_workflows_grant_what_their_jobs_call() -> None:
    pr = workflow_permissions(ROOT / ".github" / "workflows" / "pr.yml")
    assert pr == {"check": {"contents": "read"}, "comment": {"pull-requests": "write"}}
    launch = workflow_permissions(ROOT / ".github" / "workflows" / "launch.yml")
    # plan comments on a run the monthly spend limit holds (haha plan --comment)
    assert launch["plan"] == {"contents": "read", "pull-requests": "write"}
    assert launch["launch"] == {"contents": "read", "pull-requests": "write"}


@pytest.fixture
def github(tmp_path: Path) -> Iterator[tuple[GitHubGitFake, str, str]]:
    """The HTTPS fake over a repo with `main` and `topic`; (fake, its repo API URL, the CA bundle)."""
    src = tmp_path / "src"
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(src)], check=True)
    subprocess.run(
        ["git", *identity, "-C", str(src), "commit", "-q", "--allow-empty", "-m", "base"], check=True
    )
    subprocess.run(["git", "-C", str(src), "branch", "topic"], check=True)
    ca = CA(tmp_path / "ca")
    fake = GitHubGitFake(
        repo="synagi/haha",
        git_root=tmp_path / "github",
        tokens={WORKFLOW: "github-actions[bot]", APP: "haha-bot[bot]", USER: "octocat"},
        grants={WORKFLOW: Grant("workflow"), APP: Grant("app", {"pull-requests": "write"})},
        job_permissions={"check": {"contents": "read"}, "comment": {"pull-requests": "write"}},
    )
    fake.init_from(src)
    with GitHubServer(fake, ca, max_seconds=60) as server:
        yield fake, f"{server.url}/api/v3/repos/synagi/haha", str(ca.bundle)


def test_a_jobs_token_gets_githubs_403_outside_its_permissions(github) -> None:
    fake, api, ca = github
    auth = {"Authorization": f"Bearer {WORKFLOW}"}
    fake.job_of = lambda request: "check"
    refused = requests.post(
        f"{api}/issues/1/comments", json={"body": "x"}, headers=auth, verify=ca, timeout=10
    )
    assert refused.status_code == 403
    assert refused.json()["message"] == "Resource not accessible by integration"
    assert refused.json()["status"] == "403"
    fake.job_of = lambda request: "comment"
    pull = requests.post(
        f"{api}/pulls",
        json={"head": "topic", "base": "main", "title": "t"},
        headers=auth,
        verify=ca,
        timeout=10,
    )
    assert pull.status_code == 201
    fake.job_of = lambda request: None  # no running job: the token is spent
    assert requests.get(f"{api}/pulls", headers=auth, verify=ca, timeout=10).status_code == 403
    assert [r["job"] for r in fake.refusals] == ["check", None]


def test_a_pr_opened_with_the_workflow_token_starts_no_workflow(github) -> None:
    fake, api, ca = github
    fake.job_of = lambda request: "comment"
    body = {"head": "topic", "base": "main", "title": "t"}
    requests.post(
        f"{api}/pulls", json=body, headers={"Authorization": f"Bearer {WORKFLOW}"}, verify=ca, timeout=10
    )
    (pull,) = fake.pulls.values()
    with pytest.raises(AssertionError, match="GITHUB_TOKEN"):
        refuse_untriggered(fake, fake.rev("refs/heads/topic"), pull)

    pull["state"] = "closed"
    requests.post(
        f"{api}/pulls", json=body, headers={"Authorization": f"Bearer {APP}"}, verify=ca, timeout=10
    )
    app_pull = fake.pulls[2]
    refuse_untriggered(fake, fake.rev("refs/heads/topic"), app_pull)  # an App token's PR does


def test_a_commit_of_a_merged_branch_leads_to_its_pr(github, tmp_path: Path) -> None:
    """GitHub lists "the merged pull request that introduced the commit", not only its merge commit."""
    fake, api, ca = github
    work = tmp_path / "topic"
    subprocess.run(["git", "clone", "-q", "--branch", "topic", str(fake.bare), str(work)], check=True)
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(
        ["git", *identity, "-C", str(work), "commit", "-q", "--allow-empty", "-m", "add"], check=True
    )
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "topic"], check=True)
    added = fake.rev("refs/heads/topic")
    number = fake.open_pull("topic", "t")["number"]
    merge = fake.merge_pull(number, tmp_path / "merge")
    auth = {"Authorization": f"Bearer {USER}"}
    for sha in (added, merge):
        pulls = requests.get(f"{api}/commits/{sha}/pulls", headers=auth, verify=ca, timeout=10).json()
        assert [p["number"] for p in pulls] == [number]
    base = fake.rev("refs/heads/main~1")
    assert requests.get(f"{api}/commits/{base}/pulls", headers=auth, verify=ca, timeout=10).json() == []
