"""The Funniest section: votes with a known order rank in that order; too few votes say so."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from haha.errors import InputError
from haha.rate.ratings import load_ratings
from haha.report import write_report
from haha.report.build import build_report
from haha.report.funniest import MIN_PAIR_VOTES, MIN_VOTES
from report_data import (
    BASE_MODEL,
    baseline_doc,
    healthy,
    make_repo,
    results_doc,
    standard_repo,
    vote,
    write_baseline,
    write_votes,
)

ORDER = ["haha-llama-3-8b-lora-003", "haha-llama-3-8b-lora-001", "haha-llama-3-8b-lora-002"]


def ordered_votes(order: list[str], rater: str, per_pair: int = 12) -> list[dict]:
    """Per pair, the better config (earlier in `order`) wins 3 of 4 votes; stored order alternates."""
    rows = []
    for better, worse in itertools.combinations(order, 2):
        for i in range(per_pair):
            a, b = (better, worse) if i % 2 else (worse, better)
            won = i % 4 != 3
            winner = ("a" if a == better else "b") if won else ("b" if a == better else "a")
            rows.append(vote(a, b, winner, rater=rater, seed=1 + i % 3))
    return rows


def ranked(text: str, heading: str) -> list[str]:
    """Config names of a ranking table in README.md, in row order."""
    section = text.split(f"### {heading}\n\n")[1].split("\n\n")[0]
    return [line.split(" | ")[1] for line in section.splitlines()[2:]]


def test_known_order_is_ranked_in_that_order(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    write_votes(root, "ana.jsonl", ordered_votes(ORDER, "ana"))
    write_votes(root, "judge--fake.jsonl", ordered_votes(list(reversed(ORDER)), "judge:fake"))
    write_report(root)
    text = (root / "train/results/README.md").read_text()
    assert ranked(text, "People") == ORDER
    assert ranked(text, "LLM judge") == list(reversed(ORDER))  # separately, each its own order
    assert "72 votes from 2 raters (people 36, judge 36)." in text
    report = build_report(root)
    assert report.funniest is not None
    people = report.funniest.ranking("people").ranked
    assert [s.name for s in people] == ORDER
    assert all(s.low <= s.score <= s.high for s in people)
    assert people[0].score > 1000 > people[-1].score
    leaderboard = text.split("## Leaderboard")[1].split("## Funniest")[0]
    assert "funny score" in leaderboard


def test_too_few_votes_say_so_instead_of_ranking(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    a, b = "haha-llama-3-8b-lora-001", "haha-llama-3-8b-lora-002"
    write_votes(root, "ana.jsonl", [vote(a, b, "a", seed=s) for s in (1, 2, 3)])
    write_report(root)
    text = (root / "train/results/README.md").read_text()
    people = text.split("### People\n\n")[1].split("\n\n###")[0]
    assert "_Nobody ranked yet._" in people
    assert f"Too few votes to rank (fewer than {MIN_VOTES} each): {a} (3), {b} (3)." in people
    pairs = text.split("### Votes per pair\n\n")[1]
    assert f"| {a} | {b} | 3–0–0 | 3–0–0 | — | too few votes (3 of {MIN_PAIR_VOTES}) |" in pairs


def test_no_votes_explain_how_to_add_them(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    write_report(root)
    text = (root / "train/results/README.md").read_text()
    assert "## Funniest\n\nNo votes yet. Rate completions blind with `haha rate`" in text


def test_win_rate_against_the_baseline(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    write_baseline(root, baseline_doc(healthy, seed=7))
    base, config = f"baseline:{BASE_MODEL}", "haha-llama-3-8b-lora-001"
    rows = [vote(config, base, "a" if i < 9 else "tie", seed=1 + i % 3) for i in range(10)]
    write_votes(root, "ana.jsonl", rows)
    write_report(root)
    text = (root / "train/results/README.md").read_text()
    against = text.split("### Against the baseline\n\n")[1].split("\n\n###")[0]
    assert f"| {config} | {base} | 95% of 10 | 95% of 10 | — |" in against
    assert "| haha-llama-3-8b-lora-002 | " + base + " | — | — | — |" in against


def test_a_bad_rating_line_names_file_and_line(tmp_path: Path) -> None:
    root = standard_repo(tmp_path)
    good = vote("haha-llama-3-8b-lora-001", "haha-llama-3-8b-lora-002", "a")
    path = write_votes(root, "ana.jsonl", [good, {**good, "winner": "c"}])
    with pytest.raises(InputError) as caught:
        load_ratings(root / "train/results")
    assert (caught.value.location.file, caught.value.location.line) == (str(path), 2)
    assert caught.value.location.field == "winner"
    path.write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(InputError, match="not valid JSON") as caught:
        build_report(root)
    assert caught.value.location.line == 2
    path.write_text(json.dumps({**good, "b": good["a"]}) + "\n")
    with pytest.raises(InputError, match="same config"):
        load_ratings(root / "train/results")


def test_report_with_votes_baseline_and_loss_is_byte_identical_after_deleting_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path, [])
    for n in range(1, 18):  # 17 configs: more than there are colours
        doc = results_doc(f"haha-llama-3-8b-lora-{n:03d}", healthy, learning_rate=1e-5 * n)
        loss = [{"step": s, "loss": 2.0 / s + 0.01 * n} for s in range(1, 9)]
        doc["meta"] = {"base_model": BASE_MODEL, "train_loss": loss}
        (root / f"train/results/{doc['config']['name']}.json").write_text(json.dumps(doc))
    write_baseline(root, baseline_doc(healthy, seed=3))
    names = [f"haha-llama-3-8b-lora-{n:03d}" for n in (1, 5, 9, 13)]
    write_votes(root, "ana.jsonl", ordered_votes(names, "ana", per_pair=6))
    first = {p: p.read_bytes() for p in write_report(root)}
    for path in first:
        path.unlink()
    second = {p: p.read_bytes() for p in write_report(root)}
    assert first == second
    assert {p.name for p in first} == {"README.md", "index.html", "metrics.png", "loss.png"}
    text = (root / "train/results/README.md").read_text()
    assert "17 configs and 1 baseline, " in text
    assert re.search(r"^## Training$", text, re.M)
