"""What both GitHub REST fakes answer alike, as api.github.com does: error bodies, routes under
`/repos/<owner>/<repo>/`, `Link` pagination, `repository_dispatch` validation and the issue filters.
"""

from __future__ import annotations

from collections.abc import Iterable
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
