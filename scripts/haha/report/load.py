"""Reading results files (tolerant of the minimal seed format) and the training punchlines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haha.errors import InputError
from haha.resultsindex import read_record

FIX = "regenerate it with `haha eval`, or fix it to match schemas/results.schema.json"
BASELINE_DIR = "baseline"
BASELINE_PREFIX = "baseline:"


def baseline_name(base_model: str) -> str:
    """The config name of a base model's baseline run: `baseline:<HF id>`."""
    return f"{BASELINE_PREFIX}{base_model}"


def baseline_file(results_dir: Path, base_model: str) -> Path:
    """`train/results/baseline/<org>--<model>.json`: the base model evaluated without an adapter."""
    return results_dir / BASELINE_DIR / f"{base_model.replace('/', '--')}.json"


@dataclass(frozen=True)
class Sample:
    """One completion: the prompt it answers, the sampling temperature, its seed (1-based) and text."""

    prompt: str
    temperature: float
    seed: int
    text: str
    max_tokens: int | None = None


@dataclass(frozen=True)
class LossPoint:
    """One logged training step: the training loss and, at eval steps, the eval loss."""

    step: int
    loss: float | None
    eval_loss: float | None = None


@dataclass(frozen=True)
class Run:
    """One results file: the config that produced it, its provenance and every completion."""

    name: str
    path: Path
    config: dict[str, Any]
    meta: dict[str, Any]
    samples: tuple[Sample, ...]
    train_loss: tuple[LossPoint, ...] = ()

    @property
    def is_baseline(self) -> bool:
        """The base model without an adapter (`config.name` = `baseline:<id>`, `meta.baseline`)."""
        return self.meta.get("baseline") is True or self.name.startswith(BASELINE_PREFIX)

    @property
    def base_model(self) -> str | None:
        found = self.meta.get("base_model") or self.config.get("base_model")
        if isinstance(found, str) and found:
            return found
        return self.name[len(BASELINE_PREFIX) :] if self.name.startswith(BASELINE_PREFIX) else None

    @property
    def series(self) -> str:
        """The name without its `-NNN` number: runs of one series are tuned variants of each other."""
        head, _, number = self.name.rpartition("-")
        return head if head and number.isdigit() else self.name

    @property
    def prompts(self) -> list[str]:
        return list(dict.fromkeys(s.prompt for s in self.samples))

    @property
    def temperatures(self) -> list[float]:
        return sorted({s.temperature for s in self.samples})

    @property
    def adapter_url(self) -> str | None:
        """A browsable link to the trained model: meta.adapter when it is a URL or a Hub repo id."""
        adapter = self.meta.get("adapter")
        if not isinstance(adapter, str) or not adapter:
            return None
        if adapter.startswith(("http://", "https://")):
            return adapter
        is_repo_id = adapter.count("/") == 1 and not adapter.startswith((".", "/", "~"))
        return f"https://huggingface.co/{adapter}" if is_repo_id else None

    @property
    def wandb_url(self) -> str | None:
        url = self.meta.get("wandb_url")
        return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


@dataclass
class _Reader:
    """Walks one parsed results document, raising InputErrors that name the file and the field."""

    path: Path
    max_tokens_by_temperature: dict[float, int] = field(default_factory=dict)

    def fail(self, message: str, where: str) -> InputError:
        return InputError(message, file=self.path, field=where, fix=FIX)

    def expect(self, value: Any, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(f"expected {names}, found {type(value).__name__}", where)
        return value

    def run(self, doc: Any) -> Run:
        doc = self.expect(doc, dict, "<root>")
        for key in ("config", "results"):
            if key not in doc:
                raise self.fail(f"missing required field {key!r}", key)
        config = self.expect(doc["config"], dict, "config")
        name = self.expect(config.get("name"), str, "config.name")
        meta = self.expect(doc.get("meta") or {}, dict, "meta")
        self.max_tokens_by_temperature = _max_tokens(meta)
        entries = self.expect(doc["results"], list, "results")
        samples = [s for i, entry in enumerate(entries) for s in self.entry(entry, f"results.{i}")]
        loss = self.train_loss(meta.get("train_loss"))
        return Run(
            name=name, path=self.path, config=config, meta=meta, samples=tuple(samples), train_loss=loss
        )

    def number(self, value: Any, where: str) -> float | None:
        return None if value is None else float(self.expect(value, (int, float), where))

    def train_loss(self, points: Any) -> tuple[LossPoint, ...]:
        """meta.train_loss: [{"step", "loss", "eval_loss"?}] in any order (absent: no curve)."""
        if points is None:
            return ()
        found = []
        for i, point in enumerate(self.expect(points, list, "meta.train_loss")):
            at = f"meta.train_loss.{i}"
            point = self.expect(point, dict, at)
            step = self.expect(point.get("step"), int, f"{at}.step")
            loss = self.number(point.get("loss"), f"{at}.loss")
            found.append(LossPoint(step, loss, self.number(point.get("eval_loss"), f"{at}.eval_loss")))
        return tuple(sorted(found, key=lambda p: p.step))

    def entry(self, entry: Any, where: str) -> list[Sample]:
        entry = self.expect(entry, dict, where)
        prompt = self.expect(entry.get("prompt"), str, f"{where}.prompt")
        settings = self.expect(entry.get("settingsResults"), list, f"{where}.settingsResults")
        samples = []
        for j, setting in enumerate(settings):
            at = f"{where}.settingsResults.{j}"
            setting = self.expect(setting, dict, at)
            temperature = float(self.expect(setting.get("temperature"), (int, float), f"{at}.temperature"))
            completions = self.expect(setting.get("completions"), list, f"{at}.completions")
            max_tokens = self.max_tokens_by_temperature.get(temperature)
            for k, text in enumerate(completions):
                text = self.expect(text, str, f"{at}.completions.{k}")
                samples.append(Sample(prompt, temperature, k + 1, text, max_tokens))
        return samples


def _max_tokens(meta: dict[str, Any]) -> dict[float, int]:
    """max_tokens per temperature from meta.settings (absent in seed files: callers use a default)."""
    found: dict[float, int] = {}
    settings = meta.get("settings")
    for setting in settings if isinstance(settings, list) else []:
        if isinstance(setting, dict):
            temperature, max_tokens = setting.get("temperature"), setting.get("max_tokens")
            if isinstance(temperature, int | float) and isinstance(max_tokens, int):
                found[float(temperature)] = max_tokens
    return found


def load_run(path: Path) -> Run:
    """Parse one results file; a malformed one raises an InputError naming the file and field."""
    try:
        doc, _ = read_record(path)  # bounded, as the gate reads it
    except UnicodeDecodeError as exc:
        raise InputError("not UTF-8 text", file=path, fix=FIX) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno, fix=FIX) from exc
    except RecursionError as exc:
        raise InputError("nested deeper than a JSON parser's stack allows", file=path, fix=FIX) from exc
    except ValueError as exc:  # NaN or Infinity, or over the size limit
        raise InputError(str(exc), file=path, fix=FIX) from exc
    return _Reader(path).run(doc)


def load_baseline(path: Path) -> Run:
    """A file in baseline/: it must say it is one, or the report would rank it as a config."""
    run = load_run(path)
    if not run.is_baseline:
        raise InputError(
            f"{path.parent.name}/ holds only baselines, but config.name is {run.name!r}",
            file=path,
            field="config.name",
            fix="name it baseline:<base model id> and set meta.baseline: true, or move it to train/results/",
        )
    return run


def _json_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.glob("*.json")) if not p.name.startswith(".") and p.is_file()]


def load_runs(results_dir: Path) -> list[Run]:
    """Every results file and every baseline (baseline/*.json), sorted by name (deterministic reports)."""
    runs = [load_run(p) for p in _json_files(results_dir)]
    runs += [load_baseline(p) for p in _json_files(results_dir / BASELINE_DIR)]
    return sorted(runs, key=lambda r: r.name)


def find_run(results_dir: Path, name: str) -> Run:
    """A run given as basename, file name, path to a results file, or `baseline:<base model id>`."""
    if name.startswith(BASELINE_PREFIX):
        path = baseline_file(results_dir, name[len(BASELINE_PREFIX) :])
        if path.is_file():
            return load_baseline(path)
    for path in (Path(name), results_dir / name, results_dir / f"{name}.json"):
        if path.is_file():
            return load_run(path)
    raise InputError(f"no results named {name!r}", file=results_dir, fix=f"list them with: ls {results_dir}")


def load_punchlines(data_dir: Path) -> list[str]:
    """The `output` of every training row in data_dir/*.jsonl; unreadable lines are skipped."""
    outputs: list[str] = []
    for path in sorted(data_dir.glob("*.jsonl")) if data_dir.is_dir() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # the gate reports the line (check/datasets.py)
                continue
            if isinstance(row, dict) and isinstance(row.get("output"), str) and row["output"].strip():
                outputs.append(row["output"])
    return outputs
