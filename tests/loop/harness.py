"""The GitOps loop on one machine: the repo's own workflows under `act`, against loopback fakes.

One `Loop` per test: a temporary repository (this working tree, committed as `main`) served by the
HTTPS GitHub fake (REST, GraphQL, git smart HTTP), a HF Hub fake, and a RunPod fake whose pods run on
this machine (`bash -c <image start command>` with the image's env: this checkout's .venv first on
PATH, the CA trusted, work folders under the test's tmp). Workflows run with `act` in host mode, the
third-party actions from `tests/loop/actions/` at the SHAs the workflows pin, and a HOME of the
test's own whose tool cache holds the session's prepared Python (see `prepare_tool_cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from fakes.github_git import CA, GitHubGitFake, GitHubServer  # noqa: E402
from fakes.github_rest import Grant, job_permissions  # noqa: E402
from fakes.hf_hub import HubFake  # noqa: E402
from fakes.runpod_graphql import PodStarter, RunPodFake, serve_runpod  # noqa: E402
from fakes.server import Request, serve  # noqa: E402

ACTIONS = Path(__file__).resolve().parent / "actions"  # vendored: github.com is out of reach here and in CI
VENV_BIN = ROOT / ".venv" / "bin"
ACT = VENV_BIN / "act"
REPO = "synagi/haha"
PYTHON_VERSION = "3.11.7"  # what setup-python's `python-version: "3.11"` resolves to in the tool cache
IMAGE = "ghcr.io/synagi/haha-pod@sha256:" + "0123456789abcdef" * 4

# Tokens the GitHub fake accepts, and who each one is.
WORKFLOW_TOKEN = "ghs_workflow_token"  # the job's GITHUB_TOKEN (github-actions[bot])
BOT_TOKEN = "ghs_bot_app_token"  # HAHA_BOT_TOKEN (a GitHub App)
DISPATCH_TOKEN = "github_pat_dispatch"  # HAHA_DISPATCH_TOKEN: what pods notify with
USER_TOKEN = "ghp_octocat"  # a person
TOKENS = {
    WORKFLOW_TOKEN: "github-actions[bot]",
    BOT_TOKEN: "haha-bot[bot]",
    DISPATCH_TOKEN: "haha-dispatch",
    USER_TOKEN: "octocat",
}
# What each token may do. The workflow token's permissions are the job's (see `peer_job`); the
# others are what README's set-up asks for: the bot (an App token minted in the workflow, or a
# fine-grained PAT) contents + pull requests write, the dispatch PAT contents write.
GRANTS = {
    WORKFLOW_TOKEN: Grant("workflow"),
    BOT_TOKEN: Grant("app", {"contents": "write", "pull-requests": "write"}),
    DISPATCH_TOKEN: Grant("pat", {"contents": "write"}),
    USER_TOKEN: Grant("user"),
}
RUNPOD_KEY = "rp-account-key"
HF_TOKEN = "hf_test_token"
WANDB_KEY = "0123456789abcdef" * 2 + "01234567"  # wandb checks the length (40), even offline
SECRETS = {
    "GITHUB_TOKEN": WORKFLOW_TOKEN,
    "RUNPOD_API_KEY": RUNPOD_KEY,
    "HF_TOKEN": HF_TOKEN,
    "WANDB_API_KEY": WANDB_KEY,
    "HAHA_DISPATCH_TOKEN": DISPATCH_TOKEN,
    "HAHA_BOT_TOKEN": BOT_TOKEN,
}
_IDENTITY = ("-c", "user.name=octocat", "-c", "user.email=octocat@example.com")


# --- the session's tool cache: the Python setup-python finds ------------------------------------
def prepare_tool_cache(cache_root: Path) -> Path:
    """A bare venv at `<cache>/Python/<version>/x64`, as a runner image's Python (reused per version).

    Returns the tool cache folder (act's RUNNER_TOOL_CACHE). Built with this interpreter's base
    Python; the workflows install haha into venvs of their own (tools/install-env.sh), never into it.
    """
    key = hashlib.sha256(sys.version.encode()).hexdigest()[:12]
    tool_cache = cache_root / f"tool_cache-{key}"
    venv = tool_cache / "Python" / PYTHON_VERSION / "x64"
    marker = tool_cache / "Python" / PYTHON_VERSION / "x64.complete"
    if marker.exists():
        return tool_cache
    for old in cache_root.glob("tool_cache-*"):  # another Python, or a half-built one
        shutil.rmtree(old, ignore_errors=True)
    venv.parent.mkdir(parents=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    marker.touch()
    return tool_cache


# --- uv for the workflows' install steps ----------------------------------------------------------
GATE_LOCK = ROOT / "requirements" / "gate.txt"  # what the workflows install: the pinned light set


def prepare_uv(cache_root: Path) -> dict[str, str]:
    """The env under which the workflows' `tools/install-env.sh VENV gate` runs offline, in seconds.

    The uv that tools/uv-env.sh picks, and a uv cache that holds the gate set and the build backend:
    filled once by the same install (from PyPI), again only when gate.txt or pyproject.toml change.
    """
    uv = subprocess.run(
        ["bash", "-c", ". tools/uv-env.sh && uv_bin"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {"HAHA_UV": uv, "UV_CACHE_DIR": str(cache_root / "uv-cache")}
    inputs = GATE_LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    marker = cache_root / f"uv-cache-{hashlib.sha256(inputs).hexdigest()[:12]}.complete"
    if not marker.exists():
        venv = cache_root / "uv-warm-venv"
        shutil.rmtree(venv, ignore_errors=True)
        out = subprocess.run(
            [str(ROOT / "tools" / "install-env.sh"), str(venv), "gate"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise RuntimeError(f"filling the uv cache failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
        shutil.rmtree(venv)
        marker.touch()
    return env | {"UV_OFFLINE": "1"}


# --- recorded act runs ------------------------------------------------------------------------
@dataclass
class ActRun:
    event: str
    workflow: str
    rc: int
    output: str
    seconds: float

    def annotations(self, level: str = "error") -> list[dict[str, str]]:
        """`::error file=…,line=…::message` workflow commands the steps printed (the wire format)."""
        found = []
        for match in re.finditer(rf"::{level} (?P<props>[^:]*)::(?P<msg>[^\n]*)", self.output):
            props = dict(p.split("=", 1) for p in match["props"].split(",") if "=" in p)
            found.append({**props, "message": match["msg"]})
        return found


# --- the loop ---------------------------------------------------------------------------------
@dataclass
class Loop:
    tmp: Path
    tool_cache: Path
    hf_cache: Path
    github: GitHubGitFake = field(init=False)
    github_server: GitHubServer = field(init=False)
    hub: HubFake = field(init=False)
    hub_url: str = field(init=False)
    runpod: RunPodFake = field(init=False)
    runpod_url: str = field(init=False)
    work: Path = field(init=False)  # a person's clone (origin = the fake)
    runs: list[ActRun] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)  # --env for every act run
    server_seconds: float = 1500  # how long the fakes serve (a pod that trains twice needs longer)
    _stack: ExitStack = field(default_factory=ExitStack)
    _ca: CA = field(init=False)

    # setup / teardown
    def start(self, prepare: Callable[[Path], None] | None = None) -> Loop:
        src = self.tmp / "src"
        make_source_repo(src)
        if prepare:
            prepare(src)
            commit_all(src, "test: base state")
        self._ca = CA(self.tmp / "ca")
        self.github = GitHubGitFake(
            repo=REPO, git_root=self.tmp / "github", tokens=dict(TOKENS), grants=dict(GRANTS), job_of=peer_job
        )
        self.github.init_from(src)
        seconds = self.server_seconds
        server = GitHubServer(self.github, self._ca, max_seconds=seconds)
        self.github_server = self._stack.enter_context(server)
        self.hub, self.hub_url = self._stack.enter_context(serve(HubFake(token=HF_TOKEN), seconds))
        starter = PodStarter(
            start_command=_start_command(),
            image_env=self.image_env(),
            log_dir=self.tmp / "pods" / "logs",
        )
        self.runpod = RunPodFake(
            api_key=RUNPOD_KEY, starter=starter, prices=_prices(src), registry_auths=registry_auths()
        )
        _, self.runpod_url = self._stack.enter_context(serve_runpod(self.runpod, self.server_seconds))
        starter.image_env["RUNPOD_API_BASE_URL"] = self.runpod_url
        self.work = self.tmp / "work"
        self.git("clone", "-q", self.github.clone_url(), str(self.work), cwd=self.tmp)
        return self

    def close(self) -> None:
        self._stack.close()

    @property
    def ca(self) -> CA:
        return self._ca

    def image_env(self) -> dict[str, str]:
        """The env the pod image brings: its Python (this checkout's .venv) first, the CA, tmp dirs."""
        pods = self.tmp / "pods"
        return {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(pods / "home"),
            "LANG": "C.UTF-8",
            "HF_HUB_CACHE": str(self.hf_cache),
            "HAHA_WORKDIR": str(pods / "work-{pod_id}"),  # each pod its own disk, as on RunPod
            "HAHA_CHECKOUT": str(pods / "checkout-{pod_id}"),
            "HAHA_BOOT_LOG": str(pods / "logs" / "{pod_id}.boot.log"),
            "WANDB_MODE": "offline",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "2",
            "HAHA_RETRY_BACKOFF_S": "0.1",  # failing terminates and publishes retry without 2 s waits
            **self._ca.env(),
        }

    # git as a person
    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {
            **os.environ,
            **self.ca.env(),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.tmp),
        }
        out = subprocess.run(
            ["git", *args], cwd=cwd or self.work, env=env, capture_output=True, text=True, timeout=120
        )
        if out.returncode:
            raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def push_branch(self, branch: str, files: dict[str, str | None], message: str, base: str = "main") -> str:
        """Commit `files` (None deletes) on `branch` (from `base`) and push it; the new head sha."""
        self.fetch()
        if branch == base or self.github.rev(f"refs/heads/{branch}"):
            self.git("checkout", "-q", "-B", branch, f"origin/{branch}")
        else:
            self.git("checkout", "-q", "-B", branch, f"origin/{base}")
        for rel, text in files.items():
            path = self.work / rel
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        self.git("add", "-A")
        self.git(*_IDENTITY, "commit", "-q", "-m", message)
        self.git("push", "-q", str(self.github.bare), f"HEAD:refs/heads/{branch}")
        self.fetch()
        return self.git("rev-parse", "HEAD").strip()

    def fetch(self) -> None:
        """origin's branches, read from the bare repo directly (so injected git faults hit pods only)."""
        self.git("fetch", "-q", "--prune", str(self.github.bare), "+refs/heads/*:refs/remotes/origin/*")

    def checkout(self, ref: str) -> str:
        """Put the person's clone at `ref` (what act runs on); its sha."""
        self.fetch()
        target = ref if re.fullmatch(r"[0-9a-f]{40}", ref) else f"origin/{ref}"
        branch = ref if not re.fullmatch(r"[0-9a-f]{40}", ref) else "detached"
        self.git("checkout", "-q", "-B", branch, target)
        return self.git("rev-parse", "HEAD").strip()

    def merge(self, number: int) -> str:
        sha = self.github.merge_pull(number, self.tmp / "merge")
        self.checkout("main")
        return sha

    # workflows
    def act(
        self,
        event: str,
        workflow: str,
        payload: dict[str, Any],
        secrets: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 420,
    ) -> ActRun:
        """Run `.github/workflows/<workflow>` for `event` on the clone's current commit."""
        self.github.job_permissions = workflow_permissions(self.work / ".github" / "workflows" / workflow)
        home = self.tmp / f"act-home-{len(self.runs)}"
        (home / ".cache" / "act").mkdir(parents=True)
        (home / ".cache" / "act" / "tool_cache").symlink_to(self.tool_cache)
        event_file = self.tmp / f"event-{len(self.runs)}.json"
        event_file.write_text(json.dumps(payload))
        args = [
            str(ACT),
            event,
            "-W",
            f".github/workflows/{workflow}",
            "-e",
            str(event_file),
            "-P",
            "ubuntu-24.04=-self-hosted",
            "--action-offline-mode",
            "--github-instance",
            self.github_server.host,
            "--defaultbranch",
            "main",
            "--no-cache-server",
            *[a for spec in local_actions() for a in ("--local-repository", spec)],
        ]
        for name, value in (SECRETS if secrets is None else secrets).items():
            args += ["-s", f"{name}={value}"]
        run_env = {
            **self.ca.env(),
            "HF_ENDPOINT": self.hub_url,
            "RUNPOD_API_BASE_URL": self.runpod_url,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "WANDB_MODE": "offline",
            **self.extra_env,
            **(env or {}),
        }
        for name, value in run_env.items():
            args += ["--env", f"{name}={value}"]
        proc_env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            **self.ca.env(),
        }
        started = time.monotonic()
        proc = subprocess.Popen(
            args,
            cwd=self.work,
            env=proc_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # act and every step it runs: one group to end on a timeout
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            output += f"\n[loop harness: act killed after {timeout:.0f}s]"
        run = ActRun(event, workflow, proc.returncode, output, time.monotonic() - started)
        self.runs.append(run)
        (self.tmp / f"act-{len(self.runs) - 1}-{event}-{workflow}.log").write_text(run.output)
        return run

    # events (payload shapes as GitHub sends them, trimmed to what the workflows read)
    def repository(self) -> dict[str, Any]:
        return {
            "full_name": REPO,
            "name": REPO.split("/")[1],
            "owner": {"login": REPO.split("/")[0]},
            "default_branch": "main",
        }

    def pull_request_event(self, number: int) -> dict[str, Any]:
        pull = self.github.pulls[number]
        head_sha = self.github.rev(f"refs/heads/{pull['head']['ref']}")
        refuse_untriggered(self.github, head_sha, pull)
        return {
            "action": "synchronize",
            "number": number,
            "pull_request": {
                "number": number,
                "head": {"ref": pull["head"]["ref"], "sha": head_sha, "repo": {"full_name": REPO}},
                "base": {"ref": pull["base"]["ref"], "repo": {"full_name": REPO}},
            },
            "repository": self.repository(),
        }

    def push_event(self, before: str, after: str) -> dict[str, Any]:
        refuse_untriggered(self.github, after)
        return {"ref": "refs/heads/main", "before": before, "after": after, "repository": self.repository()}

    def dispatch_event(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "action": payload.get("event_type", "haha-run-finished"),
            "client_payload": payload.get("client_payload", {}),
            "repository": self.repository(),
        }

    def schedule_event(self, cron: str) -> dict[str, Any]:
        return {"schedule": cron, "repository": self.repository()}

    # waiting on pods
    def wait_pods_gone(self, timeout: float) -> None:
        """Until every pod the fake started is terminated and its processes have exited."""
        deadline = time.monotonic() + timeout
        starter = self.runpod.starter
        assert starter is not None
        while time.monotonic() < deadline:
            if not self.runpod.pods and not self.runpod.clusters and not starter.running():
                return
            time.sleep(0.5)
        raise AssertionError(
            f"pods still up after {timeout:.0f}s: {sorted(self.runpod.pods)}, clusters "
            f"{sorted(self.runpod.clusters)}; running {starter.running()}\n" + self.pod_logs()
        )

    def pod_logs(self) -> str:
        logs = sorted((self.tmp / "pods" / "logs").glob("*.log"))
        return "\n".join(f"=== {p.name}\n{p.read_text()[-6000:]}" for p in logs)


# --- one token per job ---------------------------------------------------------------------------
# act hands every job of a run the same GITHUB_TOKEN secret, while on GitHub each job's token carries
# that job's `permissions:`. The fake therefore asks which job a request came from: the peer of its
# TCP connection is a process a step started (a `run:` shell's curl/python, an action's node, git),
# and act gives every step process GITHUB_JOB. The client waits on the open connection for the
# answer, so the process is there to ask. This keeps one act run per workflow (jobs' outputs and
# `needs` work as on GitHub), where running each job alone with `act -j` would run its `needs` too.
def peer_job(request: Request) -> str | None:
    """The GITHUB_JOB of the process on the other end of `request`'s connection, if any."""
    import psutil

    host, port = request.client
    for conn in psutil.net_connections(kind="tcp"):  # tcp6 too: a dual-stack client shows ::ffff:127.0.0.1
        if conn.pid and conn.laddr and conn.laddr.port == port and conn.laddr.ip.endswith(host):
            try:
                return psutil.Process(conn.pid).environ().get("GITHUB_JOB")
            except psutil.Error:
                return None
    return None


def workflow_permissions(path: Path) -> dict[str, dict[str, str]]:
    """Each job's GITHUB_TOKEN permissions in the workflow file, resolved as GitHub does."""
    import yaml

    return job_permissions(yaml.safe_load(path.read_text()))


def refuse_untriggered(github: GitHubGitFake, sha: str | None, pull: dict[str, Any] | None = None) -> None:
    """GitHub starts no workflow for a push or PR made with a workflow's GITHUB_TOKEN: neither may a test."""
    for push in github.pushes:
        if not push["triggers_workflows"] and any(new == sha for _, new, _ in push["refs"]):
            raise AssertionError(
                f"{sha} was pushed with a workflow's GITHUB_TOKEN: GitHub starts no workflow"
            )
    if pull is not None and not pull.get("triggers_workflows", True) and pull.get("opened_at_sha") == sha:
        raise AssertionError(
            f"PR #{pull['number']} was opened with a workflow's GITHUB_TOKEN: no pull_request event"
        )


def _start_command() -> str:
    from haha.launch import START_COMMAND

    return START_COMMAND


def _prices(src: Path) -> dict[str, float]:
    settings = tomllib.loads((src / "haha.toml").read_text())
    return {g["id"]: g["price_per_hour"] for g in settings["compute"]["gpu_types"]}


def local_actions() -> list[str]:
    """`owner/name@sha=<folder>` for each pinned action in tests/loop/actions."""
    return [f"{d.parent.name}/{d.name}={d}" for d in sorted(ACTIONS.glob("*/*@*")) if d.is_dir()]


# --- the repository under test ------------------------------------------------------------------
def make_source_repo(dest: Path) -> None:
    """This working tree (tracked and untracked, not ignored files) as a fresh git repo on `main`.

    Adjusted as a GitHub deployment of it would be: `github_repo` names the fake's repository, the
    pod image is pinned by digest, and only configs that have results are on main (so a push plans
    exactly what the test adds).
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if rel.startswith(("tests/", "bench/")) or not (src.is_symlink() or src.is_file()):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():  # as git stores it: the link itself
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    # The pod scripts the fault scenarios run (HAHA_RUN_ARGV) come from this checkout, not the clone.
    for config in (dest / "train" / "config").glob("*.yml"):
        if not (dest / "train" / "results" / f"{config.stem}.json").exists():
            config.unlink()
    toml = (dest / "haha.toml").read_text()
    toml = re.sub(r'(?m)^github_repo = "[^"]*"', f'github_repo = "{REPO}"', toml)
    toml = re.sub(r'(?m)^image = "[^"]*"', f'image = "{IMAGE}"', toml)
    (dest / "haha.toml").write_text(with_registry_auth(toml))
    subprocess.run(["git", "init", "-q", "-b", "main", str(dest)], check=True)
    commit_all(dest, "Haha at the commit under test")


# RunPod registry credentials for the private GHCR image, as the README's set-up creates them.
REGISTRY_AUTH = "cr-haha-ghcr"


def registry_auths() -> dict[str, str]:
    """The credentials the RunPod fake's account holds: id → the registry where they are valid."""
    return {REGISTRY_AUTH: IMAGE.split("/", 1)[0]}


def with_registry_auth(toml: str) -> str:
    """haha.toml naming those credentials, so the private image pulls."""
    return re.sub(r'(?m)^registry_auth_id = "[^"]*"', f'registry_auth_id = "{REGISTRY_AUTH}"', toml)


def commit_all(dest: Path, message: str) -> None:
    subprocess.run(["git", "-C", str(dest), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(dest), *_IDENTITY, "commit", "-q", "--allow-empty", "-m", message], check=True
    )


@contextmanager
def loop(
    tmp: Path,
    tool_cache: Path,
    hf_cache: Path,
    prepare: Callable[[Path], None] | None = None,
    server_seconds: float = 1500,
) -> Iterator[Loop]:
    the_loop = Loop(tmp, tool_cache, hf_cache, server_seconds=server_seconds)
    try:
        yield the_loop.start(prepare)
    finally:
        the_loop.close()
