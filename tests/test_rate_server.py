"""`haha rate`'s server over real HTTP on 127.0.0.1: blind items, votes on disk, refusals, bounded life."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from haha.rate import ratings
from haha.rate.deck import Deck
from haha.rate.server import HOST, Session, serve
from haha.report.load import load_runs
from report_data import (
    BASE_MODEL,
    baseline_doc,
    healthy,
    make_repo,
    results_doc,
    vote,
    write_baseline,
    write_votes,
)

NAMES = ("haha-x-001", "haha-x-002")


def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path, [results_doc(n, healthy) for n in NAMES])
    write_baseline(root, baseline_doc(healthy))
    return root


def session(root: Path, rater: str = "ana", seed: int = 1) -> Session:
    results = root / "train/results"
    runs = load_runs(results)
    deck = Deck(runs, ratings.load_ratings(results), rater, random.Random(seed))
    path = ratings.rater_path(results, rater)
    return Session(deck, rater, path, "train/results/ratings/ana.jsonl")


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def post(url: str, body: object, kind: str = "application/json") -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": kind}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def test_votes_land_in_the_raters_file_in_stored_order(tmp_path: Path) -> None:
    root = repo(tmp_path)
    texts = {r.name: {(s.prompt, s.temperature, s.seed): s.text for s in r.samples}
             for r in load_runs(root / "train/results")}  # fmt: skip
    s = session(root)
    with serve(s, stop_after=60) as running:
        assert running.url.startswith(f"http://{HOST}:")
        page = urllib.request.urlopen(running.url, timeout=10).read().decode()
        assert "Which punchline is funnier?" in page
        item = get(running.url + "next")
        assert set(item) == {"id", "prompt", "left", "right", "temperature", "seed"}  # no names
        shown = [item]
        for choice in ("left", "right", "tie", "skip"):
            reply = post(running.url + "vote", {"id": shown[-1]["id"], "choice": choice})
            assert reply["file"] == "train/results/ratings/ana.jsonl"
            shown.append(reply["next"])
    rows = [json.loads(line) for line in (root / "train/results/ratings/ana.jsonl").read_text().splitlines()]
    assert len(rows) == 3  # skip writes nothing
    for row, item, choice in zip(rows, shown, ("left", "right", "tie"), strict=False):
        assert row["a"] < row["b"] and row["rater"] == "ana" and row["prompt"] == item["prompt"]
        assert (row["temperature"], row["seed"]) == (item["temperature"], item["seed"])
        key = (row["prompt"], row["temperature"], row["seed"])
        if choice == "tie":
            assert row["winner"] == "tie"
        else:
            picked = item[choice]
            assert texts[row[row["winner"]]][key] == picked  # the winner wrote the text on that side
    base = f"baseline:{BASE_MODEL}"
    pairs = {(r["a"], r["b"]) for r in rows}  # the fewest-voted pair comes next: three votes, three pairs
    assert pairs == {(base, NAMES[0]), (base, NAMES[1]), NAMES}
    assert ratings.load_ratings(root / "train/results")[0].rater == "ana"


def test_each_comparison_is_shown_once_and_both_sides_get_shuffled(tmp_path: Path) -> None:
    root = make_repo(tmp_path, [results_doc(n, healthy) for n in NAMES])
    s = session(root)
    seen, swaps = set(), 0
    while (item := s.deck.next()) is not None:
        key = (item.a, item.b, item.prompt, item.temperature, item.seed)
        assert key not in seen
        seen.add(key)
        swaps += item.swapped
        s.deck.done(item, voted=False)
    assert len(seen) == 165  # one pair (two baselines are never paired; none here), every key once
    assert 40 < swaps < 125


def test_refuses_other_hosts_forms_and_unknown_ids(tmp_path: Path) -> None:
    s = session(repo(tmp_path))
    with serve(s, stop_after=60) as running:
        request = urllib.request.Request(running.url + "next", headers={"Host": "evil.example:80"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 421
        item = get(running.url + "next")
        with pytest.raises(urllib.error.HTTPError) as caught:
            post(running.url + "vote", {"id": item["id"], "choice": "left"}, kind="text/plain")
        assert caught.value.code == 415
        with pytest.raises(urllib.error.HTTPError) as caught:
            post(running.url + "vote", {"id": "nope", "choice": "left"})
        assert caught.value.code == 409
    assert not (tmp_path / "train/results/ratings").exists()


def test_stops_by_itself(tmp_path: Path) -> None:
    s = session(repo(tmp_path))
    with serve(s, stop_after=0.5) as running:
        assert running.stopped.wait(10)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(running.url, timeout=2)


def test_haha_rate_process_serves_and_stops(tmp_path: Path) -> None:
    """The real `haha rate` process: prints its URL, takes a vote, stops by itself (--stop-after).

    The rater's committed file lacks its final newline (as an editor may save it): the vote goes on a
    line of its own, and the old vote stays.
    """
    root = repo(tmp_path)
    old = json.dumps(vote(*NAMES, "a", rater="Bo Li"))
    (root / "train/results/ratings").mkdir(parents=True)
    (root / "train/results/ratings/Bo-Li.jsonl").write_text(old)  # no final newline
    haha = Path(sys.executable).parent / "haha"
    argv = [str(haha), "rate", "--rater", "Bo Li", "--port", "0", "--stop-after", "180", "--repo", str(root)]
    # As from a terminal: a suite run as a background job (`pytest &`) starts with SIGINT ignored, and a
    # child inherits that, so Python would install no Ctrl-C handler and the SIGINT below would be lost.
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = proc.stdout.readline()  # bounded: the server stops after 180 s and the pipe closes
        url = re.search(
            r"open (http://127\.0\.0\.1:\d+/) \(votes go to train/results/ratings/Bo-Li\.jsonl", line
        )
        assert url, line + proc.stderr.read()
        item = get(url.group(1) + "next")
        post(url.group(1) + "vote", {"id": item["id"], "choice": "tie"})
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop that reports the votes
        out, err = proc.communicate(timeout=180)  # generous: a loaded 2-core machine is slow to start it
    assert proc.returncode == 0, err
    assert "1 votes saved to train/results/ratings/Bo-Li.jsonl" in out
    first, row = ratings.load_file(root / "train/results/ratings/Bo-Li.jsonl")
    assert first.row() == json.loads(old)
    assert (row.rater, row.winner) == ("Bo Li", "tie")


def test_haha_rate_refuses_a_judge_name(tmp_path: Path) -> None:
    haha = Path(sys.executable).parent / "haha"
    done = subprocess.run(
        [str(haha), "rate", "--rater", "judge:me", "--repo", str(repo(tmp_path))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--rater" in done.stderr


def test_a_rater_never_sees_what_they_already_voted_on(tmp_path: Path) -> None:
    root = make_repo(tmp_path, [results_doc(n, healthy) for n in NAMES])
    results = root / "train/results"
    runs = load_runs(results)
    keys = [(s.prompt, s.temperature, s.seed) for s in runs[0].samples]
    rows = [vote(*NAMES, "a", rater="ana", prompt=p, temperature=t, seed=s) for p, t, s in keys[1:]]
    write_votes(root, "ana.jsonl", rows)
    earlier = ratings.load_ratings(results)
    ana = Deck(runs, earlier, "ana", random.Random(0))
    item = ana.next()
    assert item is not None and (item.prompt, item.temperature, item.seed) == keys[0]  # the one left
    ana.done(item, voted=True)
    assert ana.next() is None
    assert Deck(runs, earlier, "bo", random.Random(0)).next() is not None  # others still see them


@pytest.mark.parametrize("before", ["", "\n", '{"x": 1}', '{"x": 1}\n', "\n\n"])
def test_an_append_starts_on_a_line_of_its_own_and_keeps_every_byte(tmp_path: Path, before: str) -> None:
    path = tmp_path / "ratings/ana.jsonl"
    path.parent.mkdir()
    path.write_text(before)
    row = ratings.Rating(*NAMES, "p", 0.7, 1, "a", "ana", "2026-11-28T06:00:00Z")
    ratings.append(path, row)
    repair = "\n" if before and not before.endswith("\n") else ""
    assert path.read_text() == before + repair + row.line()
