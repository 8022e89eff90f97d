"""The report as one static HTML page (train/results/index.html): no server, no scripts."""

from __future__ import annotations

import re
from html import escape

from haha.report import cost_tables, tables
from haha.report.model import Cell, Report

MAX_TEXT_CHARS = 1500

STYLE = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg2: #f6f8fa; --bad: #cf222e; }
body { font: 15px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
  color: var(--fg); margin: 0 auto; padding: 24px 32px; max-width: 1800px; }
h1 { font-size: 28px; margin: 0 0 4px; } h2 { border-bottom: 1px solid var(--line); padding-bottom: 4px;
  margin-top: 36px; } h3 { font-size: 16px; margin: 28px 0 8px; }
nav a, a { color: #0969da; text-decoration: none; } nav { margin: 8px 0 16px; color: var(--muted); }
.muted { color: var(--muted); } code { background: var(--bg2); padding: 1px 4px; border-radius: 4px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 6px 10px; vertical-align: top; text-align: left; }
th { background: var(--bg2); position: sticky; top: 0; font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.flags li { margin: 4px 0; } .flags b { color: var(--bad); }
.ok { color: #1a7f37; }
table.side-by-side { table-layout: fixed; width: 100%; }
table.side-by-side th:first-child, table.side-by-side td:first-child { width: 190px; }
table.side-by-side td { font-size: 14px; overflow-wrap: anywhere; }
td.config { font-weight: 600; font-size: 13px; }
.c { white-space: pre-wrap; max-height: 14em; overflow-y: auto; } .c + .c, details .c { margin-top: 6px; }
.seed { color: var(--muted); font-size: 11px; margin-right: 4px; }
.empty { color: var(--muted); font-style: italic; }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; margin-top: 4px; }
.tag { display: inline-block; font-size: 11px; border-radius: 10px; padding: 0 6px; margin-left: 4px;
  background: #eaeef2; color: #57606a; white-space: nowrap; }
.tag.loop, .tag.too-long, .tag.degenerate { background: #ffebe9; color: var(--bad); }
.tag.echo { background: #fff8c5; color: #7d4e00; } .tag.copy { background: #ddf4ff; color: #0550ae; }
img.plot { max-width: 100%; border: 1px solid var(--line); }
tr.baseline td.config { color: var(--muted); font-style: italic; }
"""


def value(v: tables.CellValue) -> str:
    return tables.cell_text(v, link, escape)


def link(v: tables.Link) -> str:
    return f'<a href="{escape(v.url)}">{escape(v.label)}</a>'


def is_number(text: tables.CellValue) -> bool:
    return isinstance(text, str) and text[:1] in "0123456789<$+-" and text != ""


def table(t: tables.Table, caption: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.headers)
    rows = "".join(
        "<tr>"
        + "".join(f'<td class="num">{value(v)}</td>' if is_number(v) else f"<td>{value(v)}</td>" for v in row)
        + "</tr>"
        for row in t.rows
    )
    return (
        f'<table aria-label="{escape(caption)}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def flags_section(report: Report) -> str:
    if not report.flags:
        return '<h2 id="flags">Flags</h2><p class="ok">No broken runs.</p>'
    items = "".join(f"<li><b>{escape(f.name)}</b>: {escape('; '.join(f.reasons))}</li>" for f in report.flags)
    return (
        '<h2 id="flags">Flags</h2><p>Runs whose completions are broken; '
        f'don\'t plan the next configs from them.</p><ul class="flags">{items}</ul>'
    )


def inline(text: str) -> str:
    """Escaped text with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def funniest_section(report: Report) -> str:
    if report.funniest is None:
        return f'<h2 id="funniest">Funniest</h2><p>{inline(tables.NO_VOTES)}</p>'
    intro = f"{inline(tables.vote_summary(report))} {inline(tables.FUNNIEST_INTRO)}"
    parts = [f'<h2 id="funniest">Funniest</h2><p>{intro}</p>']
    for ranking in report.funniest.rankings:
        title = tables.GROUP_TITLES[ranking.group]
        body = (
            table(tables.ranking_table(ranking), f"ranking: {title}")
            if ranking.ranked
            else "<p>Nobody ranked yet.</p>"
        )
        note = tables.too_few(ranking)
        parts.append(
            f"<h3>{escape(title)}</h3>{body}" + (f'<p class="muted">{escape(note)}</p>' if note else "")
        )
    against = tables.versus_baseline(report)
    if against.rows:
        parts.append(
            f"<h3>Against the baseline</h3><p>{escape(tables.AGAINST_BASELINE)}</p>"
            + table(against, "against the baseline")
        )
    parts.append("<h3>Votes per pair</h3>" + table(tables.pair_votes(report), "votes per pair"))
    return "".join(parts)


def text(cell: Cell) -> str:
    tags = "".join(f'<span class="tag {t.replace(" ", "-")}">{t}</span>' for t in tables.badges(cell.verdict))
    seed = f'<span class="seed">#{cell.seed}</span>'
    body = cell.text.strip()
    if not body:
        return f'<div class="c">{seed}<span class="empty">(empty)</span>{tags}</div>'
    if len(body) > MAX_TEXT_CHARS:
        body = f"{body[:MAX_TEXT_CHARS]}… (+{len(body) - MAX_TEXT_CHARS:,} chars)"
    return f'<div class="c">{seed}{tags} {escape(body)}</div>'  # tags first: long texts scroll


def completions(cells: tuple[Cell, ...]) -> str:
    """Seed 1 in view, the other seeds behind a <details> so the table stays scannable."""
    if not cells:
        return '<span class="muted">—</span>'
    rest = cells[1:]
    more = f"<details><summary>{len(rest)} more seeds</summary>{''.join(text(c) for c in rest)}</details>"
    return text(cells[0]) + (more if rest else "")


def prompt_section(report: Report, number: int, prompt: str) -> str:
    head = "<th>config</th>" + "".join(f"<th>T = {t:g}</th>" for t in report.temperatures)
    rows = "".join(
        ('<tr class="baseline">' if r.run.is_baseline else "<tr>")
        + f'<td class="config">{escape(r.run.name)}</td>'
        + "".join(
            f"<td>{completions(report.completions(r.run.name, prompt, t))}</td>" for t in report.temperatures
        )
        + "</tr>"
        for r in report.rows
    )
    return (
        f'<h3 id="prompt-{number}">{number}. {escape(prompt)}</h3>'
        f'<table class="side-by-side"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def cost_section(report: Report, cost_plot: str | None = None, phase_plot: str | None = None) -> str:
    """Money: spend per month, predicted against actual per config, and where the time went."""
    costs = report.costs
    assert costs is not None and costs.runs
    words = "".join(f"<li><b>{escape(n)}</b>: {escape(t)}</li>" for n, t in cost_tables.phase_words(costs))
    parts = [
        f'<h2 id="cost">Cost</h2><p>{inline(cost_tables.headline(costs))}</p>'
        f'<p class="muted">{inline(cost_tables.sources(costs))}</p>',
        "<h3>Spend per month</h3>" + table(cost_tables.month_table(costs), "spend per month"),
        "<h3>Predicted and actual, per config</h3>" + table(cost_tables.run_table(costs), "cost per config"),
    ]
    if cost_plot:
        parts.append(
            f'<img class="plot" src="{escape(cost_plot)}" alt="Predicted against actual cost per run; '
            'spend per month">'
        )
    parts.append("<h3>Time by phase</h3>" + table(cost_tables.phase_table(costs), "time by phase"))
    parts.append(f"<ul>{words}</ul>")
    if phase_plot:
        parts.append(f'<img class="plot" src="{escape(phase_plot)}" alt="Time per phase, per config">')
    return "".join(parts)


def render(
    report: Report,
    plot: str | None,
    loss_plot: str | None = None,
    cost_plot: str | None = None,
    phase_plot: str | None = None,
) -> str:
    """The whole page, in the same order as the README."""
    has_costs = bool(report.costs and report.costs.runs)
    defined = "".join(f"<li><b>{escape(n)}</b>: {escape(t)}</li>" for n, t in tables.definitions(report))
    prompt_links = " · ".join(f'<a href="#prompt-{i}">{i}</a>' for i in range(1, len(report.prompts) + 1))
    body = [
        "<h1>Eval results</h1>",
        f'<p class="muted">{tables.headline(report)} Generated by '
        "<code>haha report</code> from <code>train/results/*.json</code>.</p>",
        '<nav><a href="#flags">Flags</a> · <a href="#leaderboard">Leaderboard</a> · '
        '<a href="#funniest">Funniest</a> · <a href="#metrics">Metrics</a>'
        + (' · <a href="#plots">Plots</a>' if plot else "")
        + (' · <a href="#training">Training</a>' if loss_plot else "")
        + (' · <a href="#cost">Cost</a>' if has_costs else "")
        + f" · Prompts: {prompt_links}</nav>",
        flags_section(report),
        '<h2 id="leaderboard">Leaderboard</h2><p class="muted">Cleanest first. Hyperparameters shown are '
        "those that differ between configs; ⚠ marks a flagged run; <code>baseline:</code> rows are base "
        "models without adapter.</p>" + table(tables.leaderboard(report), "leaderboard"),
        funniest_section(report),
        '<h2 id="metrics">Metrics</h2>' + table(tables.metrics(report), "metrics") + f"<ul>{defined}</ul>",
    ]
    if plot:
        body.append(
            f'<h2 id="plots">Plots</h2><img class="plot" src="{escape(plot)}" alt="Metrics against '
            'temperature, per config">'
        )
    if loss_plot:
        body.append(
            f'<h2 id="training">Training</h2><img class="plot" src="{escape(loss_plot)}" alt="Training and '
            'eval loss per step, per config">'
        )
    if has_costs:
        body.append(cost_section(report, cost_plot, phase_plot))
    if report.prompts:
        body.append(
            '<h2 id="completions">Completions</h2><p class="muted">Seed 1 shown; open '
            "“more seeds” for the rest.</p>"
        )
        body += [prompt_section(report, i, p) for i, p in enumerate(report.prompts, 1)]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Haha eval results</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
