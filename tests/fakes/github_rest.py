"""What both GitHub REST fakes answer alike, as api.github.com does: error bodies, routes under
`/repos/<owner>/<repo>/`, `Link` pagination, `repository_dispatch` validation and the issue filters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

from fakes.server import Reply, Request

MAX_PAYLOAD_KEYS = 10  # GitHub rejects a client_payload with more top-level properties


class Route(NamedTuple):
    """A path below the repository: `key` is (method, *parts) with each number as "{n}"."""

    key: tuple[str, ...]
    parts: list[str]
    numbers: list[int]


def route(method: str, tail: str) -> Route:
    """The route of `tail`, the path after `/repos/<owner>/<repo>/`."""
    parts = tail.split("/")
    key = (method, *["{n}" if p.isdigit() else p for p in parts])
    return Route(key, parts, [int(p) for p in parts if p.isdigit()])


def message(status: int, text: str, errors: list[dict[str, Any]] | None = None) -> Reply:
    """GitHub's error body: a message, the docs link and any validation errors."""
    data: dict[str, Any] = {"message": text, "documentation_url": "https://docs.github.com/rest"}
    if errors:
        data["errors"] = errors
    return Reply.json(data, status)


def not_found() -> Reply:
    return message(404, "Not Found")


def validation(resource: str, field_name: str, code: str) -> Reply:
    """422 "Validation Failed" for one field of a resource, e.g. a missing issue title."""
    return message(422, "Validation Failed", [{"resource": resource, "field": field_name, "code": code}])


def page(request: Request, base_url: str, items: list[dict[str, Any]], per_page_default: int) -> Reply:
    """One page of `items` per `page`/`per_page`, with a `Link: <...>; rel="next"` while more remain."""
    per_page = min(int(request.query.get("per_page", [per_page_default])[0]), 100)
    number = int(request.query.get("page", ["1"])[0])
    chunk = items[(number - 1) * per_page : number * per_page]
    headers = {}
    if number * per_page < len(items):
        query = {k: v[0] for k, v in request.query.items()} | {"page": number + 1, "per_page": per_page}
        headers["Link"] = f'<{base_url}{request.path}?{urlencode(query)}>; rel="next"'
    return Reply.json(chunk, headers=headers)


def dispatch(request: Request, dispatches: list[dict[str, Any]]) -> Reply:
    """`POST /repos/{repo}/dispatches`: record a valid event (204) or say why GitHub refuses it (422)."""
    body = request.json()
    if not body.get("event_type"):
        return message(422, "Invalid request.\n\nevent_type wasn't supplied.")
    if len(body.get("client_payload") or {}) > MAX_PAYLOAD_KEYS:
        return message(
            422, "Invalid request.\n\nNo more than 10 properties are allowed; too many were supplied."
        )
    dispatches.append(body)
    return Reply(204)


def matching_issues(request: Request, issues: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issues `GET /repos/{repo}/issues` lists for its `state` (default open) and `labels`."""
    state = request.query.get("state", ["open"])[0]
    wanted = set(filter(None, request.query.get("labels", [""])[0].split(",")))
    return [
        i
        for i in issues
        if state in ("all", i["state"]) and wanted <= {label["name"] for label in i["labels"]}
    ]


# --- GitHub's published REST description: which paths exist and what their bodies require --------
OPENAPI = json.loads((Path(__file__).with_name("github_openapi.json")).read_text())  # source in its $comment


def _template_match(template: str, path: str) -> bool:
    parts, want = path.strip("/").split("/"), template.strip("/").split("/")
    return len(parts) == len(want) and all(
        w.startswith("{") or w == p for w, p in zip(want, parts, strict=True)
    )


def operation(method: str, path: str) -> dict[str, Any] | None:
    """The described operation for `method` on `path` (below the API root), or None: GitHub 404s it."""
    for template, methods in OPENAPI["paths"].items():
        if _template_match(template, path) and method.lower() in methods:
            return methods[method.lower()]
    return None


def described(request: Request, path: str) -> tuple[dict[str, Any] | None, Reply | None]:
    """(the operation, None), or (None, the answer GitHub gives): 404 for a path or method it does
    not have, 422 "Invalid request" for a JSON body without a field its schema requires."""
    op = operation(request.method, path)
    if op is None:
        return None, not_found()
    if "required" in op:
        try:
            body = request.json()
        except ValueError:
            return None, message(400, "Problems parsing JSON")
        if body is None and op.get("body_required"):
            return None, message(422, "Invalid request.\n\nFor 'links/0/schema', nil is not an object.")
        for name in op["required"]:
            if not isinstance(body, dict) or name not in body:
                return None, message(422, f"Invalid request.\n\n{name} wasn't supplied.")
    return op, None


# --- what each operation needs of a token --------------------------------------------------------
# GitHub's "Permissions required for fine-grained personal access tokens" and "... for GitHub Apps"
# (https://docs.github.com/rest/authentication/permissions-required-for-fine-grained-personal-access-tokens,
# https://docs.github.com/rest/authentication/permissions-required-for-github-apps), which is also what
# a workflow's GITHUB_TOKEN is held to. Each entry is a list of alternatives: any one is enough
# (issue comments and labels work with either "Issues" or "Pull requests", as those pages list them).
NEEDS: dict[str, list[tuple[str, str]]] = {
    "repos/get": [("metadata", "read")],
    "repos/create-dispatch-event": [("contents", "write")],
    "repos/list-pull-requests-associated-with-commit": [("contents", "read")],
    "pulls/list": [("pull-requests", "read")],
    "pulls/get": [("pull-requests", "read")],
    "pulls/create": [("pull-requests", "write")],
    "pulls/update": [("pull-requests", "write")],
    "issues/list-for-repo": [("issues", "read")],
    "issues/create": [("issues", "write")],
    "issues/get": [("issues", "read"), ("pull-requests", "read")],
    "issues/update": [("issues", "write"), ("pull-requests", "write")],
    "issues/add-labels": [("issues", "write"), ("pull-requests", "write")],
    "issues/list-comments": [("issues", "read"), ("pull-requests", "read")],
    "issues/create-comment": [("issues", "write"), ("pull-requests", "write")],
    "issues/get-comment": [("issues", "read"), ("pull-requests", "read")],
    "issues/update-comment": [("issues", "write"), ("pull-requests", "write")],
    "issues/delete-comment": [("issues", "write"), ("pull-requests", "write")],
}
LEVELS = {"none": 0, "read": 1, "write": 2}
# Every scope a workflow's `permissions:` may name (GitHub Actions workflow syntax,
# https://docs.github.com/actions/writing-workflows/workflow-syntax-for-github-actions#permissions).
SCOPES = (
    "actions", "attestations", "checks", "contents", "deployments", "discussions", "id-token", "issues",
    "models", "packages", "pages", "pull-requests", "repository-projects", "security-events", "statuses",
)  # fmt: skip
# With no `permissions:` anywhere, a job gets the repository's default; "restricted" (contents and
# packages read) is the default for repositories created since February 2023
# (https://docs.github.com/actions/security-for-github-actions/security-guides/automatic-token-authentication#permissions-for-the-github_token).
RESTRICTED_DEFAULT = {"contents": "read", "packages": "read"}


@dataclass(frozen=True)
class Grant:
    """What a token may do: `permissions` None means everything its user may (a person, a classic PAT).

    `kind` is "workflow" (a job's GITHUB_TOKEN: its permissions come from the job), "app" (a GitHub App
    installation token), "pat" (a fine-grained personal access token) or "user".
    """

    kind: str
    permissions: dict[str, str] | None = None


def allows(permissions: dict[str, str] | None, needs: list[tuple[str, str]]) -> bool:
    """Whether `permissions` meet one of `needs`. Metadata read comes with every token."""
    if permissions is None:
        return True
    held = {"metadata": "read", **permissions}
    return any(LEVELS[held.get(scope, "none")] >= LEVELS[level] for scope, level in needs)


def forbidden(kind: str, docs: str = "https://docs.github.com/rest") -> Reply:
    """The 403 GitHub answers a token without the permission: an App or workflow token is an
    "integration"; a fine-grained PAT names itself."""
    who = "personal access token" if kind == "pat" else "integration"
    return Reply.json(
        {"message": f"Resource not accessible by {who}", "documentation_url": docs, "status": "403"}, 403
    )


def _scopes(block: Any) -> dict[str, str]:
    """One `permissions:` value as {scope: level}: `read-all`, `write-all`, `{}` or a mapping.

    "If you specify the access for any of these permissions, all of those that are not specified are
    set to no access" (workflow syntax, `permissions`).
    """
    if block == "read-all":
        return dict.fromkeys(SCOPES, "read")
    if block == "write-all":
        return dict.fromkeys(SCOPES, "write")
    if not isinstance(block, dict):
        raise ValueError(f"permissions must be read-all, write-all or a mapping, not {block!r}")
    unknown = set(block) - set(SCOPES)
    if unknown or any(v not in LEVELS for v in block.values()):
        raise ValueError(f"bad permissions {block!r}")  # GitHub refuses such a workflow file
    return {k: v for k, v in block.items() if v != "none"}


def job_permissions(workflow: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each job's GITHUB_TOKEN permissions in a parsed workflow file: the job's own `permissions:`,
    else the workflow's, else the restricted default (GitHub's "Assigning permissions to jobs":
    https://docs.github.com/actions/writing-workflows/choosing-what-your-workflow-does/controlling-permissions-for-github_token)."""
    top = workflow.get("permissions")
    out = {}
    for job_id, job in (workflow.get("jobs") or {}).items():
        block = job.get("permissions", top)
        out[job_id] = dict(RESTRICTED_DEFAULT) if block is None else _scopes(block)
    return out
