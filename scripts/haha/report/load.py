"""Reading results files (tolerant of the minimal seed format) and the training punchlines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haha.errors import InputError

FIX = "regenerate it with `haha eval`, or fix it to match schemas/results.schema.json"


@dataclass(frozen=True)
class Sample:
    """One completion: the prompt it answers, the sampling temperature, its seed (1-based) and text."""

    prompt: str
    temperature: float
    seed: int
    text: str
    max_tokens: int | None = None


@dataclass(frozen=True)
class Run:
    """One results file: the config that produced it, its provenance and every completion."""

    name: str
    path: Path
    config: dict[str, Any]
    meta: dict[str, Any]
    samples: tuple[Sample, ...]

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
        return Run(name=name, path=self.path, config=config, meta=meta, samples=tuple(samples))

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
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError("not UTF-8 text", file=path, fix=FIX) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno, fix=FIX) from exc
    return _Reader(path).run(doc)


def load_runs(results_dir: Path) -> list[Run]:
    """Every results file in the folder, sorted by config name (so reports are deterministic)."""
    if not results_dir.is_dir():
        return []
    runs = [load_run(p) for p in sorted(results_dir.glob("*.json")) if not p.name.startswith(".")]
    return sorted(runs, key=lambda r: r.name)


def find_run(results_dir: Path, name: str) -> Run:
    """A run given as basename, file name or path to a results file."""
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
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("output"), str) and row["output"].strip():
                outputs.append(row["output"])
    return outputs
