"""The launch → pod contract: everything a pod is told, as one typed object and its environment.

`haha launch` builds a `PodEnv` and ships `to_env()` as the pod's environment; inside the pod,
`haha pod` and `haha pod-terminate` read it back with `from_env()`, through `Settings.pod_env`
(settings is the one reader of the environment). Settings itself reads HAHA_RUN_ARGV and HAHA_REPO_URL
for the launching side, and fills in the pod id and HAHA_BOOT_EPOCH; no other Python module spells
these names. boot.sh, being bash, reads the few it needs to clone (HAHA_BASENAME, HAHA_REF,
HAHA_REPO_URL, HAHA_CHECKOUT, HAHA_BOOT_LOG, HAHA_PYTHON). Secrets are not part of it: they travel
beside it in `PodSpec.secrets`, so nothing here is ever secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from haha import clock
from haha.clock import stamp
from haha.errors import InputError
from haha.phases import Prediction

Mode = Literal["train", "eval"]
# Plain settings passed through from where `haha launch` runs, so a pod talks to the same services
# (a GitHub Enterprise API, a Hub mirror) and W&B entity as the workflow that launched it.
PASS_THROUGH = ("WANDB_MODE", "WANDB_ENTITY", "GITHUB_API_URL", "GITHUB_SERVER_URL", "HF_ENDPOINT")


@dataclass(frozen=True)
class LocalPod:
    """Where a pod on this machine keeps its files (compute `local`): all under the launching repo."""

    compute_root: str
    checkout: str
    boot_log: str
    store_path: str
    python: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class PodEnv:
    basename: str
    mode: Mode
    ref: str
    repo_url: str
    deadline: datetime
    pod_name: str
    compute: Literal["runpod", "local"]
    store: Literal["local", "hf"]
    boot_b64: str = ""
    pr: int | None = None
    run_argv: tuple[str, ...] | None = None  # replaces `haha run|eval` (tests inject faults with it)
    passed: dict[str, str] = field(default_factory=dict)
    local: LocalPod | None = None
    # Why a manual launch went over the monthly spend limit (haha.toml [budget]): kept with the pod.
    budget_override: str | None = None
    # A shared pod: every config it runs, in order (`basename` is the one running now); () otherwise.
    basenames: tuple[str, ...] = ()
    # When launch asked for the pod (unix seconds: billing starts about then) and what the gate predicted
    # it would cost: the run's meta.phases.boot and meta.cost.predicted_* (haha.phases).
    launched_at: float | None = None
    prediction: Prediction | None = None
    # Interruptible pods (haha.resume): this pod may be preempted (its checkpoints go to the store);
    # it resumes a preempted run from the run's last checkpoint; the run's preemptions so far.
    interruptible: bool = False
    resume: bool = False
    preemptions: int = 0
    # Set by the provider, not by launch: which pod this is, and when its container started.
    pod_id: str | None = None
    gpu_count: int | None = None
    boot_epoch: float | None = None

    @property
    def waited_its_turn(self) -> bool:
        """A later config of a shared pod: the pod's boot was billed to the first config, not to it."""
        return bool(self.basenames) and self.basename != self.basenames[0]

    def to_env(self) -> dict[str, str]:
        env = {
            "HAHA_BASENAME": self.basename,
            "HAHA_MODE": self.mode,
            "HAHA_REF": self.ref,
            "HAHA_REPO_URL": self.repo_url,
            "HAHA_DEADLINE": stamp(self.deadline),
            "HAHA_POD_NAME": self.pod_name,
            "HAHA_COMPUTE": self.compute,
            "HAHA_STORE": self.store,
            "JUPYTER_DISABLE": "1",  # images derived from axolotl-cloud start Jupyter otherwise
            "AXOLOTL_DO_NOT_TRACK": "1",
            **self.passed,
        }
        if self.boot_b64:
            env["HAHA_BOOT"] = self.boot_b64
        if self.pr is not None:
            env["HAHA_PR"] = str(self.pr)
        if self.budget_override:
            env["HAHA_BUDGET_OVERRIDE"] = self.budget_override
        if self.basenames:
            env["HAHA_BASENAMES"] = ",".join(self.basenames)
        if self.launched_at is not None:
            env["HAHA_LAUNCHED_AT"] = f"{self.launched_at:.3f}"
        if self.prediction is not None:
            env["HAHA_PREDICTED"] = json.dumps(self.prediction.to_dict())
        if self.run_argv is not None:
            env["HAHA_RUN_ARGV"] = json.dumps(list(self.run_argv))
        env |= self._resume_env()
        if self.local is not None:
            env |= {
                "HAHA_COMPUTE_ROOT": self.local.compute_root,
                "HAHA_CHECKOUT": self.local.checkout,
                "HAHA_BOOT_LOG": self.local.boot_log,
                "HAHA_STORE_PATH": self.local.store_path,
                "HAHA_PYTHON": self.local.python,
                "HAHA_POD_ARGV": json.dumps(list(self.local.argv)),
            }
        return env

    def _resume_env(self) -> dict[str, str]:
        env = {"HAHA_INTERRUPTIBLE": "1"} if self.interruptible else {}
        if self.resume:
            env |= {"HAHA_RESUME": "1", "HAHA_PREEMPTIONS": str(self.preemptions)}
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str], basename: str, now: datetime, default_hours: float) -> PodEnv:
        """Read a pod's environment. `haha pod NAME` also runs by hand, so only the name is required."""
        mode = env.get("HAHA_MODE") or "train"
        if mode not in ("train", "eval"):
            raise InputError(f"HAHA_MODE must be train or eval, not {mode!r}", field="HAHA_MODE")
        local = None
        if env.get("HAHA_COMPUTE_ROOT"):
            local = LocalPod(
                compute_root=env["HAHA_COMPUTE_ROOT"],
                checkout=env.get("HAHA_CHECKOUT", ""),
                boot_log=env.get("HAHA_BOOT_LOG", ""),
                store_path=env.get("HAHA_STORE_PATH", ""),
                python=env.get("HAHA_PYTHON", ""),
                argv=tuple(argv_from_env(env["HAHA_POD_ARGV"], "HAHA_POD_ARGV"))
                if env.get("HAHA_POD_ARGV")
                else (),
            )
        compute = env.get("HAHA_COMPUTE") or ("runpod" if env.get("RUNPOD_POD_ID") else "local")
        return cls(
            basename=env.get("HAHA_BASENAME") or basename,
            mode=mode,  # type: ignore[arg-type]
            ref=env.get("HAHA_REF", ""),
            repo_url=env.get("HAHA_REPO_URL", ""),
            deadline=parse_deadline(env.get("HAHA_DEADLINE"), now, default_hours),
            pod_name=env.get("HAHA_POD_NAME", ""),
            compute="runpod" if compute == "runpod" else "local",
            store="hf" if env.get("HAHA_STORE") == "hf" else "local",
            boot_b64=env.get("HAHA_BOOT", ""),
            pr=_int(env, "HAHA_PR"),
            run_argv=tuple(argv_from_env(env["HAHA_RUN_ARGV"], "HAHA_RUN_ARGV"))
            if env.get("HAHA_RUN_ARGV")
            else None,
            passed=passed_through(env),
            local=local,
            budget_override=env.get("HAHA_BUDGET_OVERRIDE") or None,
            basenames=tuple(b for b in env.get("HAHA_BASENAMES", "").split(",") if b),
            gpu_count=_int(env, "RUNPOD_GPU_COUNT"),
            launched_at=_float(env, "HAHA_LAUNCHED_AT"),
            prediction=_prediction(env.get("HAHA_PREDICTED", "")),
            interruptible=env.get("HAHA_INTERRUPTIBLE") == "1",
            resume=env.get("HAHA_RESUME") == "1",
            preemptions=_int(env, "HAHA_PREEMPTIONS") or 0,
        )


def passed_through(env: Mapping[str, str]) -> dict[str, str]:
    """The PASS_THROUGH settings set where launch runs."""
    return {k: env[k] for k in PASS_THROUGH if env.get(k)}


def parse_deadline(value: str | None, now: datetime, default_hours: float) -> datetime:
    """HAHA_DEADLINE (ISO 8601; `Z` allowed) or, when unset, `now` + the configured hours."""
    if not value:
        return now + timedelta(hours=default_hours)
    parsed = clock.parse(value)
    if parsed is None:
        raise InputError(f"HAHA_DEADLINE is not an ISO time: {value!r}", field="HAHA_DEADLINE")
    return parsed


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise InputError(f"{name} must be a whole number, not {raw!r}", field=name) from exc


def _float(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise InputError(f"{name} must be a number, not {raw!r}", field=name) from exc


def _prediction(raw: str) -> Prediction | None:
    """HAHA_PREDICTED: a JSON object {seconds, dollars, from}; anything else means none was recorded."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    return Prediction.from_dict(data) if isinstance(data, dict) else None


def argv_from_env(raw: str, name: str) -> list[str]:
    """A command line given in an environment variable as a JSON list of strings."""
    try:
        argv = json.loads(raw)
    except ValueError:
        argv = None
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise InputError(f"{name} must be a non-empty JSON list of strings", field=name)
    return argv
