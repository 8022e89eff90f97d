"""A loopback HuggingFace Hub: the endpoints huggingface_hub 2.x calls to create a repo, commit
files (regular uploads, NDJSON with base64 content) and download them (HEAD/GET resolve, repo info,
tree listing). Files live in memory, one snapshot per commit, so downloads by commit hash work.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import yaml

from fakes.server import Reply, Request


def git_blob_sha(content: bytes) -> str:
    """The id git (and the Hub, for regular files) gives a file: what ETag and tree `oid` carry."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class HubRepo:
    repo_id: str
    private: bool
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)  # (sha, files) oldest first

    @property
    def head(self) -> str:
        return self.commits[-1][0]

    @property
    def files(self) -> dict[str, bytes]:
        return self.commits[-1][1]

    def snapshot(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        if revision == "main":
            return self.commits[-1]
        return next((c for c in self.commits if c[0] == revision), None)

    def commit(self, files: dict[str, bytes]) -> str:
        sha = hashlib.sha1(f"{self.repo_id}:{len(self.commits)}".encode()).hexdigest()
        self.commits.append((sha, files))
        return sha


@dataclass
class HubFake:
    token: str = "hf_test_token"
    repos: dict[str, HubRepo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def handle(self, request: Request, base_url: str) -> Reply:
        if request.header("authorization") != f"Bearer {self.token}":
            return _error(401, "Invalid credentials in Authorization header", None)
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        if parts[:2] == ["api", "repos"] and parts[2:] == ["create"]:
            return self._create(request, base_url)
        if parts[:2] == ["api", "validate-yaml"]:
            return self._validate_yaml(request)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo = self.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return _error(404, "Repository not found", "RepoNotFound")
            return self._model_api(request, repo, parts[4:], base_url)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = self.repos.get(f"{parts[0]}/{parts[1]}")
            if repo is None:
                return _error(404, "Repository not found", "RepoNotFound")
            return self._resolve(repo, parts[3], "/".join(parts[4:]))
        return _error(404, f"no route for {request.method} {request.path}", None)

    def _create(self, request: Request, base_url: str) -> Reply:
        body = request.json()
        repo_id = f"{body['organization']}/{body['name']}"
        request.parsed = body
        if repo_id in self.repos:
            return Reply.json(
                {"error": "You already created this model repo", "url": f"{base_url}/{repo_id}"}, 409
            )
        repo = HubRepo(repo_id, private=body.get("visibility") == "private")
        repo.commit({".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
        self.repos[repo_id] = repo
        return Reply.json({"url": f"{base_url}/{repo_id}", "name": repo_id, "id": repo.head[:24]})

    def _validate_yaml(self, request: Request) -> Reply:
        content = request.json()["content"]
        if content.startswith("---"):
            front = content.split("---", 2)
            try:
                if len(front) < 3 or not isinstance(yaml.safe_load(front[1]) or {}, dict):
                    raise yaml.YAMLError("metadata is not a mapping")
            except yaml.YAMLError as exc:
                return Reply.json({"errors": [{"message": str(exc)}]}, 400)
        return Reply.json({"errors": [], "warnings": []})

    def _model_api(self, request: Request, repo: HubRepo, rest: list[str], base_url: str) -> Reply:
        if request.method == "POST" and rest[:1] == ["preupload"]:
            return self._preupload(request, repo)
        if request.method == "POST" and rest[:1] == ["commit"]:
            return self._commit(request, repo, base_url)
        if request.method == "GET" and (not rest or rest[0] == "revision"):
            return self._info(repo, rest[1] if rest else "main")
        if request.method == "GET" and rest[:1] == ["tree"]:
            return self._tree(repo, rest[1])
        return _error(404, f"no route for {request.method} {request.path}", None)

    def _preupload(self, request: Request, repo: HubRepo) -> Reply:
        files = request.json()["files"]
        return Reply.json(
            {
                "files": [
                    {
                        "path": f["path"],
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": git_blob_sha(repo.files[f["path"]]) if f["path"] in repo.files else None,
                    }
                    for f in files
                ],
                "commitOid": repo.head,
            }
        )

    def _commit(self, request: Request, repo: HubRepo, base_url: str) -> Reply:
        if request.header("content-type") != "application/x-ndjson":
            return _error(400, "expected application/x-ndjson", None)
        lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            return _error(400, "first line must be the commit header", None)
        files = dict(repo.files)
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file" and value.get("encoding") == "base64":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "deletedFile":
                files.pop(value["path"], None)
            else:
                return _error(400, f"unsupported commit operation {line['key']}", None)
        request.parsed = {
            "summary": lines[0]["value"]["summary"],
            "paths": [ln["value"]["path"] for ln in lines[1:]],
        }
        sha = repo.commit(files)
        return Reply.json(
            {"success": True, "commitOid": sha, "commitUrl": f"{base_url}/{repo.repo_id}/commit/{sha}"}
        )

    def _info(self, repo: HubRepo, revision: str) -> Reply:
        snap = repo.snapshot(revision)
        if snap is None:
            return _error(404, "Revision not found", "RevisionNotFound")
        sha, files = snap
        return Reply.json(
            {
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "sha": sha,
                "private": repo.private,
                "lastModified": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "siblings": [{"rfilename": p} for p in sorted(files)],
            }
        )

    def _tree(self, repo: HubRepo, revision: str) -> Reply:
        snap = repo.snapshot(revision)
        if snap is None:
            return _error(404, "Revision not found", "RevisionNotFound")
        files = snap[1]
        dirs = sorted({p.rsplit("/", 1)[0] for p in files if "/" in p})
        entries: list[dict[str, Any]] = [
            {"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in dirs
        ]
        entries += [
            {"type": "file", "oid": git_blob_sha(c), "size": len(c), "path": p}
            for p, c in sorted(files.items())
        ]
        return Reply.json(entries)

    def _resolve(self, repo: HubRepo, revision: str, path: str) -> Reply:
        snap = repo.snapshot(revision)
        if snap is None:
            return _error(404, "Revision not found", "RevisionNotFound")
        sha, files = snap
        if path not in files:
            return _error(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        content = files[path]
        return Reply(
            200,
            content,
            {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(content)),
                "ETag": f'"{git_blob_sha(content)}"',
                "X-Repo-Commit": sha,
                "Accept-Ranges": "bytes",
            },
        )


def _error(status: int, message: str, code: str | None, headers: dict[str, str] | None = None) -> Reply:
    extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(headers or {})}
    return Reply.json({"error": message}, status, extra)
