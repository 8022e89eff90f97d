"""`haha check`: decide what is in scope (the whole repo, or what changed since a ref), check it once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from haha.check.axolotl_schema import check_config_schema, schema_missing
from haha.check.datasets import DatasetScan, digest, leaks, scan_dataset
from haha.check.estimate import ConfigCost, estimate
from haha.check.frozen import check_frozen
from haha.check.numbering import check_names, check_numbering, series_of
from haha.check.rules import check_rules
from haha.check.scale import check_scale
from haha.check.tokens import TokenCounter, chatml, counter_for
from haha.errors import InputError
from haha.evalspec import EvalCheck, check_eval
from haha.experiment import Experiment
from haha.findings import Finding, Severity
from haha.repo import CONFIG_DIR, DATA_DIR, Repo
from haha.settings import Settings


@dataclass(frozen=True)
class DatasetStats:
    """One dataset file as the report shows it; token numbers come from the first config that uses it."""

    file: str
    rows: int
    invalid_lines: int
    duplicate_instructions: int
    duplicate_rows: int
    empty_outputs: int
    tokenizer: str | None = None
    mean_tokens: float | None = None
    max_tokens: int | None = None


@dataclass
class CheckReport:
    """Everything `haha check` found: findings, cost estimates of new configs, dataset stats."""

    findings: list[Finding]
    costs: list[ConfigCost]
    datasets: list[DatasetStats]
    configs_checked: int
    base: str | None = None

    def count(self, severity: Severity) -> int:
        return sum(f.severity == severity for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.count(Severity.ERROR) else 0


@dataclass(frozen=True)
class Scope:
    """Which files one run checks; `series` is None when numbering is checked for every series."""

    configs: list[Path]
    costed: set[Path]
    datasets: set[Path]
    series: set[str] | None = None
    changes: list = field(default_factory=list)


def scope_of(repo: Repo, base: str | None) -> Scope:
    """Without a base: everything, costing configs that have no results yet. With one: what changed."""
    if base is None:
        configs = repo.config_paths()
        costed = {p for p in configs if not repo.results_path(p.stem).exists()}
        data = set(repo.data_dir.glob("*.jsonl")) if repo.data_dir.is_dir() else set()
        return Scope(configs, costed, data)
    changes = repo.changes_since(base)
    present = [(c, repo.root / c.path) for c in changes if c.status != "D" and (repo.root / c.path).is_file()]
    configs = sorted(p for c, p in present if c.path.parent == CONFIG_DIR)
    costed = {p for c, p in present if c.path.parent == CONFIG_DIR and c.status == "A"}
    data = {p for c, p in present if c.path.parent == DATA_DIR}
    series = {s for c in changes if c.path.parent == CONFIG_DIR and (s := series_of(c.path))}
    return Scope(configs, costed, data, series, changes)


class _Run:
    """One check run: dataset scans and token counts are cached by content, so each happens once."""

    def __init__(self, repo: Repo, settings: Settings) -> None:
        self.repo, self.settings = repo, settings
        self.findings: list[Finding] = []
        self.scans: dict[tuple[str, str], DatasetScan] = {}
        self.counters: dict[str, TokenCounter] = {}
        self.lengths: dict[tuple[str, str, str], list[int]] = {}
        self.stats: dict[str, DatasetStats] = {}

    def scan(self, path: Path) -> DatasetScan | None:
        rel = self.repo.rel(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.findings.append(
                Finding(
                    Severity.ERROR, f"cannot read dataset: {exc}", rel, fix="commit it as UTF-8 JSON Lines"
                )
            )
            return None
        key = (rel, digest(text))
        if key not in self.scans:
            scan = self.scans[key] = scan_dataset(rel, text)
            self.findings += scan.findings
            self.stats[rel] = DatasetStats(
                rel,
                len(scan.rows),
                len(scan.invalid_lines),
                scan.duplicate_instructions,
                scan.duplicate_rows,
                scan.empty_outputs,
            )
        return self.scans[key]

    def counter(self, base_model: str) -> TokenCounter:
        if base_model not in self.counters:
            counter = self.counters[base_model] = counter_for(base_model)
            if counter.note and all(f.message != counter.note for f in self.findings):
                self.findings.append(
                    Finding(
                        Severity.NOTICE,
                        counter.note,
                        fix="cache the model's tokenizer (huggingface-cli download) "
                        "and install `tokenizers` for exact counts",
                    )
                )
        return self.counters[base_model]

    def token_lengths(self, exp: Experiment, scan: DatasetScan) -> tuple[list[int], str]:
        counter = self.counter(exp.base_model)
        key = (scan.digest, counter.name, exp.system_message)
        if key not in self.lengths:
            texts = [
                chatml(r.system or exp.system_message, r.instruction, r.input, r.output) for r in scan.rows
            ]
            lengths = self.lengths[key] = counter.count(texts)
            stats = self.stats[scan.file]
            if stats.tokenizer is None and lengths:
                self.stats[scan.file] = DatasetStats(
                    **{
                        **stats.__dict__,
                        "tokenizer": counter.name,
                        "mean_tokens": sum(lengths) / len(lengths),
                        "max_tokens": max(lengths),
                    }
                )
        return self.lengths[key], counter.name


def _load(repo: Repo, path: Path) -> Experiment | Finding:
    try:
        return Experiment.load(Path(repo.rel(path)), path.read_text())
    except InputError as exc:
        return Finding.from_error(exc)
    except (OSError, UnicodeDecodeError) as exc:
        return Finding(Severity.ERROR, f"cannot read config: {exc}", repo.rel(path))


def _check_names(repo: Repo, scope: Scope) -> list[Finding]:
    all_configs = repo.config_paths()
    results = [p.stem for p in repo.results_dir.glob("*.json")] if repo.results_dir.is_dir() else []
    rel = {p: repo.rel(p) for p in all_configs}
    in_scope = {rel[p] for p in all_configs if p in scope.configs}
    names = [f for f in check_names(all_configs, results, rel) if f.file in in_scope]
    numbering = check_numbering(all_configs, results, rel)
    if scope.series is not None:
        keep = {rel[p] for p in all_configs if series_of(p) in scope.series}
        numbering = [f for f in numbering if f.file in keep]
    return names + numbering


def _check_leaks(run: _Run, spec: EvalCheck, file: str) -> None:
    for scan in run.scans.values():
        for index, line in leaks(scan, spec.prompts):
            run.findings.append(
                Finding(
                    Severity.WARNING,
                    f"eval prompt also appears in the training data ({scan.file}:{line})",
                    file,
                    spec.lines.line_of(f"prompts.{index}"),
                    f"prompts.{index}",
                    fix="replace the prompt or drop the row: a memorised joke inflates the eval",
                )
            )


def _check_config(run: _Run, exp: Experiment, data_files: set[str], costed: bool) -> ConfigCost | None:
    run.findings += check_config_schema(exp)
    run.findings += check_rules(exp, run.settings, data_files)
    scale, found = check_scale(exp, run.settings, run.repo.root, run.repo.config_paths())
    run.findings += found
    scans = [
        s
        for ref in exp.datasets
        if not ref.problem() and ref.file_name in data_files
        if (s := run.scan(run.repo.data_dir / ref.file_name))
    ]
    if not scans:
        return None
    lengths: list[int] = []
    for scan in scans:
        found, tokenizer = run.token_lengths(exp, scan)
        lengths += found
    if not costed:
        return None
    result, findings = estimate(exp, lengths, tokenizer, run.settings, scale)
    run.findings += findings
    return result


def run_check(repo: Repo, settings: Settings, base: str | None = None) -> CheckReport:
    """Check the repo (or what changed since `base`): configs, datasets, eval spec, and new configs' cost."""
    scope = scope_of(repo, base)
    run = _Run(repo, settings)
    run.findings += schema_missing() if scope.configs else []
    run.findings += _check_names(repo, scope)
    data_files = {p.name for p in repo.data_dir.iterdir() if p.is_file()} if repo.data_dir.is_dir() else set()
    costs = []
    for path in scope.configs:
        loaded = _load(repo, path)
        if isinstance(loaded, Finding):
            run.findings.append(loaded)
        elif result := _check_config(run, loaded, data_files, path in scope.costed):
            costs.append(result)
    for path in sorted(scope.datasets):
        run.scan(path)
    eval_file = repo.rel(repo.eval_path)
    spec = check_eval(eval_file, repo.eval_path.read_text() if repo.eval_path.is_file() else None)
    run.findings += spec.findings
    _check_leaks(run, spec, eval_file)
    if base is not None:
        run.findings += check_frozen(repo, base, scope.changes)
    return CheckReport(
        run.findings, costs, sorted(run.stats.values(), key=lambda s: s.file), len(scope.configs), base
    )
