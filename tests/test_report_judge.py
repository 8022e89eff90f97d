"""The optional judge against a loopback OpenAI-compatible fake: verdicts, cache, skip, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.openai_chat import FakeChat, serve
from haha.cli import context
from haha.errors import InputError, ServiceError
from haha.rate.ratings import load_file
from haha.report.commands import judge_command
from report_data import (
    BASE_MODEL,
    PROMPTS,
    baseline_doc,
    healthy,
    standard_repo,
    vote,
    write_baseline,
    write_votes,
)

A, B = "haha-llama-3-8b-lora-001", "haha-llama-3-8b-lora-004"  # healthy vs mostly empty


def test_judge_skips_clearly_without_endpoint(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("HAHA_JUDGE_URL", raising=False)
    assert judge_command(*context(standard_repo(tmp_path)), A, B) == 0
    assert "judge skipped: no judge configured" in capsys.readouterr().out
    assert not (tmp_path / "train/results/judge").exists()


def test_judge_scores_and_caches(tmp_path: Path, capsys, monkeypatch) -> None:
    root = standard_repo(tmp_path)
    fake = FakeChat()  # the longer punchline wins: the healthy run beats the empty one
    with serve(fake) as url:
        monkeypatch.setenv("HAHA_JUDGE_URL", url)
        monkeypatch.setenv("HAHA_JUDGE_MODEL", "fake-judge")
        monkeypatch.setenv("HAHA_JUDGE_API_KEY", "sk-test")
        assert judge_command(*context(root), A, B) == 0
        first = capsys.readouterr().out
        asked = len(fake.requests)
        assert judge_command(*context(root), A, B) == 0
        second = capsys.readouterr().out
    assert asked == 165 and len(fake.requests) == asked  # the re-run asked nothing
    assert f"{A} wins " in first and "(asked 165, cached 0)" in first
    assert "(asked 0, cached 165)" in second
    wins_a = int(first.split(f"{A} wins ")[1].split(",")[0])
    assert wins_a >= 120  # every pair where B is empty
    assert fake.requests[0]["model"] == "fake-judge"
    assert fake.headers[0]["Authorization"] == "Bearer sk-test"
    cache = json.loads((root / f"train/results/judge/{A}__vs__{B}.json").read_text())
    assert len(cache["scores"]) == 165
    assert {v["winner"] for v in cache["scores"].values()} <= {"a", "b", "tie"}
    orders = {"Punchline 1: " in r["messages"][1]["content"] for r in fake.requests}
    assert orders == {True}


def test_judge_swaps_order_against_position_bias(tmp_path: Path, capsys, monkeypatch) -> None:
    root = standard_repo(tmp_path)
    fake = FakeChat(choose=lambda setup, first, second: "1")  # always prefers whatever comes first
    with serve(fake) as url:
        monkeypatch.setenv("HAHA_JUDGE_URL", url)
        monkeypatch.setenv("HAHA_JUDGE_MODEL", "fake-judge")
        judge_command(*context(root), A, "haha-llama-3-8b-lora-002")
    out = capsys.readouterr().out
    wins_a = int(out.split(f"{A} wins ")[1].split(",")[0])
    assert 40 < wins_a < 125  # a position-biased judge splits roughly evenly


def test_judge_failures_are_service_errors(tmp_path: Path, monkeypatch) -> None:
    root = standard_repo(tmp_path)
    with serve(FakeChat(status=500)) as url:
        monkeypatch.setenv("HAHA_JUDGE_URL", url)
        monkeypatch.setenv("HAHA_JUDGE_MODEL", "fake-judge")
        with pytest.raises(ServiceError, match="answered 500"):
            judge_command(*context(root), A, B)
    monkeypatch.delenv("HAHA_JUDGE_MODEL")
    with pytest.raises(InputError, match="HAHA_JUDGE_MODEL"):
        judge_command(*context(root), A, B)


def test_judge_verdicts_become_rating_rows_once(tmp_path: Path, capsys, monkeypatch) -> None:
    root = standard_repo(tmp_path)
    with serve(FakeChat()) as url:
        monkeypatch.setenv("HAHA_JUDGE_URL", url)
        monkeypatch.setenv("HAHA_JUDGE_MODEL", "org/fake-judge")
        judge_command(*context(root), A, B)
        judge_command(*context(root), A, "haha-llama-3-8b-lora-002")
        judge_command(*context(root), A, B)  # all cached: rewrites this pair's rows, never duplicates them
    out = capsys.readouterr().out
    assert "165 votes in train/results/ratings/judge--org--fake-judge.jsonl" in out
    path = root / "train/results/ratings/judge--org--fake-judge.jsonl"
    rows = [r.row() for r in load_file(path)]  # every row valid against schemas/rating.schema.json
    assert len(rows) == 2 * 165
    assert {r["rater"] for r in rows} == {"judge:org/fake-judge"}
    assert {(r["a"], r["b"]) for r in rows} == {(A, B), (A, "haha-llama-3-8b-lora-002")}
    cache = json.loads((root / f"train/results/judge/{A}__vs__{B}.json").read_text())["scores"]
    by_key = {(v["prompt"], v["temperature"], v["seed"]): v["winner"] for v in cache.values()}
    assert all(by_key[(r["prompt"], r["temperature"], r["seed"])] == r["winner"] for r in rows if r["b"] == B)


def haha_judge(root: Path, url: str, *names: str) -> subprocess.CompletedProcess[str]:
    """The real `haha judge` process against the fake endpoint."""
    env = {**os.environ, "HAHA_JUDGE_URL": url, "HAHA_JUDGE_MODEL": "org/fake-judge"}
    haha = Path(sys.executable).parent / "haha"
    argv = [str(haha), "judge", *names, "--repo", str(root)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def test_a_judge_with_no_verdict_keeps_the_committed_votes(tmp_path: Path) -> None:
    """Issue 17: an endpoint whose replies hold no verdict left the judge's ratings file at 0 bytes."""
    root = standard_repo(tmp_path)
    rows = [vote(A, B, "a", rater="judge:org/fake-judge", prompt=p) for p in PROMPTS[:3]]
    path = write_votes(root, "judge--org--fake-judge.jsonl", rows)
    before = path.read_bytes()
    with serve(FakeChat(choose=lambda setup, first, second: "Both are fine.")) as url:
        done = haha_judge(root, url, A, B)
    assert done.returncode == ServiceError.exit_code, done.stderr
    assert "no verdict" in done.stderr and "HAHA_JUDGE_MODEL" in done.stderr and "fix:" in done.stderr
    assert "Traceback" not in done.stderr
    assert path.read_bytes() == before


def test_unclear_replies_are_asked_again_and_never_delete_a_vote(tmp_path: Path, monkeypatch) -> None:
    root = standard_repo(tmp_path)
    answers = iter(["1", "hmm"] * 1000)  # every other reply has no verdict
    monkeypatch.setenv("HAHA_JUDGE_MODEL", "org/fake-judge")
    with serve(FakeChat(choose=lambda setup, first, second: next(answers))) as url:
        monkeypatch.setenv("HAHA_JUDGE_URL", url)
        judge_command(*context(root), A, "haha-llama-3-8b-lora-002")
        first = load_file(root / "train/results/ratings/judge--org--fake-judge.jsonl")
        answers = iter(["hmm"] * 1000 + ["2"] * 1000)  # re-asked, no verdict again: the rows stay
        with pytest.raises(ServiceError, match="no verdict"):
            judge_command(*context(root), A, "haha-llama-3-8b-lora-002")
        assert load_file(root / "train/results/ratings/judge--org--fake-judge.jsonl") == first
    assert 50 < len(first) < 120


def test_the_cache_is_one_safe_file_and_old_entries_are_moved_there(tmp_path: Path, monkeypatch) -> None:
    """Issue 17: `baseline:org/model` made the cache path hold `:` and a sub-folder."""
    root = standard_repo(tmp_path)
    write_baseline(root, baseline_doc(healthy))
    base = f"baseline:{BASE_MODEL}"
    fake = FakeChat()
    monkeypatch.setenv("HAHA_JUDGE_MODEL", "fake-judge")
    with serve(fake) as url:
        monkeypatch.setenv("HAHA_JUDGE_URL", url)
        judge_command(*context(root), A, base)
        judge_dir = root / "train/results/judge"
        (cache,) = judge_dir.iterdir()
        assert cache.is_file() and ":" not in cache.name
        old = judge_dir / f"{A}__vs__{base}.json"  # where the cache used to be: a folder from the `/`
        old.parent.mkdir(parents=True)
        cache.rename(old)
        asked = len(fake.requests)
        judge_command(*context(root), A, base)
    assert len(fake.requests) == asked  # the old entries were found: nothing asked again
    assert [p.name for p in judge_dir.iterdir()] == [cache.name]


def test_a_cache_nested_too_deep_is_named_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    root = standard_repo(tmp_path)
    cache = root / f"train/results/judge/{A}__vs__{B}.json"
    cache.parent.mkdir(parents=True)
    cache.write_text('{"scores": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with serve(FakeChat()) as url:
        monkeypatch.setenv("HAHA_JUDGE_URL", url)
        monkeypatch.setenv("HAHA_JUDGE_MODEL", "fake-judge")
        with pytest.raises(InputError) as caught:
            judge_command(*context(root), A, B)
    assert caught.value.location.file == str(cache) and "delete it" in (caught.value.fix or "")
