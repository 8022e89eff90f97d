"""A loopback HuggingFace Hub: the endpoints huggingface_hub calls to create a repo, commit files
and download them (HEAD/GET resolve, repo info, tree listing). Files live in memory, one snapshot
per commit, so downloads by commit hash work.

Uploads go the way the real Hub routes them. The pre-upload answers `lfs` for binary files (what the
repo's `.gitattributes` sends to LFS, anything over 10 MB, or content that is not text) and `regular`
for the rest; huggingface_hub then uploads LFS files through the LFS batch API (`POST
{repo}.git/info/lfs/objects/batch`, a PUT to the upload action, a POST to the verify action) and
names them in the commit by sha256 oid (`lfsFile`), all as in huggingface_hub's `_commit_api.py`
(`_fetch_upload_modes`, `_upload_files`, `_prepare_commit_payload`) and `utils/lfs.py`
(`post_lfs_batch_info`, `lfs_upload`). Sources for the rules are cited beside each one.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import yaml

from fakes.server import Reply, Request

# The Hub's default `.gitattributes` for a new model repo sends these to LFS (the file every new
# repo starts with, e.g. https://huggingface.co/LysandreJik/dummy-hf-hub/blob/main/.gitattributes).
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.bin", "*.pt", "*.pth", "*.safetensors", "*.gz", "*.zip", "*.parquet", "*.npy")
)
# Files of 10 MB or more go to LFS whatever their type: huggingface_hub's upload guide ("files larger
# than 10MB" are stored with LFS; https://huggingface.co/docs/huggingface_hub/guides/upload) and the
# 10 MB file.txt shown as LFS in https://huggingface.co/LysandreJik/dummy-hf-hub/tree/main.
LFS_SIZE = 10 * 1024 * 1024
# Binary content is refused as a regular file: the Hub answers a plain git push of one with "Your
# push was rejected because it contains binary files" and asks for LFS/Xet
# (https://huggingface.co/docs/hub/xet/using-xet-storage). Worded here as the Hub words it.
BINARY_REFUSED = (
    "Your push was rejected because it contains binary files. Please use "
    "https://huggingface.co/docs/hub/xet to store binary files. Offending files: {paths}"
)
# A commit that names an LFS oid the Hub never received is refused, as git-lfs servers refuse a
# pointer to a missing object (git-lfs batch API: https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md).
MISSING_LFS = (
    "Your push was rejected because an LFS pointer pointed to a file that does not exist. "
    "Offending file: {path}"
)


def is_binary(sample: bytes) -> bool:
    """What git and the Hub call binary: a NUL byte, or bytes that are not UTF-8 text."""
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(sample) - 4  # a multi-byte character cut at the sample's end is text
    return False


def lfs_patterns(gitattributes: bytes) -> list[str]:
    """The patterns a `.gitattributes` sends through the LFS filter."""
    return [
        line.split()[0]
        for line in gitattributes.decode(errors="replace").splitlines()
        if line.strip() and not line.startswith("#") and "filter=lfs" in line.split()[1:]
    ]


def routes_to_lfs(path: str, size: int, sample: bytes, gitattributes: bytes) -> bool:
    """Whether the real Hub answers `lfs` in the pre-upload for this file."""
    name = path.rsplit("/", 1)[-1]
    matched = any(
        fnmatch.fnmatch(path, p) or ("/" not in p and fnmatch.fnmatch(name, p))
        for p in lfs_patterns(gitattributes)
    )
    return matched or size >= LFS_SIZE or is_binary(sample)


def git_blob_sha(content: bytes) -> str:
    """The id git (and the Hub, for regular files) gives a file: what ETag and tree `oid` carry."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class HubRepo:
    repo_id: str
    private: bool
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)  # (sha, files) oldest first
    lfs: dict[str, str] = field(default_factory=dict)  # path → sha256 oid, for files committed as LFS

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
    lfs_store: dict[str, bytes] = field(default_factory=dict)  # sha256 oid → content, once verified
    lfs_uploaded: dict[str, bytes] = field(default_factory=dict)  # PUT, not yet verified

    def handle(self, request: Request, base_url: str) -> Reply:
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        if parts[:1] == ["lfs-upload"] and request.method == "PUT":
            # The upload action's href is pre-signed storage (S3 on the real Hub): no Authorization
            # header is sent to it (huggingface_hub utils/lfs.py `_upload_single_part`).
            return self._lfs_put(request, parts[1])
        if request.header("authorization") != f"Bearer {self.token}":
            return _error(401, "Invalid credentials in Authorization header", None)
        if len(parts) >= 3 and parts[1].endswith(".git") and parts[2:4] == ["info", "lfs"]:
            repo = self.repos.get(f"{parts[0]}/{parts[1].removesuffix('.git')}")
            if repo is None:
                return _error(404, "Repository not found", "RepoNotFound")
            return self._lfs(request, parts[4:], base_url, f"{parts[0]}/{parts[1]}")
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
        repo.commit({".gitattributes": DEFAULT_GITATTRIBUTES.encode()})
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
        attributes = repo.files.get(".gitattributes", b"")
        modes = {
            f["path"]: "lfs"
            if routes_to_lfs(f["path"], f["size"], base64.b64decode(f["sample"]), attributes)
            else "regular"
            for f in files
        }
        request.parsed = {"modes": modes}
        return Reply.json(
            {
                "files": [
                    {
                        "path": f["path"],
                        "uploadMode": modes[f["path"]],
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
        files, lfs = dict(repo.files), dict(repo.lfs)
        binary = []
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file" and value.get("encoding") == "base64":
                content = base64.b64decode(value["content"])
                if routes_to_lfs(
                    value["path"], len(content), content[:512], files.get(".gitattributes", b"")
                ):
                    binary.append(value["path"])
                files[value["path"]] = content
                lfs.pop(value["path"], None)
            elif line["key"] == "lfsFile":
                content = self.lfs_store.get(value["oid"])
                if content is None or value.get("algo") != "sha256":
                    return _error(400, MISSING_LFS.format(path=value["path"]), None)
                files[value["path"]] = content
                lfs[value["path"]] = value["oid"]
            elif line["key"] == "deletedFile":
                files.pop(value["path"], None)
                lfs.pop(value["path"], None)
            else:
                return _error(400, f"unsupported commit operation {line['key']}", None)
        if binary:
            return _error(400, BINARY_REFUSED.format(paths=", ".join(binary)), None)
        request.parsed = {
            "summary": lines[0]["value"]["summary"],
            "paths": [ln["value"]["path"] for ln in lines[1:]],
            "lfs": {ln["value"]["path"]: ln["value"]["oid"] for ln in lines[1:] if ln["key"] == "lfsFile"},
        }
        sha = repo.commit(files)
        repo.lfs = lfs
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
            | ({"lfs": {"oid": repo.lfs[p], "size": len(c), "pointerSize": 134}} if p in repo.lfs else {})
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
        # An LFS file's HEAD carries its sha256 as X-Linked-Etag (huggingface_hub file_download.py
        # reads it before ETag); no X-Xet-Hash, so downloads stay plain HTTP too.
        linked = (
            {"X-Linked-Etag": f'"{repo.lfs[path]}"', "X-Linked-Size": str(len(content))}
            if path in repo.lfs
            else {}
        )
        return Reply(
            200,
            content,
            {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(content)),
                "ETag": f'"{git_blob_sha(content)}"',
                "X-Repo-Commit": sha,
                "Accept-Ranges": "bytes",
                **linked,
            },
        )

    # --- LFS: the batch API, the upload action, the verify action -----------------------------------
    def _lfs(self, request: Request, rest: list[str], base_url: str, git_repo: str) -> Reply:
        if request.method == "POST" and rest == ["objects", "batch"]:
            return self._lfs_batch(request, base_url, git_repo)
        if request.method == "POST" and rest == ["objects", "verify"]:
            body = request.json()
            content = self.lfs_uploaded.get(body["oid"])
            if content is None or len(content) != body["size"]:
                return _error(404, f"object {body['oid']} was not uploaded", None)
            self.lfs_store[body["oid"]] = self.lfs_uploaded.pop(body["oid"])
            return Reply.json({"success": True})
        return _error(404, f"no route for {request.method} {request.path}", None)

    def _lfs_batch(self, request: Request, base_url: str, git_repo: str) -> Reply:
        """The git-lfs batch API (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md).

        The server picks one of the client's `transfers`; the fake always picks `basic` and never
        `xet`: huggingface_hub (`_commit_api._upload_files`) offers "xet" when hf_xet is installed
        and uploads through Xet only when the server answers `"transfer": "xet"`, and a Xet upload
        needs a CAS server this fake does not have. Objects already stored get no actions.
        """
        body = request.json()
        if body.get("operation") != "upload" or "basic" not in body.get("transfers", ["basic"]):
            return _error(422, "only basic uploads are supported", None)
        if body.get("hash_algo", "sha256") != "sha256":
            return _error(409, "unsupported hash algorithm", None)
        request.parsed = {"oids": [o["oid"] for o in body["objects"]], "transfers": body.get("transfers")}
        objects = []
        for obj in body["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_store:
                entry["actions"] = {
                    "upload": {"href": f"{base_url}/lfs-upload/{obj['oid']}", "expires_in": 86400},
                    "verify": {"href": f"{base_url}/{git_repo}/info/lfs/objects/verify"},
                }
            objects.append(entry)
        return Reply(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_put(self, request: Request, oid: str) -> Reply:
        """The basic transfer's upload action: the body must hash to the oid it was asked for."""
        if hashlib.sha256(request.body).hexdigest() != oid:
            return _error(400, f"content does not match oid {oid}", None)
        self.lfs_uploaded[oid] = request.body
        return Reply(200)


def _error(status: int, message: str, code: str | None, headers: dict[str, str] | None = None) -> Reply:
    extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(headers or {})}
    return Reply.json({"error": message}, status, extra)
