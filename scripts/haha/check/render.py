"""Printing a CheckReport: a terminal view, GitHub workflow annotations, or a sticky PR comment."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Column, Table

from haha.check.estimate import ConfigCost
from haha.check.gate import CheckReport, DatasetStats
from haha.findings import Finding, Severity
from haha.phases import human_duration

MARKER = "<!-- haha-check -->"
MAX_MARKDOWN_FINDINGS = 100  # a PR comment holds 65,536 characters
_ICON = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.NOTICE: "ℹ️"}
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.NOTICE: "cyan"}
_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTICE: 2}


def human_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def summary_line(report: CheckReport) -> str:
    counts = ", ".join(
        f"{n} {s.value}{'' if n == 1 else 's'}"
        for s in Severity
        if (n := report.count(s)) or s == Severity.ERROR
    )
    scope = f"changes since {report.base}" if report.base else "whole repo"
    if report.against and not report.base:
        scope += f", records compared with {report.against}"
    verdict = "failed" if report.exit_code else "passed"
    return f"haha check {verdict} ({scope}, {report.configs_checked} configs): {counts}"


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (_ORDER[f.severity], f.file or "", f.line or 0))


def _cost_row(c: ConfigCost) -> list[str]:
    total = None if c.total_hours is None else c.total_hours * 3600
    return [
        c.config,
        c.base_model,
        str(c.rows),
        f"{c.long_rows} {c.long_rows_action}" if c.long_rows else "0",
        human_count(c.train_tokens),
        f"{c.tokens_per_step:.0f}",
        _gpus(c),
        "?" if c.global_batch is None else str(c.global_batch),
        _memory(c),
        f"{c.mfu:.1%}",
        human_duration(c.train_seconds),
        human_duration(c.overhead_seconds),
        human_duration(total),
        "?" if c.dollars is None else f"${c.dollars:.2f}",
        predicted_from(c),
    ]


def predicted_from(c: ConfigCost) -> str:
    """Where the time and cost came from: past runs of this repo, or haha.toml's assumptions."""
    if c.predicted_from == "assumed":
        return "assumed (haha.toml)"
    return c.predicted_from if c.predicted_from.startswith("overhead") else f"from {c.predicted_from}"


_COST_HEAD = [
    "config",
    "base model",
    "rows",
    "over seq_len",
    "train tokens",
    "tokens/step",
    "GPUs",
    "batch",
    "GiB/GPU",
    "predicted MFU",
    "train time",
    "overhead",
    "total time",
    "cost",
    "predicted",
]
_DATA_HEAD = [
    "dataset",
    "rows",
    "invalid lines",
    "dup. instructions",
    "dup. rows",
    "empty outputs",
    "tokens mean / max",
]


def _data_row(d: DatasetStats) -> list[str]:
    tokens = "-" if d.mean_tokens is None else f"{d.mean_tokens:.0f} / {d.max_tokens} ({d.tokenizer})"
    return [
        d.file,
        str(d.rows),
        str(d.invalid_lines),
        str(d.duplicate_instructions),
        str(d.duplicate_rows),
        str(d.empty_outputs),
        tokens,
    ]


def _memory(c: ConfigCost) -> str:
    if c.memory_gib is None:
        return "?"
    of = f" / {c.gpu_memory_gib:.0f}" if c.gpu_memory_gib is not None else ""
    return f"{c.memory_gib:.1f}{of}"


def _gpus(c: ConfigCost) -> str:
    """GPUs per pod, × nodes, with the scaling efficiency the time assumes."""
    count = f"{c.gpus} × {c.nodes} nodes" if c.nodes > 1 else str(c.gpus)
    return f"{count} ({c.scaling_efficiency:.0%})" if c.gpus * c.nodes > 1 else "1"


def _gpu_note(report: CheckReport) -> str:
    gpus = sorted({c.gpu for c in report.costs})
    if not gpus:
        return ""
    note = f"predicted on {', '.join(gpus)}; total time includes pod overhead; cost is for every GPU"
    if any(c.gpus * c.nodes > 1 for c in report.costs):
        from haha.check.cost import SCALING_PER_DOUBLING

        note += f"; data-parallel scaling {SCALING_PER_DOUBLING:.0%} per doubling of GPUs"
    if any(c.nodes > 1 for c in report.costs):
        from haha.check.cost import NODE_SCALING_PER_DOUBLING

        note += f", {NODE_SCALING_PER_DOUBLING:.0%} per doubling of nodes"
    return note


def budget_note(report: CheckReport) -> str:
    """The new configs' predicted total against haha.toml's per-PR limit (empty without a limit)."""
    if report.per_pr_dollars <= 0 or not report.costs:
        return ""
    total = sum(c.dollars for c in report.costs if c.dollars is not None)
    verdict = "over" if total > report.per_pr_dollars else "within"
    return f"predicted total ${total:,.2f}, {verdict} the per-PR limit of ${report.per_pr_dollars:,.2f}"


def saving_line(report: CheckReport) -> str:
    """Which new configs would share a pod, and the overhead that saves (empty: nothing shared)."""
    from haha.sharedpod import group, saving

    if report.configs_per_pod <= 1:
        return ""
    pods = group(
        report.costs,
        lambda c: (c.base_model, c.gpu, c.gpus, c.interruptible, c.bid_per_gpu) if c.base_model else None,
        report.configs_per_pod,
    )
    shared = [pod for pod in pods if len(pod) > 1]
    if not shared:
        return ""
    minutes, dollars = 0.0, 0.0
    for pod in shared:
        first = pod[0]
        hourly = first.dollars / first.total_hours if first.dollars and first.total_hours else None
        more, cost = saving([len(pod)], report.overhead_minutes, hourly)
        minutes, dollars = minutes + more, dollars + (cost or 0.0)
    which = "; ".join(" + ".join(c.config for c in pod) for pod in shared)
    money = f" (${dollars:.2f})" if dollars else ""
    return (
        f"Shared pods (configs_per_pod = {report.configs_per_pod}): {which} run one after another "
        f"in one pod; the pod overhead paid once saves {minutes:.0f} min{money}"
    )


def render_text(report: CheckReport, color: bool = False, width: int = 140, findings: bool = True) -> str:
    """A terminal view: cost and dataset tables, then findings (worst first) and the verdict."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color, width=width, highlight=False)
    if report.costs:
        table = Table(
            Column(_COST_HEAD[0], no_wrap=True),
            *_COST_HEAD[2:],
            title=f"New configs ({_gpu_note(report)})",
            title_justify="left",
        )
        for cost in report.costs:
            row = _cost_row(cost)
            table.add_row(row[0], *row[2:])
        console.print(table)
        if note := budget_note(report):
            console.print(note, markup=False)
        if line := saving_line(report):
            console.print(line, markup=False)
    if report.datasets:
        table = Table(
            Column(_DATA_HEAD[0], no_wrap=True), *_DATA_HEAD[1:], title="Datasets", title_justify="left"
        )
        for stats in report.datasets:
            table.add_row(*_data_row(stats))
        console.print(table)
    for finding in _sorted(report.findings) if findings else []:
        console.print(finding.text(), style=_STYLE[finding.severity], markup=False)
    console.print(summary_line(report), style="bold red" if report.exit_code else "bold green", markup=False)
    return out.getvalue()


def render_github(report: CheckReport) -> str:
    """Workflow commands (annotations on the PR diff), then the text view as the log's summary."""
    lines = [f.github() for f in _sorted(report.findings)]
    return "\n".join([*lines, render_text(report, findings=False).rstrip()]) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
        "",
    ]


def _md_finding(f: Finding) -> str:
    where = f" `{f.where}`" if f.where else ""
    fix = f" — fix: {f.fix}" if f.fix else ""
    return f"- {_ICON[f.severity]} **{f.severity.value}**{where}: {f.message}{fix}"


def render_markdown(report: CheckReport) -> str:
    """A PR comment; the marker on line one lets a workflow find and update its own comment."""
    icon = "❌" if report.exit_code else "✅"
    lines = [MARKER, f"## {icon} {summary_line(report)}", ""]
    if report.costs:
        lines += ["### New configs", "", f"_{_gpu_note(report)}_", ""]
        lines += _md_table(_COST_HEAD, [_cost_row(c) for c in report.costs])
        lines += [f"_{note}_", ""] if (note := budget_note(report)) else []
        if line := saving_line(report):
            lines += [line, ""]
    if report.datasets:
        lines += ["### Datasets", "", *_md_table(_DATA_HEAD, [_data_row(d) for d in report.datasets])]
    if report.findings:
        shown = _sorted(report.findings)
        lines += ["### Findings", "", *(_md_finding(f) for f in shown[:MAX_MARKDOWN_FINDINGS])]
        if len(shown) > MAX_MARKDOWN_FINDINGS:
            lines.append(f"- … and {len(shown) - MAX_MARKDOWN_FINDINGS} more: run `haha check` locally")
        lines.append("")
    return "\n".join(lines)


RENDERERS = {"text": render_text, "github": render_github, "markdown": render_markdown}
