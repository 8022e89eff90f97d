"""`haha check`: decide what is in scope (the whole repo, or what changed since a ref), check it once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from haha.budget import per_pr_finding
from haha.check.axolotl_schema import check_config_schema, schema_missing
from haha.check.datasets import MAX_DATASET_BYTES, DatasetScan, digest, leaks, scan_dataset
from haha.check.estimate import ConfigCost, estimate
from haha.check.frozen import check_datasets_frozen, check_frozen, check_results_frozen
from haha.check.history import PastRun, curve_flops, load_history
from haha.check.numbering import check_names, check_numbering, series_of
from haha.check.params import estimate_params
from haha.check.records import check_records, ratings_paths, results_paths
from haha.check.rules import check_rules
from haha.check.scale import check_scale, previous_in_series
from haha.check.tokens import TokenCounter, chatml, count_chats, counter_for, dialogue
from haha.check.tree import check_tree
from haha.errors import InputError
from haha.evalspec import MAX_EVAL_CHARS, EvalCheck, check_eval
from haha.experiment import Experiment
from haha.findings import Finding, Severity
from haha.repo import CONFIG_DIR, DATA_DIR, Change, Repo
from haha.resultsindex import ResultsIndex
from haha.settings import Settings, setting_line
from haha.yamlfile import MAX_YAML_BYTES


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
    against: str | None = None  # the ref records were compared with (base, or the default branch)
    per_pr_dollars: float = 0.0  # haha.toml [budget]: the new configs' predicted total may not exceed it
    # Shared pods ([compute] configs_per_pod): the gate shows what sharing the pod overhead saves.
    configs_per_pod: int = 1
    overhead_minutes: float = 0.0

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
    results: list[Path] = field(default_factory=list)
    ratings: list[Path] = field(default_factory=list)


def scope_of(repo: Repo, base: str | None) -> Scope:
    """Without a base: everything, costing configs that have no results yet. With one: what changed."""
    if base is None:
        configs = repo.config_paths()
        costed = {p for p in configs if not repo.results_path(p.stem).exists()}
        data = {p for p in repo.data_paths() if p.suffix == ".jsonl"}
        return Scope(configs, costed, data, results=results_paths(repo), ratings=ratings_paths(repo))
    changes = repo.changes_since(base)
    present = [
        (c, repo.root / c.path) for c in changes if c.status != "D" and repo.inside(repo.root / c.path)
    ]
    configs = sorted(p for c, p in present if c.path.parent == CONFIG_DIR)
    costed = {p for c, p in present if c.path.parent == CONFIG_DIR and c.status == "A"}
    data = {p for c, p in present if c.path.parent == DATA_DIR}
    series = {s for c in changes if c.path.parent == CONFIG_DIR and (s := series_of(c.path))}
    touched = {p for _, p in present}
    results = [p for p in results_paths(repo) if p in touched]
    ratings = [p for p in ratings_paths(repo) if p in touched]
    return Scope(configs, costed, data, series, changes, results, ratings)


class _Run:
    """One check run: configs are parsed once, dataset scans and token counts cached by content, so
    each happens once."""

    def __init__(self, repo: Repo, settings: Settings, results: ResultsIndex | None = None) -> None:
        self.repo, self.settings = repo, settings
        self.results = results or ResultsIndex(repo)  # each results file read once per process
        self.configs = repo.config_paths()
        self.experiments: dict[Path, Experiment | Finding] = {}
        self.findings: list[Finding] = []
        self.scans: dict[tuple[str, str], DatasetScan] = {}
        self.counters: dict[str, TokenCounter] = {}
        self.lengths: dict[tuple[str, str, str], list[int]] = {}
        self.dialogues: dict[tuple[str, str], list[int]] = {}
        self.stats: dict[str, DatasetStats] = {}
        self._history: list[PastRun] | None = None

    @property
    def history(self) -> list[PastRun]:
        """The repo's past runs (check/history.py), read once and only when a config is costed."""
        if self._history is None:
            self._history = load_history(
                self.results.documents(), lambda m: estimate_params(m)[0], curve_flops(self.settings)
            )
        return self._history

    def load(self, path: Path) -> Experiment | Finding:
        if path not in self.experiments:
            self.experiments[path] = _load(self.repo, path)
        return self.experiments[path]

    def scan(self, path: Path) -> DatasetScan | None:
        rel = self.repo.rel(path)
        if not self.repo.inside(path):
            return None  # a link that leaves the repo: check/tree.py reports it, nothing reads it
        try:
            if (size := path.stat().st_size) > MAX_DATASET_BYTES:
                raise OSError(f"{size:,} bytes is over the gate's limit of {MAX_DATASET_BYTES:,}")
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
            default = exp.system_message
            systems = [r.system or default for r in scan.rows]
            if counter.splits_at_markers:
                lengths = count_chats(counter, systems, self.dialogue_lengths(counter, scan))
            else:  # the markers are ordinary text: encode whole rows, as the trainer sees them
                rows = zip(systems, scan.rows, strict=True)
                lengths = counter.count([chatml(s, r.instruction, r.input, r.output) for s, r in rows])
            self.lengths[key] = lengths
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

    def dialogue_lengths(self, counter: TokenCounter, scan: DatasetScan) -> list[int]:
        """Token counts of the rows' user and assistant turns: once per dataset and tokenizer, since
        only the system turn differs between configs."""
        key = (scan.digest, counter.name)
        if key not in self.dialogues:
            texts = [dialogue(r.instruction, r.input, r.output) for r in scan.rows]
            self.dialogues[key] = counter.count(texts)
        return self.dialogues[key]


def _load(repo: Repo, path: Path) -> Experiment | Finding:
    try:
        with path.open("rb") as handle:  # never more than the limit into memory
            raw = handle.read(MAX_YAML_BYTES + 1)
        text = raw.decode("utf-8", errors="replace" if len(raw) > MAX_YAML_BYTES else "strict")
        return Experiment.load(Path(repo.rel(path)), text)
    except InputError as exc:
        return Finding.from_error(exc)
    except (OSError, UnicodeDecodeError) as exc:
        return Finding(Severity.ERROR, f"cannot read config: {exc}", repo.rel(path))


def _eval_text(repo: Repo) -> str | None:
    """eval.json's text, bounded (check_eval refuses what is over its limit); None when absent."""
    if not repo.inside(repo.eval_path):
        return None
    with repo.eval_path.open("rb") as handle:
        return handle.read(MAX_EVAL_CHARS + 1).decode("utf-8", errors="replace")


def _eval_sha256(repo: Repo) -> str | None:
    """eval.json's hash, as results record it; None when absent or over the limit (check_eval says so)."""
    if not repo.inside(repo.eval_path):
        return None
    with repo.eval_path.open("rb") as handle:
        raw = handle.read(MAX_EVAL_CHARS + 1)
    return hashlib.sha256(raw).hexdigest() if len(raw) <= MAX_EVAL_CHARS else None


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
    earlier = previous_in_series(exp, run.configs)
    previous = run.load(earlier) if earlier else None  # a broken one is reported on its own
    scale, found = check_scale(
        exp, run.settings, run.repo.root, previous if isinstance(previous, Experiment) else None
    )
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
    result, findings = estimate(exp, lengths, tokenizer, run.settings, scale, run.history)
    run.findings += findings
    return result


def _check_against(repo: Repo, ref: str, changes: list[Change], results: ResultsIndex) -> list[Finding]:
    """The records (trained configs, their datasets, results) compared with `ref`."""
    return [
        *check_frozen(repo, ref, changes),
        *check_datasets_frozen(repo, ref, changes),
        *check_results_frozen(repo, ref, changes, _eval_sha256(repo), results),
    ]


def run_check(
    repo: Repo, settings: Settings, base: str | None = None, against: str | None = None
) -> CheckReport:
    """Check the repo (or what changed since `base`): configs, datasets, eval spec, results, ratings,
    and new configs' cost. Records are compared with `base`, else with `against` (the default
    branch a plain `haha check` finds), so a trained config is frozen without `--base` too."""
    scope = scope_of(repo, base)
    run = _Run(repo, settings)
    run.findings += check_tree(repo)
    run.findings += schema_missing() if scope.configs else []
    run.findings += _check_names(repo, scope)
    data_files = {p.name for p in repo.data_paths()}
    costs = []
    for path in scope.configs:
        loaded = run.load(path)
        if isinstance(loaded, Finding):
            run.findings.append(loaded)
        elif result := _check_config(run, loaded, data_files, path in scope.costed):
            costs.append(result)
    for path in sorted(scope.datasets):
        run.scan(path)
    eval_file = repo.rel(repo.eval_path)
    spec = check_eval(eval_file, _eval_text(repo))
    run.findings += spec.findings
    _check_leaks(run, spec, eval_file)
    run.findings += check_records(repo, scope.results, scope.ratings, run.results)
    compare = base or against
    if compare is not None:
        changes = scope.changes if base else repo.changes_since(compare)
        run.findings += _check_against(repo, compare, changes, run.results)
    run.findings += _over_budget(repo, settings, costs)
    stats = sorted(run.stats.values(), key=lambda s: s.file)
    c = settings.compute
    return CheckReport(
        run.findings,
        costs,
        stats,
        len(scope.configs),
        base,
        compare,
        per_pr_dollars=settings.budget.per_pr_dollars,
        configs_per_pod=c.configs_per_pod,
        overhead_minutes=c.overhead_minutes,
    )


def _over_budget(repo: Repo, settings: Settings, costs: list[ConfigCost]) -> list[Finding]:
    """The per-PR spend limit, read from the checkout's own haha.toml: the PR's, so raising the limit
    is part of the diff its reviewer approves."""
    line = setting_line(repo.root, "budget", "per_pr_dollars")
    found = per_pr_finding([(c.config, c.dollars) for c in costs], settings.budget.per_pr_dollars, line)
    return [found] if found else []


class Estimator:
    """The gate's estimate for one config after another, as `haha check` shows it for a new one: one
    check run (past runs, tokenizers, dataset scans read once) priced again for each config. `haha
    plan`'s monthly limit and `haha launch`'s recorded prediction use it."""

    def __init__(self, repo: Repo, settings: Settings, results: ResultsIndex | None = None) -> None:
        self._run = _Run(repo, settings, results)
        self._data_files = {p.name for p in repo.data_paths()}

    def cost(self, name: str) -> ConfigCost | None:
        """The config's estimate; None where the gate cannot price it (unreadable config or data)."""
        run = self._run
        loaded = run.load(run.repo.config_path(name))
        if not isinstance(loaded, Experiment):
            return None
        return _check_config(run, loaded, self._data_files, True)


def predict_costs(
    repo: Repo, settings: Settings, names: Iterable[str], results: ResultsIndex | None = None
) -> dict[str, ConfigCost]:
    """The gate's own estimate of each named config (configs it cannot price are left out)."""
    estimator = Estimator(repo, settings, results)
    return {name: found for name in names if (found := estimator.cost(name)) is not None}
