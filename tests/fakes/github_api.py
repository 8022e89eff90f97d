"""A loopback GitHub REST API for one repository: repository_dispatch, issue comments (paginated
with `Link` headers like api.github.com) and issues (the list endpoint includes pull requests).

Requests are checked against GitHub's published description (`github_openapi.json`: unknown path or
method 404, a missing required field 422) and the token against `permissions` (None: all), with
the 403 GitHub answers, as in the HTTPS fake (github_git.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from fakes import github_rest as rest
from fakes.server import Reply, Request


@dataclass
class GitHubFake:
    repo: str = "synagi/haha"
    token: str = "ghs_test_token"
    permissions: dict[str, str] | None = None  # the token's, as a job's `permissions:` would give them
    per_page_default: int = 30
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    merges: dict[str, int] = field(default_factory=dict)  # merge commit sha → the PR it merged
    introduced: dict[str, int] = field(default_factory=dict)  # a commit of a merged PR's branch → the PR
    requests: list[Request] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1001))

    def handle(self, request: Request, base_url: str) -> Reply:
        if request.header("authorization") not in (f"Bearer {self.token}", f"token {self.token}"):
            return rest.message(401, "Bad credentials")
        prefix = f"/repos/{self.repo}"
        if not request.path.startswith(prefix + "/"):
            return rest.not_found()
        op, refused = rest.described(request, request.path)
        if refused is not None or op is None:
            return refused or rest.not_found()
        if not rest.allows(self.permissions, rest.NEEDS[op["operationId"]]):
            return rest.forbidden("workflow", op["docs"])
        route, parts, numbers = rest.route(request.method, request.path[len(prefix) + 1 :])
        if request.method == "GET" and len(parts) == 3 and (parts[0], parts[2]) == ("commits", "pulls"):
            return Reply.json(self._pulls_of(parts[1]))
        if route == ("POST", "dispatches"):
            return rest.dispatch(request, self.dispatches)
        if route == ("GET", "issues", "{n}", "comments"):
            items = [c for c in self.comments.values() if c["issue_number"] == numbers[0]]
            return rest.page(request, base_url, items, self.per_page_default)
        if route == ("POST", "issues", "{n}", "comments"):
            return Reply.json(self.add_comment(numbers[0], request.json()["body"]), 201)
        if route == ("PATCH", "issues", "comments", "{n}"):
            return self._edit_comment(request, numbers[0])
        if route == ("GET", "issues"):
            issues = rest.matching_issues(request, self.issues.values())
            return rest.page(request, base_url, issues, self.per_page_default)
        if route == ("POST", "issues"):
            return self._open_issue(request)
        return rest.not_found()

    def add_issue(
        self, title: str, labels: tuple[str, ...] = (), pull_request: bool = False
    ) -> dict[str, Any]:
        """Seed an open issue (or PR, which the issues list also returns)."""
        number = len(self.issues) + 1
        issue = {
            "number": number,
            "title": title,
            "body": "",
            "state": "open",
            "labels": [{"name": n} for n in labels],
            "html_url": f"https://github.com/{self.repo}/issues/{number}",
        }
        if pull_request:
            issue["pull_request"] = {"url": "..."}
        self.issues[number] = issue
        return issue

    def add_comment(self, issue_number: int, body: str) -> dict[str, Any]:
        comment_id = next(self._ids)
        self.comments[comment_id] = {
            "id": comment_id,
            "issue_number": issue_number,
            "body": body,
            "html_url": f"https://github.com/{self.repo}/pull/{issue_number}#issuecomment-{comment_id}",
        }
        return self.comments[comment_id]

    def _pulls_of(self, sha: str) -> list[dict[str, Any]]:
        """`GET /repos/{repo}/commits/{sha}/pulls`: "the merged pull request that introduced the
        commit" — its merge commit, or a commit of its branch (GitHub REST, "List pull requests
        associated with a commit": https://docs.github.com/rest/commits/commits#list-pull-requests-associated-with-a-commit).
        """
        number = self.merges.get(sha) or self.introduced.get(sha)
        if number is None:
            return []
        merge_sha = next((m for m, n in self.merges.items() if n == number), None)
        return [{"number": number, "merged_at": "2026-11-28T06:00:00Z", "merge_commit_sha": merge_sha}]

    def _edit_comment(self, request: Request, comment_id: int) -> Reply:
        if comment_id not in self.comments:
            return rest.not_found()
        self.comments[comment_id]["body"] = request.json()["body"]
        return Reply.json(self.comments[comment_id])

    def _open_issue(self, request: Request) -> Reply:
        body = request.json()
        issue = self.add_issue(body["title"], tuple(body.get("labels") or ()))
        issue["body"] = body.get("body") or ""
        return Reply.json(issue, 201)
