"""The report's money (issue 18): spend per month, predicted against actual, time by phase.

On a synthetic history (report_data.cost_history: 30 pod runs over three months with meta.phases and
meta.cost, one older run with stage seconds only, a local baseline) and on the committed starter
results, which predate meta.cost and are priced as estimates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from haha.report import write_report
from haha.report.build import build_report
from haha.report.costs import month_of
from haha.settings import load_settings
from report_data import cost_history, standard_repo

RESULTS = "train/results"
CHECKOUT = Path(__file__).resolve().parents[1]
# What the pod writes (haha.phases.POD_ORDER, the results schema): it publishes, then runs the baseline.
POD_ORDER = ("boot", "setup", "train", "eval", "publish", "baseline", "teardown")


def haha_report(root: Path) -> subprocess.CompletedProcess[str]:
    """The real `haha report` process."""
    haha = Path(sys.executable).parent / "haha"
    return subprocess.run(
        [str(haha), "report", "--repo", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "10000"},
        timeout=300,
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_history_totals_per_month_and_prediction_error(tmp_path: Path) -> None:
    costs = build_report(cost_history(tmp_path)).costs
    assert costs is not None
    months = {m.month: m for m in costs.months}
    assert list(months) == ["2026-09", "2026-10", "2026-11"]
    assert [m.runs for m in costs.months] == [10, 10, 11]  # 23:30 on 31 Oct at UTC−2 is November
    assert [round(m.dollars, 2) for m in costs.months] == [14.50, 13.20, 16.50]
    assert [round(m.estimated, 2) for m in costs.months] == [1.60, 0.0, 2.00]  # list price, estimated
    assert [m.unpriced for m in costs.months] == [0, 1, 0]
    assert [m.seconds for m in costs.months] == [26_100, 26_100, 29_700]  # the unpriced run's time counts
    assert round(costs.dollars, 2) == 44.20
    assert len(costs.runs) == 31  # the baseline evaluated locally is no spend
    assert len(costs.cost_errors) == 23 and len(costs.time_errors) == 24  # no price: no cost error
    assert costs.median_cost_error == pytest.approx(0.10)
    assert costs.median_time_error == pytest.approx(0.13)
    by_name = {r.name: r for r in costs.runs}
    old = by_name["haha-smollm2-135m-lora-001"]
    assert (old.priced, old.seconds, old.dollars) == ("estimated", 3600.0, 2.0)
    assert old.phases == (("train", 2700.0), ("eval", 900.0))
    first = by_name["haha-llama-3-8b-lora-001"]
    assert [p for p, _ in first.phases] == list(POD_ORDER)
    assert first.cost_error == pytest.approx(0.10) and first.time_error == pytest.approx(0.10)
    assert costs.phases == POD_ORDER


def test_haha_report_writes_the_cost_section_and_plots(tmp_path: Path) -> None:
    root = cost_history(tmp_path)
    done = haha_report(root)
    assert done.returncode == 0, done.stderr
    text = (root / RESULTS / "README.md").read_text()
    cost = section(text, "## Cost\n", "## Completions")
    assert (
        "31 runs cost $44.20 in all ($3.60 of it estimated from list prices). 1 run without a price is not "
        "in the totals. The gate's predictions were off by a median 10% on cost and 13% on time "
        "(absolute error, 23 predicted runs)." in cost
    )
    months = section(cost, "### Spend per month", "###")
    assert "| 2026-09 | 10 | 7h 15m | $14.50 | $1.60 | 0 |" in months
    assert "| 2026-10 | 10 | 7h 15m | $13.20 | $0.00 | 1 |" in months
    assert "| 2026-11 | 11 | 8h 15m | $16.50 | $2.00 | 0 |" in months
    assert "| all | 31 | 22h 45m | $44.20 | $3.60 | 1 |" in months
    runs = section(cost, "### Predicted and actual, per config", "###")
    assert (
        "| haha-llama-3-8b-lora-004 | 2026-09 | NVIDIA H100 80GB HBM3 | 23m 24s | 39m 00s | -40% | $0.78 "
        "| $1.30 | -40% | billed | 7 runs |" in runs
    )
    assert (
        "| haha-llama-3-8b-lora-014 | 2026-10 | NVIDIA H100 80GB HBM3 | 23m 24s | 39m 00s | -40% | $0.78 "
        "| unknown | — |" in runs
    )
    assert (
        "| haha-llama-3-8b-lora-005 | 2026-09 | NVIDIA H100 80GB HBM3 | — | 42m 00s | — | — | $1.40 | — "
        "| billed | — |" in runs
    )
    assert "| haha-llama-3-8b-lora-009 | 2026-09 | 2× NVIDIA H100 80GB HBM3 |" in runs
    assert (
        "| haha-smollm2-135m-lora-001 | 2026-11 | NVIDIA H100 80GB HBM3 | — | 1h 00m | — | — | $2.00 | — "
        "| estimated | — |" in runs
    )
    assert "baseline:" not in runs
    phases = section(cost, "### Time by phase", "![")
    assert phases.splitlines()[2] == (
        "| config | boot | setup | train | eval | publish | baseline | teardown | total |"
    )
    assert (
        "| haha-llama-3-8b-lora-001 | 4m 00s (13%) | 6m 00s (20%) | 15m 00s (50%) | 2m 00s (7%) "
        "| 1m 00s (3%) |" in phases
    )
    assert (
        "| haha-smollm2-135m-lora-001 | — | — | 45m 00s (75%) | 15m 00s (25%) | — | — | — | 1h 00m |"
        in phases
    )
    assert "![Predicted against actual cost per run; spend per month](plots/cost.png)" in cost
    assert "![Time per phase, per config](plots/phases.png)" in cost

    page = (root / RESULTS / "index.html").read_text()
    assert '<h2 id="cost">Cost</h2>' in page and '<a href="#cost">Cost</a>' in page
    html_months = section(page, 'aria-label="spend per month"', "</table>")
    assert (
        '<tr><td class="num">2026-10</td><td class="num">10</td><td class="num">7h 15m</td>'
        '<td class="num">$13.20</td><td class="num">$0.00</td><td class="num">1</td></tr>' in html_months
    )
    assert '<td>all</td><td class="num">31</td>' in html_months and "$44.20" in html_months
    assert '<td class="num">-40%</td>' in page
    for plot in ("plots/cost.png", "plots/phases.png"):
        assert (root / RESULTS / plot).read_bytes().startswith(b"\x89PNG")
        assert f'src="{plot}"' in page
    # one bar per run: the figure grows with the history instead of squeezing fifty bars into one
    assert png_size(root / RESULTS / "plots/phases.png")[1] > 31 * 0.2 * 80


def test_the_committed_starter_results_are_priced_as_estimates(tmp_path: Path) -> None:
    """Written before meta.cost: stage seconds at haha.toml's first GPU type, marked estimated."""
    shutil.copytree(
        CHECKOUT / RESULTS, tmp_path / RESULTS, ignore=shutil.ignore_patterns("*.md", "*.html", "plots")
    )
    shutil.copy(CHECKOUT / "haha.toml", tmp_path / "haha.toml")
    (tmp_path / "train/config").mkdir()
    starter = json.loads((tmp_path / RESULTS / "haha-smollm2-135m-lora-001.json").read_text())
    seconds = sum(starter["meta"]["stage_seconds"].values())
    gpu = load_settings(tmp_path, env={}).gpu()
    dollars = f"${seconds / 3600 * gpu.price_per_hour:.2f}"

    first = {p: p.read_bytes() for p in write_report(tmp_path)}
    assert {"plots/cost.png", "plots/phases.png"} <= {
        p.relative_to(tmp_path / RESULTS).as_posix() for p in first
    }
    assert {p: p.read_bytes() for p in write_report(tmp_path)} == first  # same data, same bytes
    text = (tmp_path / RESULTS / "README.md").read_text()
    cost = section(text, "## Cost\n", "## Completions")
    assert cost.startswith(
        f"\n1 run cost {dollars} in all ({dollars} of it estimated from list prices). No run carries a "
        "prediction"
    )
    assert (
        f"| haha-smollm2-135m-lora-001 | 2026-11 | {gpu.id} | — | 6m 33s | — | — | {dollars} | — "
        "| estimated | — |" in cost
    )
    assert "| haha-smollm2-135m-lora-001 | 4m 14s (65%) | 2m 19s (35%) | 6m 33s |" in cost
    assert "baseline:" not in cost  # the local baseline cost no pod
    assert f'<td class="num">{dollars}</td>' in (tmp_path / RESULTS / "index.html").read_text()
    # one run: a readable figure, not a sliver
    assert png_size(tmp_path / RESULTS / "plots/phases.png")[1] >= 2.8 * 80


def test_a_malformed_cost_names_the_file_and_field_and_keeps_the_report(tmp_path: Path) -> None:
    root = cost_history(tmp_path)
    write_report(root)
    before = {p: p.read_bytes() for p in (root / RESULTS).rglob("*") if p.is_file()}
    path = root / RESULTS / "haha-llama-3-8b-lora-002.json"
    doc = json.loads(path.read_text())
    doc["meta"]["cost"]["billed_dollars"] = "1.10"
    path.write_text(json.dumps(doc))
    done = haha_report(root)
    assert done.returncode == 2
    assert "haha-llama-3-8b-lora-002.json [meta.cost.billed_dollars]" in done.stderr
    assert "fix:" in done.stderr
    after = {p: p.read_bytes() for p in (root / RESULTS).rglob("*") if p.is_file() and p != path}
    assert after == {p: b for p, b in before.items() if p != path}


def test_no_cost_data_no_section_and_no_stale_plots(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    stale = [root / RESULTS / "plots/cost.png", root / RESULTS / "plots/phases.png"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"old")
    write_report(root)
    assert not any(p.exists() for p in stale)
    assert "## Cost" not in (root / RESULTS / "README.md").read_text()
    assert 'id="cost"' not in (root / RESULTS / "index.html").read_text()


def test_months_are_utc() -> None:
    assert month_of("2026-12-01T01:00:00+02:00") == "2026-11"
    assert month_of("2026-11-30T23:00:00") == "2026-11"  # naive: UTC
    assert month_of("2026-11-30T23:00:00Z") == "2026-11"
    assert month_of("last tuesday") == month_of(None) == "undated"


def test_a_run_without_a_bill_is_priced_alike_by_report_collect_and_budget(tmp_path: Path) -> None:
    """One pricing (haha.budget.ListPrice) for a run without meta.cost: the report's estimated row, collect's
    cost in the bot PR and the monthly budget's spend agree; only the report stops on a bad field."""
    from haha.collect import run_cost
    from haha.spend import estimated_dollars

    shutil.copytree(
        CHECKOUT / RESULTS, tmp_path / RESULTS, ignore=shutil.ignore_patterns("*.md", "*.html", "plots")
    )
    (tmp_path / "train/config").mkdir()
    toml = (CHECKOUT / "haha.toml").read_text()  # the first GPU type at a price of its own
    priced = re.sub(r"(?m)^price_per_hour = \S+", "price_per_hour = 7.25", toml, count=1)
    (tmp_path / "haha.toml").write_text(priced)
    settings = load_settings(tmp_path, env={})
    path = tmp_path / RESULTS / "haha-smollm2-135m-lora-001.json"
    document = json.loads(path.read_text())
    (row,) = [r for r in build_report(tmp_path).costs.runs if r.name == "haha-smollm2-135m-lora-001"]
    seconds, dollars, how = run_cost(document, None, settings)
    assert (row.seconds, row.dollars, row.priced) == (seconds, dollars, "estimated")
    assert dollars == pytest.approx(seconds / 3600 * 7.25) and how == f"estimate at {row.gpu_type} list price"
    assert estimated_dollars(settings)(document) == dollars

    document["meta"]["stage_seconds"]["train"] = "254"
    path.write_text(json.dumps(document))
    done = haha_report(tmp_path)
    assert done.returncode == 2, done.stderr
    assert "haha-smollm2-135m-lora-001.json [meta.stage_seconds.train]" in done.stderr
