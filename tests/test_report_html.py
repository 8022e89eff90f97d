"""index.html renders in headless Chromium: the side-by-side table is in the DOM; a screenshot is saved.

Needs Debian's chromium (`apt-get install -y chromium`); skips only when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from haha.report import write_report
from report_data import PROMPTS, cost_history, standard_repo

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]  # fmt: skip
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


def test_side_by_side_table_in_dom_and_screenshot(tmp_path: Path) -> None:
    root = standard_repo(tmp_path / "repo")
    write_report(root)
    page = (root / "train/results/index.html").as_uri()

    dom = chromium(tmp_path, "--dump-dom", page).stdout
    tables = re.findall(r'<table class="side-by-side">(.*?)</table>', dom, re.S)
    assert len(tables) == len(PROMPTS)
    first = tables[0]
    assert re.findall(r"<th>(T = [\d.]+)</th>", first) == [
        "T = 0.1",
        "T = 0.3",
        "T = 0.5",
        "T = 0.7",
        "T = 0.9",
    ]
    assert len(re.findall(r'<td class="config">', first)) == 6
    assert first.count("<details>") == 6 * 5  # seeds 2–3 collapsible in every cell
    assert '<span class="tag loop">loop</span>' in first and '<span class="tag echo">echo</span>' in first
    assert '<h2 id="flags">Flags</h2>' in dom
    assert '<img class="plot" src="plots/metrics.png"' in dom

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", page)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000


def test_cost_section_in_dom(tmp_path: Path) -> None:
    """The money: three months and a total, one row per run, both plots linked."""
    root = cost_history(tmp_path / "repo")
    write_report(root)
    dom = chromium(tmp_path, "--dump-dom", (root / "train/results/index.html").as_uri()).stdout
    months = re.search(r'<table aria-label="spend per month">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert months is not None
    assert re.findall(r"<tr><td[^>]*>([^<]+)</td>", months.group(1)) == [
        "2026-09",
        "2026-10",
        "2026-11",
        "all",
    ]
    runs = re.search(r'<table aria-label="cost per config">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert runs is not None and runs.group(1).count("<tr>") == 31
    assert '<a href="#cost">Cost</a>' in dom
    assert (
        '<img class="plot" src="plots/cost.png"' in dom and '<img class="plot" src="plots/phases.png"' in dom
    )
