"""Config file names: `<series>-NNN.yml`, numbered 001, 002, … per series without gaps or repeats.

Results files count as used numbers, so a trained config that was removed never leaves a gap and its
number is never handed out again.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from haha.experiment import ConfigName
from haha.findings import Finding, Severity

# Looser than ConfigName so misnamed files (`Haha-2.yaml`) still join their series for numbering.
_LOOSE = re.compile(r"^(?P<series>.+?)-(?P<number>\d+)$")


def _series_number(path: Path) -> tuple[str, int] | None:
    match = _LOOSE.match(path.stem) if path.suffix in {".yml", ".yaml"} else None
    return (match["series"].lower(), int(match["number"])) if match else None


def series_of(path: Path) -> str | None:
    """The series a config file belongs to for numbering, even when its name is malformed."""
    parsed = _series_number(path)
    return parsed[0] if parsed else None


def used_numbers(configs: list[Path], results: list[str]) -> dict[str, set[int]]:
    """Series → the numbers its config files (misnamed ones too) and results basenames take."""
    used: dict[str, set[int]] = defaultdict(set)
    for path in configs:
        if parsed := _series_number(path):
            used[parsed[0]].add(parsed[1])
    for basename in results:
        if name := ConfigName.parse(basename):
            used[name.series].add(name.number)
    return used


def next_free(used: set[int]) -> int:
    return max(used, default=0) + 1


def _file_name(series: str, number: int) -> str:
    return ConfigName(series, number).basename + ".yml"


def check_names(configs: list[Path], results: list[str], rel: dict[Path, str]) -> list[Finding]:
    """Every config file (repo-relative names in `rel`) has a valid `<series>-NNN.yml` name."""
    used = used_numbers(configs, results)
    findings = []
    for path in configs:
        if path.suffix == ".yml" and ConfigName.parse(path.stem):
            continue
        parsed = _series_number(path)
        series = (
            re.sub(r"[^a-z0-9.-]+", "-", parsed[0] if parsed else path.stem.lower()).strip("-.") or "haha"
        )
        suggestion = _file_name(series, next_free(used.get(series, set())))
        findings.append(
            Finding(
                Severity.ERROR,
                "config file names must be <series>-NNN.yml: lowercase letters, digits, '-' or '.', "
                "then a dash and exactly 3 digits",
                rel[path],
                field="file name",
                fix=f"rename it to {suggestion}",
            )
        )
    return findings


def check_numbering(configs: list[Path], results: list[str], rel: dict[Path, str]) -> list[Finding]:
    """Numbers run 001, 002, … in each series: a repeat or a gap fails, naming the number to use."""
    used = used_numbers(configs, results)
    by_number: dict[tuple[str, int], list[Path]] = defaultdict(list)
    for path in configs:
        if parsed := _series_number(path):
            by_number[parsed].append(path)
    findings = []
    for (series, number), paths in sorted(by_number.items()):
        for path in paths[1:]:
            others = ", ".join(rel[p] for p in paths if p != path)
            findings.append(
                Finding(
                    Severity.ERROR,
                    f"number {number:03d} of series {series} is already used by {others}",
                    rel[path],
                    field="file name",
                    fix=f"rename it to {_file_name(series, next_free(used[series]))} (the next free number)",
                )
            )
    for series, numbers in sorted(used.items()):
        missing = [n for n in range(1, max(numbers) + 1) if n not in numbers]
        if not missing:
            continue
        after_gap = min(n for n in numbers if n > missing[0])
        for path in by_number.get((series, after_gap), []):
            findings.append(
                Finding(
                    Severity.ERROR,
                    f"numbers of series {series} must run 001, 002, … without gaps: "
                    f"{', '.join(f'{n:03d}' for n in missing)} missing",
                    rel[path],
                    field="file name",
                    fix=f"rename it to {_file_name(series, missing[0])} (the next free number)",
                )
            )
    return findings
