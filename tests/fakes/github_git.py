"""A loopback GitHub over HTTPS: the REST API, the GraphQL endpoint and git's smart HTTP, one host.

What the workflows under `act` and the pods talk to, as `--github-instance 127.0.0.1:<port>`:
- `/api/v3/...`: REST — pulls (a second create for an open head is 422 "A pull request already
  exists for ..." like api.github.com), issues, issue comments (paginated with `Link`), labels,
  `repository_dispatch`, `commits/{sha}/pulls`, the repository itself.
- `/api/graphql`: the queries `marocchino/sticky-pull-request-comment` sends (find the previous
  comment; update, delete or minimise it).
- `/<owner>/<repo>.git/...`: clone, fetch and push through `git http-backend` as CGI, over bare
  repositories under `git_root`.

Tokens are held to what they were granted (`grants`), as on GitHub: a job's GITHUB_TOKEN to the
job's `permissions:` (the harness says which job a request came from, `job_of`), an App token or a
fine-grained PAT to its own set; outside them REST and GraphQL answer 403 "Resource not accessible
by integration" and git answers 403. REST requests are checked against GitHub's published
description (`github_openapi.json`): unknown path or method 404, a missing required field 422. What
a workflow's GITHUB_TOKEN creates or pushes starts no workflow (`triggers_workflows`).

TLS comes from a throwaway CA (`trustme`): Node trusts it through NODE_EXTRA_CA_CERTS, git through
GIT_SSL_CAINFO, Python through SSL_CERT_FILE / REQUESTS_CA_BUNDLE (see `ca_env`). Every request is
recorded; tests assert on `requests`, `pulls`, `comments`, `issues`, `dispatches` and the bare repos.
"""

from __future__ import annotations

import base64
import itertools
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fakes import github_rest as rest
from fakes.github_rest import Grant
from fakes.graphql import Field, GraphQLSyntaxError, parse
from fakes.server import LoopbackServer, Reply, Request

GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
BOT_LOGIN = "github-actions[bot]"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class CA:
    """A throwaway certificate authority and a server certificate for 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        import trustme

        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost")
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.path))
        # OpenSSL-based clients take one bundle: the system's roots (package registries stay
        # reachable) plus this CA.
        self.bundle = directory / "bundle.pem"
        system = Path(SYSTEM_BUNDLE).read_bytes() if Path(SYSTEM_BUNDLE).is_file() else b""
        self.bundle.write_bytes(system + b"\n" + self.path.read_bytes())

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        return ctx

    def env(self) -> dict[str, str]:
        """What makes Node, git, curl, pip and Python (requests, urllib) trust it."""
        bundle = str(self.bundle)
        return {
            "NODE_EXTRA_CA_CERTS": str(self.path),  # added to Node's own roots
            "GIT_SSL_CAINFO": bundle,
            "SSL_CERT_FILE": bundle,
            "REQUESTS_CA_BUNDLE": bundle,
            "CURL_CA_BUNDLE": bundle,
            "PIP_CERT": bundle,
        }


@dataclass
class GitHubGitFake:
    """One repository (`repo`) on a fake GitHub; `tokens` maps each accepted token to its login."""

    repo: str
    git_root: Path
    tokens: dict[str, str] = field(default_factory=lambda: {"ghs_workflow_token": BOT_LOGIN})
    # What each token may do; a token not listed may do everything its login may.
    grants: dict[str, Grant] = field(default_factory=dict)
    # The running workflow's jobs → their GITHUB_TOKEN permissions, and which job sent a request.
    job_permissions: dict[str, dict[str, str]] = field(default_factory=dict)
    job_of: Callable[[Request], str | None] = lambda request: None
    token_uses: list[dict[str, Any]] = field(default_factory=list)  # {"path", "token_kind", "job", "allowed"}
    default_branch: str = "main"
    per_page_default: int = 30
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # issues only; PRs live in pulls
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)  # {"login", "refs": [(old, new, ref)]}
    requests: list[Request] = field(default_factory=list)
    # Faults, each for the next N requests: git fetches/clones (upload-pack) answer 500; dispatches 502.
    git_fetch_errors: int = 0
    dispatch_errors: int = 0
    base_url: str = ""
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))
    _comment_ids: itertools.count = field(default_factory=lambda: itertools.count(9001))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- the bare repository -------------------------------------------------------------------
    @property
    def bare(self) -> Path:
        return self.git_root / f"{self.repo}.git"

    def init_from(self, source: Path) -> None:
        """Make the served repository a bare copy of `source` (all branches)."""
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "-q", "--bare", str(source), str(self.bare))
        _git("-C", str(self.bare), "config", "http.receivepack", "true")
        _git("-C", str(self.bare), "symbolic-ref", "HEAD", f"refs/heads/{self.default_branch}")

    def clone_url(self) -> str:
        return f"{self.base_url}/{self.repo}.git"

    def rev(self, ref: str) -> str | None:
        out = subprocess.run(
            ["git", "-C", str(self.bare), "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() or None

    def show(self, ref: str, path: str) -> bytes | None:
        """A file's content on a branch (or None)."""
        out = subprocess.run(["git", "-C", str(self.bare), "show", f"{ref}:{path}"], capture_output=True)
        return out.stdout if out.returncode == 0 else None

    def ls(self, ref: str, path: str) -> list[str]:
        out = subprocess.run(
            ["git", "-C", str(self.bare), "ls-tree", "--name-only", ref, f"{path.rstrip('/')}/"],
            capture_output=True,
            text=True,
        )
        return out.stdout.split()

    def branches(self) -> list[str]:
        out = _git("-C", str(self.bare), "for-each-ref", "--format=%(refname:short)", "refs/heads")
        return out.split()

    def merge_pull(self, number: int, work: Path) -> str:
        """Merge PR `number` into its base with a merge commit, as the green button does; its sha."""
        with self._lock:
            pull = self.pulls[number]
            base, head = pull["base"]["ref"], pull["head"]["ref"]
        if work.exists():
            shutil.rmtree(work)
        _git("clone", "-q", "--branch", base, str(self.bare), str(work))
        _git("-C", str(work), "fetch", "-q", "origin", head)
        _git(
            "-C",
            str(work),
            *_IDENTITY,
            "merge",
            "-q",
            "--no-ff",
            "-m",
            f"Merge pull request #{number} from {self.owner}/{head}",
            "FETCH_HEAD",
        )
        _git("-C", str(work), "push", "-q", "origin", f"HEAD:refs/heads/{base}")
        sha = _git("-C", str(work), "rev-parse", "HEAD").strip()
        with self._lock:
            pull.update(state="closed", merged=True, merge_commit_sha=sha, merged_at=_now(), closed_at=_now())
        return sha

    def open_pull(self, head: str, title: str, base: str | None = None, body: str = "") -> dict[str, Any]:
        """A PR a person opened (the branch must exist in the bare repo)."""
        with self._lock:
            return self._new_pull(head, base or self.default_branch, title, body, "octocat")

    @property
    def owner(self) -> str:
        return self.repo.split("/")[0]

    # --- queries for tests -------------------------------------------------------------------
    def comments_on(self, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.comments.values() if c["issue_number"] == number]

    def pulls_for(self, head_ref: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._pull_json(p) for p in self.pulls.values() if p["head"]["ref"] == head_ref]

    def api(self, method: str, suffix: str = "") -> list[Request]:
        """Recorded REST requests to `/repos/<repo>/<suffix>...` with `method`."""
        prefix = f"/api/v3/repos/{self.repo}/{suffix}".rstrip("/")
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def graphql_calls(self) -> list[dict[str, Any]]:
        return [r.parsed for r in self.requests if r.path == "/api/graphql"]

    # --- dispatch ------------------------------------------------------------------------------
    def handle(self, request: Request, base_url: str) -> Reply:
        login = self._login(request)
        if request.path == "/api/graphql":
            if login is None:
                return rest.message(401, "Bad credentials")
            return self._graphql(request, login)
        if request.path.startswith("/api/v3/"):
            if login is None:
                return rest.message(401, "Bad credentials")
            path = request.path[len("/api/v3") :]
            op, refused = rest.described(request, path)
            if refused is None and op is not None:
                refused = self._check(request, rest.NEEDS[op["operationId"]], op["docs"])
            return refused or self._rest(request, path, login)
        return rest.not_found()

    # --- what the token may do ---------------------------------------------------------------
    def _token(self, request: Request) -> str | None:
        auth = request.header("authorization")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("bearer", "token"):
            return value.strip()
        if scheme.lower() == "basic":
            try:
                return base64.b64decode(value).decode().partition(":")[2]
            except ValueError:
                return None
        return None

    def grant_of(self, request: Request) -> tuple[Grant, str | None]:
        """The request's grant, with a workflow token's permissions resolved to its job's; and the job."""
        grant = self.grants.get(self._token(request) or "", Grant("user"))
        if grant.kind != "workflow":
            return grant, None
        job = self.job_of(request)
        # A job's token lives as long as the job (GitHub: "expires when a job finishes"); a request
        # from no running job of the current workflow gets no permissions at all.
        return Grant("workflow", self.job_permissions.get(job or "", {})), job

    def _check(self, request: Request, needs: list[tuple[str, str]], docs: str) -> Reply | None:
        """None when the token may; else the 403 GitHub answers. Recorded in `token_uses` either way."""
        grant, job = self.grant_of(request)
        allowed = rest.allows(grant.permissions, needs)
        with self._lock:
            self.token_uses.append(
                {"path": request.path, "token_kind": grant.kind, "job": job, "allowed": allowed}
            )
        return None if allowed else rest.forbidden(grant.kind, docs)

    @property
    def refusals(self) -> list[dict[str, Any]]:
        """The requests refused for want of a permission."""
        with self._lock:
            return [use for use in self.token_uses if not use["allowed"]]

    def triggers_workflows(self, request: Request) -> bool:
        """GitHub: "events triggered by the GITHUB_TOKEN ... will not create a new workflow run"
        (https://docs.github.com/actions/security-for-github-actions/security-guides/automatic-token-authentication#using-the-github_token-in-a-workflow)."""
        return self.grants.get(self._token(request) or "", Grant("user")).kind != "workflow"

    def _login(self, request: Request) -> str | None:
        token = self._token(request)
        return self.tokens.get(token) if token else None

    # --- REST ----------------------------------------------------------------------------------
    def _rest(self, request: Request, path: str, login: str) -> Reply:
        prefix = f"/repos/{self.repo}"
        if path.rstrip("/") == prefix and request.method == "GET":
            return Reply.json(self._repo_json())
        if not path.startswith(prefix + "/"):
            return rest.not_found()
        route, parts, nums = rest.route(request.method, path[len(prefix) + 1 :].strip("/"))
        with self._lock:
            if route == ("POST", "dispatches"):
                return self._dispatch(request)
            if route == ("POST", "pulls"):
                return self._create_pull(request, login)
            if route == ("GET", "pulls"):
                return self._page(request, [self._pull_json(p) for p in self._matching_pulls(request)])
            if route == ("GET", "pulls", "{n}"):
                return self._with_pull(nums[0], lambda p: Reply.json(self._pull_json(p)))
            if route == ("PATCH", "pulls", "{n}"):
                return self._with_pull(nums[0], lambda p: self._update_pull(p, request.json()))
            if len(parts) == 3 and route[:2] == ("GET", "commits") and parts[2] == "pulls":
                pulls = [p for p in self.pulls.values() if self._introduced(p, parts[1])]
                return Reply.json([self._pull_json(p) for p in pulls])
            if route == ("GET", "issues"):
                return self._page(request, self._matching_issues(request))
            if route == ("POST", "issues"):
                return self._open_issue(request, login)
            if route == ("GET", "issues", "{n}"):
                item = self._issue_json(nums[0])
                return Reply.json(item) if item else rest.not_found()
            if route == ("PATCH", "issues", "{n}"):
                return self._update_issue(nums[0], request.json())
            if route == ("POST", "issues", "{n}", "labels"):
                return self._add_labels(nums[0], request.json())
            if route == ("GET", "issues", "{n}", "comments"):
                items = [c for c in self.comments.values() if c["issue_number"] == nums[0]]
                return self._page(request, items)
            if route == ("POST", "issues", "{n}", "comments"):
                if self._issue_json(nums[0]) is None:
                    return rest.not_found()
                return Reply.json(self._add_comment(nums[0], request.json()["body"], login), 201)
            if route in (("GET", "issues", "comments", "{n}"), ("PATCH", "issues", "comments", "{n}")):
                comment = self.comments.get(nums[0])
                if comment is None:
                    return rest.not_found()
                if request.method == "PATCH":
                    comment["body"] = request.json()["body"]
                    comment["updated_count"] += 1
                return Reply.json(comment)
            if route == ("DELETE", "issues", "comments", "{n}"):
                return Reply(204) if self.comments.pop(nums[0], None) else rest.not_found()
        return rest.not_found()

    def _repo_json(self) -> dict[str, Any]:
        return {
            "id": 1,
            "node_id": "R_1",
            "name": self.repo.split("/")[1],
            "full_name": self.repo,
            "owner": {"login": self.owner},
            "private": False,
            "fork": False,
            "default_branch": self.default_branch,
            "html_url": f"{self.base_url}/{self.repo}",
            "clone_url": self.clone_url(),
        }

    def _head_ref(self, head: str) -> str:
        owner, _, branch = head.rpartition(":")
        return branch if owner in ("", self.owner) else ""

    def _new_pull(self, head: str, base: str, title: str, body: str, login: str) -> dict[str, Any]:
        number = next(self._numbers)
        pull = {
            "number": number,
            "title": title,
            "body": body or "",
            "state": "open",
            "merged": False,
            "merge_commit_sha": None,
            "merged_at": None,
            "closed_at": None,
            "created_at": _now(),
            "draft": False,
            "user": {"login": login},
            "head": {"ref": head},
            "base": {"ref": base},
            "labels": [],
            "updates": 0,
        }
        self.pulls[number] = pull
        return pull

    def _create_pull(self, request: Request, login: str) -> Reply:
        body = request.json()
        head = self._head_ref(body.get("head") or "")
        base = body.get("base") or self.default_branch
        if not head or self.rev(f"refs/heads/{head}") is None:
            return rest.validation("PullRequest", "head", "invalid")
        if self.rev(f"refs/heads/{base}") is None:
            return rest.validation("PullRequest", "base", "invalid")
        for pull in self.pulls.values():
            if pull["state"] == "open" and pull["head"]["ref"] == head and pull["base"]["ref"] == base:
                return rest.message(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {self.owner}:{head}.",
                        }
                    ],
                )
        pull = self._new_pull(head, base, body.get("title") or "", body.get("body") or "", login)
        pull["triggers_workflows"] = self.triggers_workflows(request)
        pull["opened_at_sha"] = self.rev(f"refs/heads/{head}")
        return Reply.json(self._pull_json(pull), 201)

    def _introduced(self, pull: dict[str, Any], sha: str) -> bool:
        """Whether merged `pull` brought commit `sha` to its base: its merge commit or one of its
        branch's commits. GitHub REST, "List pull requests associated with a commit": "the merged
        pull request that introduced the commit to the repository"
        (https://docs.github.com/rest/commits/commits#list-pull-requests-associated-with-a-commit).
        """
        merge = pull.get("merge_commit_sha")
        if not merge:
            return False
        if merge == sha:
            return True
        brought = subprocess.run(
            ["git", "-C", str(self.bare), "rev-list", f"{merge}^1..{merge}"], capture_output=True, text=True
        )
        return sha in brought.stdout.split()

    def _with_pull(self, number: int, fn: Any) -> Reply:
        pull = self.pulls.get(number)
        return fn(pull) if pull else rest.not_found()

    def _update_pull(self, pull: dict[str, Any], body: dict[str, Any]) -> Reply:
        for key in ("title", "body", "state"):
            if key in body:
                pull[key] = body[key]
        pull["updates"] += 1
        return Reply.json(self._pull_json(pull))

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        n, head, base = pull["number"], pull["head"]["ref"], pull["base"]["ref"]
        repo = self._repo_json()
        return {
            **{k: v for k, v in pull.items() if k not in _PRIVATE},
            "id": 100000 + n,
            "node_id": f"PR_{n}",
            "url": f"{self.base_url}/api/v3/repos/{self.repo}/pulls/{n}",
            "html_url": f"{self.base_url}/{self.repo}/pull/{n}",
            "head": {
                "ref": head,
                "label": f"{self.owner}:{head}",
                "sha": self.rev(f"refs/heads/{head}"),
                "repo": repo,
            },
            "base": {
                "ref": base,
                "label": f"{self.owner}:{base}",
                "sha": self.rev(f"refs/heads/{base}"),
                "repo": repo,
            },
        }

    def _matching_pulls(self, request: Request) -> list[dict[str, Any]]:
        state = request.query.get("state", ["open"])[0]
        head = request.query.get("head", [""])[0]
        base = request.query.get("base", [""])[0]
        out = []
        for pull in self.pulls.values():
            if state != "all" and pull["state"] != state:
                continue
            if head and f"{self.owner}:{pull['head']['ref']}" != (
                head if ":" in head else f"{self.owner}:{head}"
            ):
                continue
            if base and pull["base"]["ref"] != base:
                continue
            out.append(pull)
        return out

    def _issue_json(self, number: int) -> dict[str, Any] | None:
        if number in self.issues:
            return self.issues[number]
        pull = self.pulls.get(number)
        if pull is None:
            return None
        return {
            "number": number,
            "title": pull["title"],
            "body": pull["body"],
            "state": pull["state"],
            "labels": pull["labels"],
            "user": pull["user"],
            "html_url": f"{self.base_url}/{self.repo}/pull/{number}",
            "pull_request": {"url": f"{self.base_url}/api/v3/repos/{self.repo}/pulls/{number}"},
        }

    def _matching_issues(self, request: Request) -> list[dict[str, Any]]:
        numbers = sorted(set(self.issues) | set(self.pulls), reverse=True)  # newest first, like GitHub
        return rest.matching_issues(request, [i for i in map(self._issue_json, numbers) if i])

    def _open_issue(self, request: Request, login: str) -> Reply:
        body = request.json()
        if not body.get("title"):
            return rest.validation("Issue", "title", "missing_field")
        number = next(self._numbers)
        self.issues[number] = {
            "number": number,
            "title": body["title"],
            "body": body.get("body") or "",
            "state": "open",
            "labels": [{"name": n} for n in body.get("labels") or ()],
            "user": {"login": login},
            "html_url": f"{self.base_url}/{self.repo}/issues/{number}",
        }
        return Reply.json(self.issues[number], 201)

    def _update_issue(self, number: int, body: dict[str, Any]) -> Reply:
        if number in self.pulls:
            return self._update_pull(self.pulls[number], body)
        issue = self.issues.get(number)
        if issue is None:
            return rest.not_found()
        for key in ("title", "body", "state"):
            if key in body:
                issue[key] = body[key]
        if "labels" in body:
            issue["labels"] = [{"name": n} for n in body["labels"]]
        return Reply.json(issue)

    def _add_labels(self, number: int, body: Any) -> Reply:
        target = self.issues.get(number) or self.pulls.get(number)
        if target is None:
            return rest.not_found()
        names = body.get("labels") if isinstance(body, dict) else body
        for name in names or ():
            if name not in {label["name"] for label in target["labels"]}:
                target["labels"].append({"name": name})
        return Reply.json(target["labels"])

    def _add_comment(self, number: int, body: str, login: str) -> dict[str, Any]:
        comment_id = next(self._comment_ids)
        kind = "pull" if number in self.pulls else "issues"
        self.comments[comment_id] = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "issue_number": number,
            "body": body,
            "user": {"login": login},
            "updated_count": 0,
            "html_url": f"{self.base_url}/{self.repo}/{kind}/{number}#issuecomment-{comment_id}",
        }
        return self.comments[comment_id]

    def _dispatch(self, request: Request) -> Reply:
        if self.dispatch_errors > 0:
            self.dispatch_errors -= 1
            return Reply(
                502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"}
            )
        return rest.dispatch(request, self.dispatches)

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Reply:
        return rest.page(request, self.base_url, items, self.per_page_default)

    # --- GraphQL (what sticky-pull-request-comment sends) ---------------------------------------
    def _graphql(self, request: Request, login: str) -> Reply:
        payload = request.json()
        try:
            op = parse(payload["query"], payload.get("variables") or {})
        except GraphQLSyntaxError as exc:
            return Reply.json({"errors": [{"message": str(exc)}]})
        request.parsed = {"kind": op.kind, "fields": [f.name for f in op.fields]}
        for root in op.fields:
            needs = GRAPHQL_NEEDS.get(root.name)
            if needs and self._check(request, needs, "https://docs.github.com/graphql") is not None:
                # GraphQL answers 200 with a FORBIDDEN error naming the field, as GitHub does.
                return Reply.json(
                    {
                        "data": {root.name: None},
                        "errors": [
                            {
                                "type": "FORBIDDEN",
                                "path": [root.name],
                                "message": "Resource not accessible by integration",
                            }
                        ],
                    }
                )
        data: dict[str, Any] = {}
        with self._lock:
            for root in op.fields:
                handler = getattr(self, f"_gql_{root.name}", None)
                if handler is None:
                    return Reply.json({"errors": [{"message": f"Field '{root.name}' doesn't exist"}]})
                try:
                    data[root.name] = handler(root, login)
                except StopIteration:
                    return Reply.json(
                        {"errors": [{"type": "NOT_FOUND", "message": "Could not resolve to a node"}]}
                    )
        return Reply.json({"data": data})

    def _gql_viewer(self, root: Field, login: str) -> dict[str, Any]:
        return {"login": login}

    def _gql_repository(self, root: Field, login: str) -> dict[str, Any]:
        """Only `pullRequest(number) { comments(first, after) {...} }` is asked for."""
        pull = next((f for f in root.selections if f.name == "pullRequest"), None)
        number = pull.args.get("number") if pull else None
        if pull is None or number not in self.pulls:
            return {"pullRequest": None}
        comments = next((f for f in pull.selections if f.name == "comments"), None)
        args = comments.args if comments else {}
        items = [c for c in self.comments.values() if c["issue_number"] == number]
        start = int(args.get("after") or 0)
        chunk = items[start : start + int(args.get("first") or 100)]
        end = start + len(chunk)
        nodes = [
            {
                "id": c["node_id"],
                # GraphQL names a GitHub App by its slug, without REST's "[bot]" suffix.
                "author": {"login": c["user"]["login"].removesuffix("[bot]")},
                "isMinimized": bool(c.get("minimized")),
                "body": c["body"],
            }
            for c in chunk
        ]
        return {
            "pullRequest": {
                "comments": {
                    "nodes": nodes,
                    "pageInfo": {"endCursor": str(end), "hasNextPage": end < len(items)},
                }
            }
        }

    def _gql_updateIssueComment(self, root: Field, login: str) -> dict[str, Any]:
        comment = self._by_node(root.args["input"]["id"])
        comment["body"] = root.args["input"]["body"]
        comment["updated_count"] += 1
        return {"issueComment": {"id": comment["node_id"], "body": comment["body"]}}

    def _gql_deleteIssueComment(self, root: Field, login: str) -> dict[str, Any]:
        comment = self._by_node(root.args["input"]["id"])
        del self.comments[comment["id"]]
        return {"clientMutationId": None}

    def _gql_minimizeComment(self, root: Field, login: str) -> dict[str, Any]:
        comment = self._by_node(root.args["input"]["subjectId"])
        comment["minimized"] = True
        return {"clientMutationId": None}

    def _by_node(self, node_id: str) -> dict[str, Any]:
        return next(c for c in self.comments.values() if c["node_id"] == node_id)


# What the GraphQL root fields sticky-pull-request-comment sends need (GitHub's GraphQL objects
# follow the REST permissions of the same resource: reading a PR's comments, editing a comment).
GRAPHQL_NEEDS: dict[str, list[tuple[str, str]]] = {
    "repository": [("pull-requests", "read"), ("issues", "read")],
    "updateIssueComment": [("pull-requests", "write"), ("issues", "write")],
    "deleteIssueComment": [("pull-requests", "write"), ("issues", "write")],
    "minimizeComment": [("pull-requests", "write"), ("issues", "write")],
}


# --- the HTTPS server --------------------------------------------------------------------------
class GitHubServer(LoopbackServer):
    """Serve a GitHubGitFake over HTTPS on 127.0.0.1:<free port>; bounded by `max_seconds`.

    Unlike the plain server it holds no lock while answering: the fake locks its own state, so a
    slow clone or push does not hold up the API.
    """

    def __init__(self, fake: GitHubGitFake, ca: CA, max_seconds: float = 900.0) -> None:
        super().__init__(fake, max_seconds, tls=ca.server_context())
        self.fake = fake
        fake.base_url = self.url

    def _record(self, request: Request) -> Reply:
        fake = self.fake
        with fake._lock:
            fake.requests.append(request)
        if ".git/" in request.path and not request.path.startswith("/api/"):
            return self._git(request)
        try:
            return fake.handle(request, fake.base_url)
        except Exception as exc:  # a fake bug must show up as a 500 the client reports
            return rest.message(500, f"fake error: {exc!r}")

    def _git(self, request: Request) -> Reply:
        """Git's smart HTTP through `git http-backend` as CGI; pushes need a token, fetches may fail."""
        fake = self.fake
        login = fake._login(request)
        query = request.query_string
        service = parse_qs(query).get("service", [""])[0]
        pushing = request.path.endswith("/git-receive-pack") or service == "git-receive-pack"
        if pushing and login is None:
            return Reply(401, b"auth required", {"WWW-Authenticate": 'Basic realm="GitHub"'})
        # Fetching needs contents read, pushing contents write; git sees a plain 403 (GitHub's own
        # answer reads "Permission to <repo>.git denied to <login>.").
        if login is not None and fake._check(
            request, [("contents", "write" if pushing else "read")], "https://docs.github.com/rest"
        ):
            return Reply(403, f"Permission to {fake.repo}.git denied to {login}.\n".encode())
        if request.path.endswith("/git-upload-pack") and fake.git_fetch_errors > 0:
            with fake._lock:
                fake.git_fetch_errors -= 1
            request.parsed = {"git": "git-upload-pack", "status": 500}
            return Reply(500, b"fetch failed (injected)")
        before = _refs(fake.bare) if request.path.endswith("/git-receive-pack") else None
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(fake.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": request.path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": request.method,
            "CONTENT_TYPE": request.header("content-type"),
            "CONTENT_LENGTH": str(len(request.body)),
            "REMOTE_USER": login or "",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": request.header("git-protocol"),
            "HTTP_CONTENT_ENCODING": request.header("content-encoding"),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        proc = subprocess.run(
            [GIT_HTTP_BACKEND], input=request.body, env=env, capture_output=True, timeout=120
        )
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key and key.lower() != "content-length":  # the server counts the payload it sends
                headers[key] = value.strip()
        if before is not None:
            after = _refs(fake.bare)
            changed = [
                (before.get(r), after.get(r), r)
                for r in sorted(set(before) | set(after))
                if before.get(r) != after.get(r)
            ]
            with fake._lock:
                fake.pushes.append(
                    {"login": login, "refs": changed, "triggers_workflows": fake.triggers_workflows(request)}
                )
        request.parsed = {"git": service or request.path.rsplit("/", 1)[-1], "status": status}
        return Reply(status, payload, headers)


_PRIVATE = ("head", "base", "updates", "triggers_workflows", "opened_at_sha")  # the fake's own notes


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refs(bare: Path) -> dict[str, str]:
    out = subprocess.run(
        ["git", "-C", str(bare), "for-each-ref", "--format=%(objectname) %(refname)"],
        capture_output=True,
        text=True,
    ).stdout
    return {ref: sha for sha, ref in (line.split(" ", 1) for line in out.splitlines())}


_IDENTITY = ("-c", "user.name=octocat", "-c", "user.email=octocat@example.com")


def _git(*args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True, env=env).stdout
