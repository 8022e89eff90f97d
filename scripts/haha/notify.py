"""GitHub REST calls that close the loop: a finished run dispatches an event, PRs get one sticky
comment that is edited in place, and the reaper's failure reports open one issue per title.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from haha.errors import InputError, ServiceError
from haha.settings import Settings

RUN_FINISHED = "haha-run-finished"
_TIMEOUT = 30


def dispatch_run_finished(settings: Settings, basename: str, payload: dict[str, Any]) -> None:
    """Fire `repository_dispatch` so the collect workflow picks up the run's results."""
    body = {"event_type": RUN_FINISHED, "client_payload": {"basename": basename, **payload}}
    _request(settings, "POST", _url(settings, "dispatches"), json=body)


def upsert_comment(settings: Settings, issue_number: int, marker: str, body: str) -> str:
    """Edit the comment carrying `marker` on the issue/PR, or post it; returns the comment's URL."""
    text = body if marker in body else f"{marker}\n{body}"
    for comment in _pages(settings, _url(settings, f"issues/{issue_number}/comments")):
        if marker in (comment.get("body") or ""):
            if comment["body"] == text:  # nothing moved: no edit, no notification
                return comment["html_url"]
            url = _url(settings, f"issues/comments/{comment['id']}")
            return _request(settings, "PATCH", url, json={"body": text}).json()["html_url"]
    url = _url(settings, f"issues/{issue_number}/comments")
    return _request(settings, "POST", url, json={"body": text}).json()["html_url"]


def pull_for_commit(settings: Settings, sha: str) -> int | None:
    """The merged pull request whose merge produced `sha` (what a push to main came from), if any."""
    pulls = _request(settings, "GET", _url(settings, f"commits/{sha}/pulls")).json()
    merged = [p for p in pulls if p.get("merged_at") and p.get("merge_commit_sha") == sha]
    chosen = merged or [p for p in pulls if p.get("merged_at")]
    return int(chosen[0]["number"]) if chosen else None


def open_issue(settings: Settings, title: str, body: str, labels: list[str]) -> str:
    """Open an issue unless an open one has the same title; returns the issue's URL."""
    params = {"state": "open", "labels": ",".join(labels)} if labels else {"state": "open"}
    for issue in _pages(settings, _url(settings, "issues"), params):
        if "pull_request" not in issue and issue["title"] == title:
            return issue["html_url"]
    created = _request(
        settings, "POST", _url(settings, "issues"), json={"title": title, "body": body, "labels": labels}
    )
    return created.json()["html_url"]


def _url(settings: Settings, path: str) -> str:
    return f"{settings.github_api_url.rstrip('/')}/repos/{settings.github_repo}/{path}"


def _pages(settings: Settings, url: str, params: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Every item of a paginated list, following the `Link: rel="next"` header."""
    next_url: str | None = url
    query: dict[str, str] | None = {**(params or {}), "per_page": "100"}
    while next_url:
        response = _request(settings, "GET", next_url, params=query)
        yield from response.json()
        next_url = response.links.get("next", {}).get("url")
        query = None  # the next link carries the query


def _request(settings: Settings, method: str, url: str, **kwargs: Any) -> requests.Response:
    if settings.github_token is None:
        raise InputError(
            "GITHUB_TOKEN is not set",
            field="GITHUB_TOKEN",
            fix="pass a token that may write contents, issues and pull requests as the step's GITHUB_TOKEN",
        )
    token = settings.github_token.get_secret_value()
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "haha",
    }
    what = f"GitHub {method} {url.split('?')[0]}"
    try:
        response = requests.request(method, url, headers=headers, timeout=_TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise ServiceError(f"{what} failed: {str(exc).replace(token, '***')}") from None
    if response.status_code >= 400:
        raise ServiceError(
            f"{what} failed: {response.status_code} {_message(response)}".replace(token, "***")
        )
    return response


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("message")) if isinstance(data, dict) and "message" in data else response.text[:200]
