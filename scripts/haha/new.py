"""`haha new`: the next experiment of a series, written from its latest config with a few changes.

The copy keeps the source's comments, key order and quoting (ruamel.yaml round-trip), so the PR diff
shows only what the experiment changes. Nothing is written until the gate has passed the new configs
in a scratch copy of `train/`: a bad key or value is reported the way `haha check` reports it.
"""

from __future__ import annotations

import difflib
import io
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from haha.atomic import write_atomic
from haha.check.axolotl_schema import SCHEMA_NAME
from haha.check.gate import CheckReport, run_check
from haha.check.numbering import next_free, used_numbers
from haha.check.render import render_text
from haha.errors import InputError
from haha.experiment import ConfigName
from haha.findings import Severity
from haha.repo import CONFIG_DIR, Repo
from haha.schemas import validator
from haha.settings import Settings


@dataclass(frozen=True)
class Change:
    """`key=value` from the command line: a dotted key (`datasets.0.path`) and its parsed YAML value."""

    key: str
    value: Any
    option: str  # --set or --sweep, for messages

    @property
    def parts(self) -> list[str | int]:
        return [int(p) if p.isdigit() else p for p in self.key.split(".")]


@dataclass(frozen=True)
class Draft:
    """One config `haha new` would write: its file name, text, and the changes that made it."""

    name: str
    text: str
    changes: tuple[Change, ...]

    @property
    def rel(self) -> str:
        return str(CONFIG_DIR / f"{self.name}.yml")


def _yaml_value(text: str, where: str) -> Any:
    """A value as YAML 1.2 reads it (`1e-4` is a number, `true` a boolean, `[a, b]` a list)."""
    try:
        return YAML(typ="safe", pure=True).load(text) if text.strip() else None
    except YAMLError as exc:
        raise InputError(
            f"{where}: {text!r} is not a YAML value ({getattr(exc, 'problem', None) or exc})",
            fix="quote strings that contain YAML syntax, e.g. --set 'key=\"a: b\"'",
        ) from exc


def _split_key(arg: str, option: str) -> tuple[str, str]:
    key, sep, value = arg.partition("=")
    if not sep or not key.strip():
        raise InputError(f"{option} {arg!r}: expected KEY=VALUE", fix=f"e.g. {option} learning_rate=1e-4")
    return key.strip(), value


def parse_set(arg: str) -> Change:
    """`--set key=value`."""
    key, value = _split_key(arg, "--set")
    return Change(key, _yaml_value(value, f"--set {key}"), "--set")


def _split_values(text: str) -> list[str]:
    """`a,b,[c, d]` → `a`, `b`, `[c, d]`: commas inside brackets or braces belong to the value."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    return [*values, current]


def parse_sweep(arg: str) -> list[Change]:
    """`--sweep key=v1,v2,…`: one change per value."""
    key, text = _split_key(arg, "--sweep")
    values = _split_values(text)
    if len(values) < 2:
        raise InputError(f"--sweep {key}: one value only", fix=f"use --set {key}={text}, or give v1,v2,…")
    return [Change(key, _yaml_value(v, f"--sweep {key}"), "--sweep") for v in values]


def _round_trip() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the source's long lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(float, _represent_float)
    return yaml


def _represent_float(representer: Any, value: float) -> Any:
    """Floats that PyYAML (YAML 1.1, what Axolotl and the gate read) also reads as floats: `1.0e-05`."""
    text = repr(value)
    if text in {"inf", "-inf", "nan"}:
        text = {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}[text]
    elif "e" in text and "." not in text:
        text = text.replace("e", ".0e", 1)
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _known_keys() -> set[str]:
    return set(validator(SCHEMA_NAME).schema.get("properties", {}))


def _apply(doc: CommentedMap, change: Change, source: str, known: set[str]) -> None:
    """Set `change` in `doc`: existing keys and list items, or a new top-level key Axolotl knows."""
    *parents, last = change.parts
    node: Any = doc
    for depth, part in enumerate(parents):
        node = _child(node, part, change, source, ".".join(map(str, change.parts[: depth + 1])))
    if isinstance(node, CommentedSeq):
        if not isinstance(last, int) or last >= len(node):
            raise InputError(
                f"{change.option} {change.key}: no item {last} in that list ({len(node)} items)",
                file=source,
                fix="index an existing item, e.g. datasets.0.path",
            )
        node[last] = change.value
    elif isinstance(node, CommentedMap):
        if node is doc and last not in doc and last not in known:
            close = difflib.get_close_matches(str(last), known, n=1)
            raise InputError(
                f"{change.option} {last}: not an Axolotl option (Axolotl would ignore it)",
                file=source,
                field=str(last),
                fix=f"did you mean {close[0]}?" if close else "check it in Axolotl's config reference",
            )
        node[last] = change.value
    else:
        raise InputError(
            f"{change.option} {change.key}: {'.'.join(map(str, parents))} is a value, not a mapping or list",
            file=source,
            fix="set the whole value instead",
        )


def _child(node: Any, part: str | int, change: Change, source: str, where: str) -> Any:
    try:
        child = node[part]
    except (KeyError, IndexError, TypeError):
        child = None
    if not isinstance(child, CommentedMap | CommentedSeq):
        raise InputError(
            f"{change.option} {change.key}: {source} has no mapping or list at {where}",
            file=source,
            field=where,
            fix="set an existing nested key, or the whole top-level value",
        )
    return child


def apply_changes(source_text: str, source: str, changes: list[Change]) -> str:
    """`source_text` with `changes` applied; comments, order and quoting of everything else kept."""
    yaml = _round_trip()
    try:
        doc = yaml.load(source_text)
    except YAMLError as exc:
        raise InputError(f"cannot read as YAML: {exc}", file=source, fix="haha check names the spot") from exc
    if not isinstance(doc, CommentedMap):
        raise InputError("expected a YAML mapping at the top level", file=source, line=1)
    known = _known_keys()
    for change in changes:
        _apply(doc, change, source, known)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def latest_config(repo: Repo, series: str) -> Path:
    """The highest-numbered config of `series`: the one a new experiment starts from."""
    numbered = {
        name.number: path
        for path in repo.config_paths()
        if path.suffix == ".yml" and (name := ConfigName.parse(path.stem)) and name.series == series
    }
    if not numbered:
        known = sorted(
            {n.series for p in repo.config_paths() if (n := ConfigName.parse(p.stem))},
        )
        raise InputError(
            f"no config of series {series!r} in {CONFIG_DIR}/",
            fix=f"name one of: {', '.join(known)}" if known else "write the series' first config by hand",
        )
    return numbered[max(numbered)]


def draft_configs(repo: Repo, series: str, sets: list[Change], sweeps: list[list[Change]]) -> list[Draft]:
    """One draft per combination of the sweeps' values (one draft without sweeps), numbered on."""
    source = latest_config(repo, series)
    text = source.read_text(encoding="utf-8")
    results = [p.stem for p in repo.results_dir.glob("*.json")] if repo.results_dir.is_dir() else []
    first = next_free(used_numbers(repo.config_paths(), results)[series])  # as the gate numbers them
    drafts = []
    for offset, combo in enumerate(itertools.product(*sweeps)):
        changes = (*sets, *combo)
        name = ConfigName(series, first + offset).basename
        drafts.append(Draft(name, apply_changes(text, repo.rel(source), list(changes)), changes))
    return drafts


def _hardlink_or_copy(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


def check_drafts(repo: Repo, settings: Settings, drafts: list[Draft]) -> CheckReport:
    """The gate over `train/` as it would be with the drafts written, limited to the drafts.

    The scratch copy lives outside the checkout, so git finds no repository there: the gate checks
    the files themselves, as `haha check` does on a branch with the drafts committed.
    """
    files = {d.rel for d in drafts}
    names = {d.name for d in drafts}
    with tempfile.TemporaryDirectory(prefix="haha-new-") as scratch:
        root = Path(scratch)
        shutil.copytree(repo.root / "train", root / "train", symlinks=True, copy_function=_hardlink_or_copy)
        for draft in drafts:
            (root / draft.rel).write_text(draft.text, encoding="utf-8")
        report = run_check(Repo(root), settings)
    return CheckReport(
        [f for f in report.findings if f.file in files],
        [c for c in report.costs if c.config in names],
        [],
        len(drafts),
    )


def diff_of(repo: Repo, source: Path, draft: Draft) -> str:
    """A unified diff from the source config to the draft, as the PR will show it."""
    lines = difflib.unified_diff(
        source.read_text(encoding="utf-8").splitlines(keepends=True),
        draft.text.splitlines(keepends=True),
        fromfile=repo.rel(source),
        tofile=draft.rel,
    )
    return "".join(lines)


def write_drafts(repo: Repo, drafts: list[Draft]) -> Iterator[Path]:
    """Write each draft atomically; never over a file that appeared meanwhile."""
    for draft in drafts:
        path = repo.root / draft.rel
        if path.exists():
            raise InputError(f"{draft.rel} exists already", file=draft.rel, fix="run haha new again")
    for draft in drafts:
        yield write_atomic(repo.root / draft.rel, draft.text)


def new_command(
    repo: Repo,
    settings: Settings,
    series: str,
    sets: list[str],
    sweeps: list[str],
    dry_run: bool,
    out: TextIO,
) -> int:
    """Draft, gate, show (diff + prediction) and write: 1 when the gate refuses, nothing written then."""
    drafts = draft_configs(repo, series, [parse_set(a) for a in sets], [parse_sweep(a) for a in sweeps])
    source = latest_config(repo, series)
    report = check_drafts(repo, settings, drafts)
    for draft in drafts:
        out.write(diff_of(repo, source, draft) or f"{draft.rel}: same as {repo.rel(source)}\n")
    out.write(render_text(report, color=out.isatty()))
    if report.count(Severity.ERROR) or dry_run:
        return report.exit_code
    for path in write_drafts(repo, drafts):
        out.write(f"wrote {repo.rel(path)}\n")
    return 0
