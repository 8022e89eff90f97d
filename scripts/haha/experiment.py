"""An Experiment: one numbered config, the dataset files it names and the facts later stages need."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from haha.errors import InputError
from haha.yamlfile import YamlDoc, parse_yaml

if TYPE_CHECKING:
    from haha.settings import Settings

WORKSPACE = PurePosixPath("/workspace")
WORKSPACE_DATA = WORKSPACE / "data"
# The top-level key of a config that belongs to the pipeline, not to Axolotl: read, then removed.
HAHA_KEY = "haha"
MAX_GPUS = 8  # one RunPod pod; more needs several nodes (README: Multi-GPU and multi-node)
# Nodes of one multi-node run (haha.nodes): RunPod's Instant Clusters have 2-8 nodes of 8 GPUs
# (docs.runpod.io/instant-clusters, "2-8 nodes (16-64 GPUs)"; larger ones through their sales team).
MAX_NODES = 8
NODE_GPUS = 8
NAME_RE = re.compile(r"^(?P<series>[a-z0-9]+(?:[.-][a-z0-9]+)*)-(?P<number>\d{3})$")


@dataclass(frozen=True)
class ConfigName:
    """`<series>-NNN`: the basename shared by the config, W&B run, HF repo, results file and pod."""

    series: str
    number: int

    @property
    def basename(self) -> str:
        return f"{self.series}-{self.number:03d}"

    @classmethod
    def parse(cls, basename: str) -> ConfigName | None:
        match = NAME_RE.match(basename)
        if not match:
            return None
        return cls(match["series"], int(match["number"]))


@dataclass(frozen=True)
class DatasetRef:
    """One `datasets[i].path` of a config: as written, and where the file lives in the repo."""

    index: int
    workspace_path: str
    line: int | None

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.workspace_path).name

    def problem(self) -> str | None:
        """Why this path cannot be mapped safely onto train/data/, or None when it can."""
        path = PurePosixPath(self.workspace_path)
        if ".." in path.parts:
            return "contains '..'"
        if path.parent != WORKSPACE_DATA or not path.name:
            return f"must be {WORKSPACE_DATA}/<file> (a file directly in train/data/)"
        return None


@dataclass(frozen=True)
class Resources:
    """What a config's `haha:` block asks of compute, with haha.toml's defaults filled in.

    `gpus`: GPUs in the one pod (one training process each); `gpu_types`: RunPod GPU type ids in
    fallback order (plans are priced on the first); `nodes`: machines of `gpus` GPUs each that train
    together (a RunPod Instant Cluster; 1 is one pod).
    """

    gpus: int
    gpu_types: tuple[str, ...]
    nodes: int = 1

    @property
    def world(self) -> int:
        """Every GPU of the run, all nodes: the data-parallel world ZeRO and FSDP shard over."""
        return self.gpus * self.nodes

    interruptible: bool = False  # interruptible (spot) pods; haha.resume resumes a preempted run
    bid_per_gpu: float | None = None  # USD per GPU-hour; None: each GPU type's spot price

    def to_dict(self) -> dict[str, Any]:
        nodes = {"nodes": self.nodes} if self.nodes > 1 else {}
        return {"gpus": self.gpus, "gpu_types": list(self.gpu_types), **nodes}


_BLOCK_KEYS = ("gpus", "gpu_types", "nodes", "interruptible", "bid_per_gpu")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_number(value: object) -> float | None:
    """`value` as Axolotl's pydantic (lax mode) reads a number: ints, floats and numeric strings
    (YAML 1.1 reads `2e-4` as a string); None for anything else, and for nan/inf."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def number_or(value: object, default: float) -> float:
    """`value` as a finite number (as_number), or `default` where it is unset or not a number: the
    gate reports such values on their own, and estimates fall back to Axolotl's default."""
    found = as_number(value)
    return default if found is None else found


@dataclass(frozen=True)
class Experiment:
    """A config file parsed with line numbers. Construction never fails on content, only on syntax."""

    path: Path
    doc: YamlDoc

    @classmethod
    def load(cls, path: Path, text: str | None = None) -> Experiment:
        if text is None:
            try:
                text = path.read_text()
            except OSError as exc:
                raise InputError(f"cannot read config: {exc.strerror}", file=path) from exc
        return cls(path=path, doc=parse_yaml(text, path))

    @property
    def basename(self) -> str:
        return self.path.stem

    @property
    def config_name(self) -> ConfigName | None:
        return ConfigName.parse(self.basename) if self.path.suffix == ".yml" else None

    @cached_property
    def config(self) -> dict[str, Any]:
        """The Axolotl config: the file without its `haha:` block (Axolotl never sees that block)."""
        return {k: v for k, v in self.doc.data.items() if k != HAHA_KEY}

    @property
    def haha_block(self) -> Any:
        """The `haha:` block as written (None when absent): what the pipeline is asked for."""
        return self.doc.data.get(HAHA_KEY)

    def block_problems(self, settings: Settings) -> list[InputError]:
        """Every problem of the `haha:` block, each at its line with a fix (empty: valid or absent)."""
        block = self.haha_block
        if block is None or HAHA_KEY not in self.doc.data:
            return []
        known = [g.id for g in settings.compute.gpu_types]
        if not isinstance(block, dict):
            return [
                self.fail(
                    f"{HAHA_KEY} must be a mapping",
                    HAHA_KEY,
                    f"write it as `{HAHA_KEY}: {{gpus: 2}}` or remove it (defaults: haha.toml [compute])",
                )
            ]
        problems = []
        for key in block:
            if key not in _BLOCK_KEYS:
                close = difflib.get_close_matches(str(key), _BLOCK_KEYS, n=1)
                hint = f"did you mean {close[0]}?" if close else f"allowed keys: {', '.join(_BLOCK_KEYS)}"
                problems.append(
                    self.fail(f"{HAHA_KEY}.{key} is not a pipeline option", f"{HAHA_KEY}.{key}", hint)
                )
        counts = (
            ("gpus", MAX_GPUS, "GPUs in one pod; more needs a multi-node cluster, see README"),
            ("nodes", MAX_NODES, "machines of haha.gpus GPUs each"),
        )
        for key, most, what in counts:
            value = block.get(key)
            if key in block and (not _is_int(value) or not 1 <= value <= most):
                problems.append(
                    self.fail(
                        f"{HAHA_KEY}.{key} is {value!r}; it must be a whole number from 1 to {most}",
                        f"{HAHA_KEY}.{key}",
                        f"set {HAHA_KEY}.{key} to 1..{most} ({what})",
                    )
                )
        if "gpu_types" in block:
            types = block.get("gpu_types")
            if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
                problems.append(
                    self.fail(
                        f"{HAHA_KEY}.gpu_types must be a non-empty list of GPU type ids",
                        f"{HAHA_KEY}.gpu_types",
                        f"e.g. gpu_types: [{known[0] if known else 'NVIDIA H100 80GB HBM3'!r}]",
                    )
                )
            else:
                for i, gpu in enumerate(types):
                    if gpu not in known:
                        close = difflib.get_close_matches(gpu, known, n=1)
                        problems.append(
                            self.fail(
                                f"GPU type {gpu!r} is not in haha.toml [[compute.gpu_types]]",
                                f"{HAHA_KEY}.gpu_types.{i}",
                                f"did you mean {close[0]!r}?"
                                if close
                                else f"use one of: {', '.join(known)} (or add it, priced, to haha.toml)",
                            )
                        )
        return problems + interruptible_problems(self, block)

    def resources(self, settings: Settings) -> Resources:
        """The GPUs this experiment runs on: its `haha:` block over haha.toml [compute] defaults.

        Raises the block's first problem (the PR gate reports them all).
        """
        if problems := self.block_problems(settings):
            raise problems[0]
        block = self.haha_block or {}
        gpus = block.get("gpus", settings.compute.gpu_count)
        types = block.get("gpu_types") or [g.id for g in settings.compute.gpu_types]
        interruptible = block.get("interruptible", settings.compute.interruptible)
        bid = block.get("bid_per_gpu", settings.compute.bid_per_gpu)
        return Resources(
            gpus=gpus,
            gpu_types=tuple(types),
            interruptible=interruptible,
            bid_per_gpu=float(bid) if bid is not None else None,
            nodes=block.get("nodes", 1),
        )

    @property
    def base_model(self) -> str:
        return str(self.config.get("base_model") or "")

    @property
    def system_message(self) -> str:
        return str(self.config.get("default_system_message") or "")

    @cached_property
    def datasets(self) -> tuple[DatasetRef, ...]:
        refs = []
        entries = self.config.get("datasets")
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                refs.append(DatasetRef(i, entry["path"], self.doc.line_of(f"datasets.{i}.path")))
        return tuple(refs)

    def number(self, key: str, default: float) -> float:
        """A top-level numeric key as a finite float, or `default` (number_or)."""
        return number_or(self.config.get(key), default)

    def line(self, field: str) -> int | None:
        return self.doc.line_of(field)

    def fail(self, message: str, field: str, fix: str | None = None) -> InputError:
        """An InputError pointing at `field` of this config."""
        return InputError(message, file=self.path, line=self.line(field), field=field, fix=fix)


def interruptible_problems(exp: Experiment, block: dict[str, Any]) -> list[InputError]:
    """`interruptible` is a boolean; `bid_per_gpu` a positive price (USD per GPU-hour)."""
    problems = []
    if "interruptible" in block and not isinstance(block["interruptible"], bool):
        problems.append(
            exp.fail(
                f"{HAHA_KEY}.interruptible is {block['interruptible']!r}; it must be true or false",
                f"{HAHA_KEY}.interruptible",
                "write `interruptible: true` (spot pods, resumed when preempted) or remove it",
            )
        )
    bid = block.get("bid_per_gpu")
    if "bid_per_gpu" in block and (as_number(bid) is None or isinstance(bid, str) or bid <= 0):
        problems.append(
            exp.fail(
                f"{HAHA_KEY}.bid_per_gpu is {bid!r}; it must be a price above 0 (USD per GPU-hour)",
                f"{HAHA_KEY}.bid_per_gpu",
                "e.g. bid_per_gpu: 1.5, or remove it to bid each GPU type's spot_price_per_hour",
            )
        )
    return problems
