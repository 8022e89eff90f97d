"""An Experiment: one numbered config, the dataset files it names and the facts later stages need."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from haha.errors import InputError
from haha.yamlfile import YamlDoc, parse_yaml

WORKSPACE = PurePosixPath("/workspace")
WORKSPACE_DATA = WORKSPACE / "data"
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

    @property
    def config(self) -> dict[str, Any]:
        return self.doc.data

    @property
    def base_model(self) -> str:
        return str(self.config.get("base_model") or "")

    @property
    def system_message(self) -> str:
        return str(self.config.get("default_system_message") or "")

    @cached_property
    def datasets(self) -> tuple[DatasetRef, ...]:
        refs = []
        for i, entry in enumerate(self.config.get("datasets") or []):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                refs.append(DatasetRef(i, entry["path"], self.doc.line_of(f"datasets.{i}.path")))
        return tuple(refs)

    def line(self, field: str) -> int | None:
        return self.doc.line_of(field)

    def fail(self, message: str, field: str, fix: str | None = None) -> InputError:
        """An InputError pointing at `field` of this config."""
        return InputError(message, file=self.path, line=self.line(field), field=field, fix=fix)
