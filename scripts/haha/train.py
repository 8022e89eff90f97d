"""Turning an Experiment into a real Axolotl run: localized config, W&B naming, CPU overrides, logs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from haha.clock import now
from haha.cluster import ClusterNode
from haha.errors import RunFailed
from haha.experiment import Experiment
from haha.repo import Repo
from haha.settings import Settings
from haha.teed import Teed
from haha.workspace import localize

# Keys that make Axolotl assume CUDA (shared/NOTES.md: verified on Axolotl 0.19.0, CPU only).
CPU_OVERRIDES: dict[str, Any] = {
    "lora_mlp_kernel": False,
    "lora_qkv_kernel": False,
    "lora_o_kernel": False,
    "bf16": False,
    "fp16": False,
    "tf32": False,
    "flash_attention": False,
    "sample_packing": False,
    "load_in_8bit": False,
}
CPU_DROPPED = ("deepspeed", "fsdp", "fsdp_config", "fsdp_version")
# Keys naming a file the launcher reads (DeepSpeed JSON); relative values are paths in the repo.
CONFIG_FILE_KEYS = ("deepspeed",)
# Several CPU processes: Axolotl's DDP path with torch's gloo backend, plus the one placement fix
# Axolotl 0.19.0 needs there (haha.cpu_ddp). Recorded in meta.cpu_overrides like the keys above.
CPU_DDP_PLUGIN = "haha.cpu_ddp.CpuDdpPlugin"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")

_STEP = re.compile(r"^\s*\d+%\|[^|]*\|\s*(\d+)/(\d+) \[")  # the Trainer's bar; dataset bars have a label
_LOSS = re.compile(r"""['"]loss['"]:\s*'?([\d.]+)""")
_EVAL_LOSS = re.compile(r"""['"]eval_loss['"]:\s*'?([\d.]+)""")
# Axolotl logs running totals with each loss line: every token processed, and the supervised ones.
_TOKENS = re.compile(r"""['"]tokens/total['"]:\s*'?(\d+)""")
_SUPERVISED = re.compile(r"""['"]tokens/trainable['"]:\s*'?(\d+)""")
_OOM = ("out of memory", "outofmemoryerror", "cannot allocate memory")


@dataclass(frozen=True)
class Device:
    kind: str  # "cuda" or "cpu"
    count: int
    name: str
    memory_gib: float | None = None  # of one GPU (the one eval runs on)

    @classmethod
    def detect(cls) -> Device:
        import torch

        if torch.cuda.is_available():
            memory = torch.cuda.get_device_properties(0).total_memory / 1024**3
            return cls("cuda", torch.cuda.device_count(), torch.cuda.get_device_name(0), memory)
        import platform

        return cls("cpu", 1, platform.processor() or platform.machine())

    def __str__(self) -> str:
        return f"{self.count}x {self.name}" if self.kind == "cuda" else f"cpu ({self.name})"


@dataclass(frozen=True)
class TrainOutcome:
    adapter_dir: Path
    seconds: float
    tokens_trained: int | None  # every token the model processed (prompts, padding included)
    log_file: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    tokens_supervised: int | None = None  # the punchline tokens the loss was taken on
    skipped: bool = False
    wandb_run_id: str | None = None  # the W&B run that holds this adapter's training curves
    first_step_at: float | None = None  # unix time of the first logged training step (this attempt)
    processes: int = 1  # training processes, one per GPU (haha.gpus)
    nodes: int = 1  # machines that trained together (haha.nodes); node 0 evaluates and publishes
    resumed: dict[str, Any] | None = None  # a preempted run resumed here: results meta.resumed


def output_dir_for(exp: Experiment, repo: Repo, workdir: Path) -> Path:
    """Where Axolotl writes this experiment's adapter on this machine."""
    return Path(localize({"output_dir": exp.config.get("output_dir", "output")}, repo, workdir)["output_dir"])


def find_adapter(output_dir: Path) -> Path | None:
    """The folder holding a finished LoRA adapter, or None."""
    if (output_dir / "adapter_config.json").is_file() and any(
        (output_dir / f).is_file() for f in ADAPTER_FILES
    ):
        return output_dir
    return None


def cpu_overrides(config: dict[str, Any], processes: int = 1) -> dict[str, Any]:
    """The changes a CPU run needs, as {key: [was, now]} (recorded in results metadata)."""
    # Set even where the config is silent: Axolotl turns some of these on by default (LoRA kernels).
    changes = {k: [config.get(k), v] for k, v in CPU_OVERRIDES.items() if config.get(k) != v}
    changes.update({k: [config[k], None] for k in CPU_DROPPED if config.get(k) is not None})
    if processes > 1:
        plugins = list(config.get("plugins") or [])
        if CPU_DDP_PLUGIN not in plugins:
            changes["plugins"] = [config.get("plugins"), [*plugins, CPU_DDP_PLUGIN]]
    return changes


def processes_for(exp: Experiment, settings: Settings, device: Device) -> int:
    """Training processes: one per GPU the config's `haha:` block asks for (haha.toml's default).

    On CUDA the pod must have that many GPUs. On CPU the same count of processes runs with gloo,
    which is how the multi-process path is exercised without a GPU (tests/test_multigpu.py).
    """
    gpus = exp.resources(settings).gpus
    if device.kind == "cuda" and device.count < gpus:
        raise RunFailed(
            f"the config asks for {gpus} GPUs ({exp.path}: haha.gpus) but this machine has {device.count}",
            fix="launch it through `haha launch` (the pod gets haha.gpus GPUs) or lower haha.gpus",
        )
    return gpus


def cluster_for(exp: Experiment, settings: Settings) -> ClusterNode | None:
    """This machine's node of the config's `haha.nodes` (None for one node); refuses a mismatch.

    Several nodes: every node runs `haha run` with RunPod's cluster variables (haha.cluster), and
    torchrun's rendezvous joins them; a config that asks for nodes on a lone machine would wait forever.
    """
    nodes, cluster = exp.resources(settings).nodes, settings.cluster
    if nodes == 1:
        return None
    if cluster is None or cluster.num_nodes != nodes:
        seen = "NUM_NODES is unset" if cluster is None else f"NUM_NODES is {cluster.num_nodes}"
        raise RunFailed(
            f"the config asks for {nodes} nodes ({exp.path}: haha.nodes) but {seen} here",
            fix=f"run it on a {nodes}-node cluster (every node: haha run with NUM_NODES={nodes}, its "
            "NODE_RANK and the primary's PRIMARY_ADDR/PRIMARY_PORT, as RunPod sets them), "
            "or remove haha.nodes",
        )
    return cluster


def eval_placement(exp: Experiment, device: Device) -> dict[str, Any]:
    """What results record in meta.eval about GPUs: eval always uses one (no tensor parallelism, which
    changes sampled completions), and whether the base model's bf16 weights fit it (None: unknown)."""
    from haha.check.params import estimate_params
    from haha.check.scale import FIXED_GIB, eval_weights_gib

    params, _ = estimate_params(exp.base_model)
    placement: dict[str, Any] = {"gpus": 1}
    if params is not None:
        placement["weights_gib"] = round(eval_weights_gib(params), 1)
    fits = None
    if params is not None and device.kind == "cuda" and device.memory_gib:
        fits = eval_weights_gib(params) + FIXED_GIB <= device.memory_gib
    placement["fits_one_gpu"] = fits
    return placement


def repo_file_paths(config: dict[str, Any], repo: Repo) -> dict[str, Any]:
    """Relative DeepSpeed config paths resolved against the repo root (where `haha check` found them).

    Axolotl runs in the work folder, so `deepspeed: deepspeed_configs/zero2.json` must be absolute.
    """
    out = dict(config)
    for key in CONFIG_FILE_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            out[key] = str(repo.root.resolve() / value)
    return out


def axolotl_config(
    exp: Experiment, repo: Repo, workdir: Path, settings: Settings, device: Device
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config Axolotl actually runs, and the CPU overrides applied to it.

    Built from `exp.config`, which never holds the `haha:` block: Axolotl does not see it.
    """
    processes = processes_for(exp, settings, device)
    world = processes * exp.resources(settings).nodes
    config = repo_file_paths(localize(exp.config, repo, workdir), repo)
    config["output_dir"] = str(output_dir_for(exp, repo, workdir))  # also where `haha eval` looks
    config["wandb_project"] = settings.wandb_project
    config["wandb_name"] = exp.basename
    config["wandb_run_id"] = wandb_run_id(exp.basename, settings.runpod_pod_id)
    # WANDB_MODE wins (a pod can be told offline); else online exactly when there is a key.
    config["wandb_mode"] = settings.wandb_mode or ("online" if settings.wandb_api_key else "offline")
    if settings.wandb_entity:
        config["wandb_entity"] = settings.wandb_entity
    overrides: dict[str, Any] = {}
    if device.kind == "cpu":
        overrides = cpu_overrides(config, world)
        for key, (_, now) in overrides.items():
            if now is None:
                config.pop(key, None)
            else:
                config[key] = now
    return config, overrides


def wandb_run_id(basename: str, pod_id: str | None) -> str:
    """A W&B run id of its own per attempt: `<basename>-<UTC stamp>[-<pod id>]`.

    The run id names the run in W&B's database; an id reused by a retry resumes (or, once the first run
    finished, is refused with a 409) instead of starting afresh. The display name stays the basename.
    """
    pod = re.sub(r"[^A-Za-z0-9_-]", "", pod_id or "")[:16]
    return "-".join(p for p in (basename, f"{now():%Y%m%dT%H%M%SZ}", pod) if p)


def train_command(
    config_file: Path, processes: int, config: dict[str, Any], cluster: ClusterNode | None = None
) -> list[str]:
    """One process: Axolotl's module directly (faster). Several, or DeepSpeed/FSDP: Axolotl's launcher.

    `axolotl train CFG --launcher torchrun -- --standalone --nproc_per_node N` is Axolotl 0.19.0's
    own multi-GPU entry (axolotl/cli/utils/train.py): it execs `torchrun ... -m axolotl.cli.train CFG`,
    one process per GPU, on a free local port (`--standalone`). The same command runs in the pod and,
    with gloo, on CPU. A node of a cluster swaps `--standalone` for torchrun's static rendezvous at
    the primary node (ClusterNode.torchrun_args); not `--rdzv_endpoint`, for which Axolotl 0.19.0 adds
    a random `--rdzv_id` per node (`_add_default_rdzv_args`), so two nodes would never meet.
    """
    sharded = config.get("deepspeed") or config.get("fsdp") or config.get("fsdp_version")
    if cluster is not None:
        launcher = ["--launcher", "torchrun", "--", *cluster.torchrun_args(processes)]
        return [str(Path(sys.executable).parent / "axolotl"), "train", str(config_file), *launcher]
    if processes > 1 or sharded:
        launcher = ["--launcher", "torchrun", "--", "--standalone", "--nproc_per_node", str(processes)]
        return [str(Path(sys.executable).parent / "axolotl"), "train", str(config_file), *launcher]
    return [sys.executable, "-m", "axolotl.cli.train", str(config_file)]


# The inter-node interface of RunPod's Instant Clusters; elsewhere (a workstation) NCCL picks its own.
CLUSTER_NIC = Path("/sys/class/net/ens1")


def launch_env(
    base: Mapping[str, str], device: Device, processes: int, world: int | None = None
) -> dict[str, str]:
    """`base`, the child's environment, made ready for the launcher.

    The launcher finds `torchrun` on PATH: this environment's bin folder goes first.

    Several CPU processes (`world`: on every node together, default `processes`): accelerate's
    MULTI_CPU mode (gloo), one thread each so the processes of this machine do not fight.
    """
    bin_dir = str(Path(sys.executable).parent)
    out = {**base, "PATH": os.pathsep.join(p for p in (bin_dir, base.get("PATH", "")) if p)}
    if device.kind == "cpu" and (world or processes) > 1:
        out["ACCELERATE_USE_CPU"] = "true"
        out.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    elif (world or processes) > processes and CLUSTER_NIC.exists():  # GPUs on several RunPod nodes
        # RunPod's Instant Clusters: NCCL must use the cluster network (ens1, where PRIMARY_ADDR is), not
        # eth0, whose 172.x addresses time out (docs.runpod.io/instant-clusters/configuration, "NCCL").
        out.setdefault("NCCL_SOCKET_IFNAME", CLUSTER_NIC.name)
    return out


def train(
    exp: Experiment,
    repo: Repo,
    workdir: Path,
    settings: Settings,
    device: Device,
    log: Callable[[str], None],
    force: bool = False,
) -> TrainOutcome:
    """Run Axolotl unless a finished adapter is already there (a re-run after a crash in eval)."""
    config, overrides = axolotl_config(exp, repo, workdir, settings, device)
    output_dir = Path(config["output_dir"])
    log_file = workdir / "train.log"
    adapter = find_adapter(output_dir)
    if adapter and not force:
        log(f"train: adapter already in {adapter}, not retraining (--retrain retrains)")
        earlier = _read_train_json(workdir)
        tokens = earlier.get("tokens") or {}
        return TrainOutcome(
            adapter,
            0.0,
            tokens.get("total"),
            log_file,
            overrides,
            tokens.get("supervised"),
            skipped=True,
            wandb_run_id=earlier.get("wandb_run_id"),
            processes=int(earlier.get("processes") or 1),
        )
    workdir.mkdir(parents=True, exist_ok=True)
    spot = Interruptible.prepare(config, exp.basename, repo, settings, log)
    config_file = workdir / "axolotl.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    if overrides:
        log(f"train: no CUDA device, CPU overrides applied: {', '.join(overrides)}")
    processes = processes_for(exp, settings, device)
    cluster = cluster_for(exp, settings)
    nodes = cluster.num_nodes if cluster else 1
    if cluster is not None:
        log(
            f"train: node {cluster.node_rank} of {nodes}, {processes} process(es) here, rendezvous at "
            f"{cluster.master_addr}:{cluster.master_port}"
        )
    elif processes > 1:
        log(f"train: {processes} processes through Axolotl's torchrun launcher")
    child_env = {
        **launch_env(settings.child_env(), device, processes, processes * nodes),
        "AXOLOTL_DO_NOT_TRACK": "1",
        "WANDB_MODE": config["wandb_mode"],
        "WANDB_DIR": str(workdir),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
        **spot.env(),
    }
    started = time.monotonic()
    argv = train_command(config_file, processes, config, cluster)
    with spot.uploading(output_dir, config["wandb_run_id"], log):
        streamed = _stream(argv, workdir, child_env, log_file, log)
    seconds = time.monotonic() - started
    adapter = find_adapter(output_dir)
    if cluster is not None and not cluster.primary and streamed.code == 0:
        # Axolotl 0.19.0 saves a LoRA adapter on every node's local rank 0, but with DeepSpeed or FSDP
        # through the Trainer on global rank 0 alone: a worker node may hold none, and needs none.
        adapter = output_dir
    if streamed.code != 0 or adapter is None:
        raise _failure(streamed.code, streamed.tail, log_file)
    tokens, run_id = streamed.tokens, config["wandb_run_id"]
    record = {"tokens": tokens, "seconds": seconds, "wandb_run_id": run_id, "processes": processes}
    (workdir / "train.json").write_text(json.dumps({**record, **({"nodes": nodes} if nodes > 1 else {})}))
    return TrainOutcome(
        adapter,
        seconds,
        tokens.get("total"),
        log_file,
        overrides,
        tokens.get("supervised"),
        wandb_run_id=run_id,
        first_step_at=streamed.first_step_at,
        processes=processes,
        nodes=nodes,
        resumed=spot.resumed(log_file, seconds),
    )


@dataclass
class Interruptible:
    """A run on an interruptible pod: checkpoints to the store while training, and a resumed run's
    start from the last one (haha.checkpoints, haha.resume). Inert on an on-demand pod."""

    store: Any = None  # the ModelStore, when this pod checkpoints or resumes
    basename: str = ""
    status: Any = None  # the run's status as this pod's `haha pod` wrote it (a resumed run: carried)
    start_step: int = 0  # the checkpoint step this pod resumed from
    checkpoints: bool = False  # this pod is interruptible: its checkpoints go to the store

    @classmethod
    def prepare(
        cls, config: dict[str, Any], basename: str, repo: Repo, settings: Settings, log: Callable[[str], None]
    ) -> Interruptible:
        """Checkpoint keys into `config`; for a resumed run also its checkpoint and W&B run id."""
        from haha.checkpoints import checkpoint_settings, fetch_for_resume
        from haha.resume import checkpoint_step
        from haha.runstatus import read_status
        from haha.store import get_store

        pod = settings.pod_env(basename, now())
        if not (pod.interruptible or pod.resume):
            return cls()
        store = get_store(settings, repo.root)
        out = cls(store, basename, read_status(store, basename), checkpoints=pod.interruptible)
        if pod.interruptible:
            changes = checkpoint_settings(config, settings.compute.checkpoints_per_run)
            config.update({k: v for k, v in changes.items() if v is not None})
            for key in (k for k, v in changes.items() if v is None):
                config.pop(key, None)
        if pod.resume:
            found = fetch_for_resume(store, basename, Path(config["output_dir"]), log)
            if found is not None:
                config["resume_from_checkpoint"] = str(found)
                out.start_step = checkpoint_step(found.name) or 0
            if out.status is not None and out.status.wandb_run_id:
                config["wandb_run_id"] = out.status.wandb_run_id  # the same W&B run continues
        return out

    def env(self) -> dict[str, str]:
        """A resumed run appends to its W&B run (W&B: `resume="allow"` creates it if it is missing)."""
        return {"WANDB_RESUME": "allow"} if self.start_step else {}

    @contextlib.contextmanager
    def uploading(self, output_dir: Path, wandb_run_id: str, log: Callable[[str], None]) -> Iterator[None]:
        """While Axolotl trains: new checkpoints go to the store (interruptible pods only)."""
        from haha.checkpoints import Uploader

        if self.store is None or not self.checkpoints:
            yield
            return
        with Uploader(self.store, self.basename, output_dir, log, wandb_run_id, self.start_step):
            yield

    def resumed(self, log_file: Path, seconds: float) -> dict[str, Any] | None:
        """meta.resumed: preemptions, steps repeated and the seconds they cost (at this pod's pace)."""
        status = self.status
        if status is None or not status.preemptions:
            return None
        from haha.resume import last_step

        end = last_step(log_file.read_text(errors="replace")) if log_file.is_file() else None
        done_here = (end or 0) - self.start_step
        repeated = status.steps_repeated or 0
        per_step = seconds / done_here if done_here > 0 else None
        return {
            "count": status.preemptions,
            "from_step": self.start_step,
            "steps_repeated": repeated,
            "seconds_lost": round(repeated * per_step, 1) if per_step is not None else None,
        }


def _read_train_json(workdir: Path) -> dict[str, Any]:
    """What the run that made the adapter recorded (tokens, W&B run id); {} when unreadable."""
    try:
        data = json.loads((workdir / "train.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class _Streamed:
    code: int
    tail: list[str]
    tokens: dict[str, int]
    first_step_at: float | None  # unix time at which the training bar first showed a finished step


def loss_curve(log_file: Path) -> list[dict[str, Any]]:
    """Training and eval loss per logged step, read back from the training log (results meta.train_loss).

    Read from the log rather than collected while streaming, so a run that reuses its adapter still
    records the curve of the training that made it.
    """
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return []
    points: dict[int, dict[str, Any]] = {}
    step = 0
    for line in text.replace("\r", "\n").splitlines():
        if m := _STEP.search(line):
            step = int(m.group(1))
        elif m := _LOSS.search(line):
            points.setdefault(step, {"step": step})["loss"] = float(m.group(1))
        elif m := _EVAL_LOSS.search(line):
            points.setdefault(step, {"step": step})["eval_loss"] = float(m.group(1))
    return [points[k] for k in sorted(points)]


def _stream(
    argv: list[str], cwd: Path, env: Mapping[str, str], log_file: Path, log: Callable[[str], None]
) -> _Streamed:
    """Run `argv`, teeing output to `log_file`; report step progress and loss lines as they come."""
    tail: list[str] = []
    tokens: dict[str, int] = {}
    step, steps = "0/?", 0
    first_step_at: float | None = None
    child = Teed(argv, cwd, env, log_file)
    for raw in child:  # the log is read while training runs (and uploaded if the pod dies)
        for line in raw.replace("\r", "\n").splitlines():
            tail = [*tail[-40:], line]
            if m := _TOKENS.search(line):
                tokens["total"] = int(m.group(1))
            if m := _SUPERVISED.search(line):
                tokens["supervised"] = int(m.group(1))
            if (m := _STEP.search(line)) and int(m.group(2)) >= steps:
                steps = int(m.group(2))  # the training bar: evaluation bars in between are shorter
                step = f"{m.group(1)}/{m.group(2)}"
                if first_step_at is None and int(m.group(1)) >= 1:
                    first_step_at = time.time()
            elif m := _LOSS.search(line):
                if first_step_at is None:  # a loss line is logged after a step, bar or not
                    first_step_at = time.time()
                log(f"train: step {step} loss {m.group(1)}")
            elif m := _EVAL_LOSS.search(line):
                log(f"train: step {step} eval_loss {m.group(1)}")
    code = child.returncode
    return _Streamed(code, tail, tokens, first_step_at)


def _failure(code: int, tail: list[str], log_file: Path) -> RunFailed:
    text = "\n".join(tail).lower()
    if code == -9 or any(marker in text for marker in _OOM):
        return RunFailed(
            "training ran out of memory",
            file=log_file,
            fix="lower micro_batch_size or sequence_len, set gradient_checkpointing: true, "
            "or use a GPU type with more memory",
        )
    last = next((line for line in reversed(tail) if line.strip()), "")
    return RunFailed(
        f"Axolotl exited with code {code}: {last.strip()[:300]}",
        file=log_file,
        fix="read the training log named here",
    )
