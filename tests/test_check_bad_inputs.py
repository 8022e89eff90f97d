"""A generated corpus of bad inputs against `haha check` (issue 17, item 1).

Hypothesis strategies build configs (wrong types, out-of-range and non-finite numbers, missing keys,
bad dataset entries, YAML that is malformed, duplicated, aliased or too deep), dataset rows, eval
specs, results and ratings files. Each case goes through `run_check` (what `haha check` calls) and
the markdown and annotation renderers, in one small repo that passes as it is; a sample goes through
the real `haha check` process, every renderer included.
Every case must: fail (exit 1), carry an error naming the file it broke and a fix, raise nothing,
and leave every file in the repo as it was.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from check_helpers import ROOT
from haha.check import run_check
from haha.check.render import render_markdown
from haha.check.values import RANGES, Range
from haha.findings import Severity
from haha.repo import Repo
from haha.settings import load_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HAHA = Path(sys.executable).parent / "haha"
CONFIG = "train/config/haha-fuzz-001.yml"
SECOND = "train/config/haha-fuzz-002.yml"
DATA = "train/data/jokes.jsonl"
EVAL = "train/eval/eval.json"
RESULTS = "train/results/haha-fuzz-002.json"  # 002 is trained; 001 (the one broken) is new and costed
RATINGS = "train/results/ratings/alice.jsonl"
GOOD_CONFIG: dict[str, Any] = {
    "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "chat_template": "chatml",
    "default_system_message": "You write jokes.",
    "datasets": [{"path": "/workspace/data/jokes.jsonl", "type": "alpaca"}],
    "output_dir": "/workspace/output",
    "sequence_len": 128,
    "adapter": "lora",
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "micro_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "num_epochs": 1,
    "learning_rate": 0.0002,
    "wandb_project": "haha",
}
GOOD_ROWS = [
    {
        "instruction": f"Why did the {animal} cross the road?",
        "input": "",
        "output": f"To meet another {animal}.",
    }
    for animal in ("cat", "dog", "llama", "tuba")
]
GOOD_EVAL = {"prompts": ["A robot walks into a bar."], "settings": [{"temperature": 0.7}], "seedVariants": 2}
GOOD_RESULT = {
    "config": {"name": "haha-fuzz-002", "default_system_message": "You write jokes."},
    "results": [],
}
GOOD_VOTE = {
    "a": "haha-fuzz-001",
    "b": "haha-fuzz-002",
    "prompt": "A robot walks into a bar.",
    "temperature": 0.7,
    "seed": 1,
    "winner": "a",
    "rater": "alice",
    "time": "2026-12-01T10:00:00Z",
}
PROFILE = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def _jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def build_repo(root: Path) -> Path:
    """A small repo that passes `haha check`: two configs of one series, data, eval, results, a vote."""
    for folder in ("config", "data", "eval", "results/ratings"):
        (root / "train" / folder).mkdir(parents=True)
    shutil.copy(ROOT / "haha.toml", root / "haha.toml")
    (root / CONFIG).write_text(_dump(GOOD_CONFIG))
    (root / SECOND).write_text(_dump(GOOD_CONFIG))
    (root / DATA).write_text(_jsonl(GOOD_ROWS))
    (root / EVAL).write_text(json.dumps(GOOD_EVAL, indent=2))
    (root / RESULTS).write_text(json.dumps(GOOD_RESULT, indent=2))
    (root / RATINGS).write_text(_jsonl([GOOD_VOTE]))
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = build_repo(tmp_path_factory.mktemp("fuzz") / "repo")
    report = run_check(Repo(root), load_settings(root, {}))
    assert report.exit_code == 0, [f.text() for f in report.findings]
    yield root


COUNTS: dict[str, int] = {}


def assert_refused(root: Path, rel: str, text: str, field: str | None = None, *, kind: str) -> None:
    """Write `text` to `rel`, run the gate, check the verdict, restore the file."""
    path = root / rel
    good = path.read_bytes()
    path.write_text(text, encoding="utf-8")
    try:
        before = snapshot(root)
        report = run_check(Repo(root), load_settings(root, {}))
        render_markdown(report)  # the PR comment; the process sample below renders the rest
        [f.github() for f in report.findings]  # the annotations
        assert snapshot(root) == before, "the gate changed a file"
        errors = [f for f in report.findings if f.severity == Severity.ERROR]
        assert report.exit_code == 1, f"accepted: {text[:300]!r}"
        mine = [f for f in errors if f.file == rel and f.fix]
        assert mine, f"no error with a fix names {rel}: {[f.text() for f in errors]}"
        if field is not None:
            assert any(f.field and f.field.startswith(field) for f in mine), (field, [f.text() for f in mine])
    finally:
        path.write_bytes(good)
    COUNTS[kind] = COUNTS.get(kind, 0) + 1


# --- configs ------------------------------------------------------------------------------------------
def _outside(bounds: Range) -> st.SearchStrategy[float]:
    """Numbers a Range refuses: below it, above it, fractions where whole numbers are needed."""
    low = bounds.low - 1 if bounds.low_inclusive else bounds.low
    options = [st.floats(max_value=low, allow_nan=False, allow_infinity=False, min_value=-1e12)]
    if bounds.whole:
        options.append(st.integers(max_value=int(low)))
        options.append(
            st.floats(min_value=bounds.low + 0.01, max_value=1e6).filter(lambda x: not x.is_integer())
        )
    if bounds.high is not None:
        high = bounds.high + 1 if bounds.high_inclusive else bounds.high
        options.append(st.floats(min_value=high, max_value=1e15, allow_nan=False))
        options.append(st.integers(min_value=int(high), max_value=10**15))
    return st.one_of(options).filter(lambda x: not bounds.allows(float(x)))


NON_NUMBERS = st.one_of(
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), min_size=1, max_size=2),
    st.text(min_size=1, max_size=12).filter(lambda s: _not_numeric(s)),
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _not_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


@st.composite
def bad_value(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    key = draw(st.sampled_from(sorted(RANGES)))
    value = draw(
        st.one_of(
            _outside(RANGES[key]),
            _outside(RANGES[key]).map(str),  # numbers as strings: pydantic reads them, so must we
            NON_FINITE,
            NON_NUMBERS,
        )
    )
    return GOOD_CONFIG | {key: value}, key


REQUIRED = [
    "base_model",
    "learning_rate",
    "datasets",
    "output_dir",
    "chat_template",
    "default_system_message",
]


@st.composite
def missing_key(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    key = draw(st.sampled_from(REQUIRED))
    return {k: v for k, v in GOOD_CONFIG.items() if k != key}, key


BAD_ENTRIES = st.one_of(
    st.just([]),
    st.text(max_size=10),
    st.integers(),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), min_size=1, max_size=3),
    st.builds(
        lambda p: [{"path": p, "type": "alpaca"}],
        st.text(max_size=30).filter(lambda p: p != "/workspace/data/jokes.jsonl"),
    ),
    st.just([{"type": "alpaca"}]),
    st.builds(
        lambda v: [{"path": "/workspace/data/jokes.jsonl", "trust_remote_code": v}],
        st.sampled_from([True, "yes", 1, "on"]),
    ),
    st.builds(
        lambda n: [{"path": f"/workspace/data/{n}.jsonl"}],
        st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(lambda n: n != "jokes"),
    ),
)


@st.composite
def bad_datasets(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    return GOOD_CONFIG | {"datasets": draw(BAD_ENTRIES)}, "datasets"


@st.composite
def bad_combination(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """Axolotl's own validators and our pipeline rules on otherwise well-typed values."""
    case = draw(
        st.sampled_from(
            [
                ({"adapter": "qlora", "load_in_4bit": False}, "adapter"),
                ({"adapter": "qlora", "load_in_8bit": True, "load_in_4bit": True}, "load_in_8bit"),
                ({"adapter": None, "load_in_4bit": True}, "load_in_4bit"),
                ({"batch_size": 16}, "batch_size"),
                ({"trust_remote_code": True}, "trust_remote_code"),
                ({"sequence_len": 10**9}, "sequence_len"),
                ({"num_epochs": 1e9}, "num_epochs"),
                ({"wandb_name": "mine"}, "wandb_name"),
                ({"output_dir": "/etc"}, "output_dir"),
                ({"adapter": "magic"}, "adapter"),
                ({"haha": {"gpus": 0}}, "haha.gpus"),
                ({"haha": {"gpu": 2}}, "haha.gpu"),
                ({"haha": {"gpu_types": ["Toaster 9000"]}}, "haha.gpu_types"),
            ]
        )
    )
    noise = draw(st.dictionaries(st.from_regex(r"zz_[a-z]{1,6}", fullmatch=True), st.integers(), max_size=2))
    return GOOD_CONFIG | case[0] | noise, case[1]


@settings(PROFILE, max_examples=700)
@given(case=st.one_of(bad_value(), missing_key(), bad_datasets(), bad_combination()))
def test_bad_config_values(repo: Path, case: tuple[dict[str, Any], str]) -> None:
    config, field = case
    assert_refused(repo, CONFIG, _dump(config), field, kind="config values")


def _yaml_breakers() -> st.SearchStrategy[tuple[str, str | None]]:
    good = _dump(GOOD_CONFIG)
    key = st.sampled_from(list(GOOD_CONFIG))
    return st.one_of(
        key.map(
            lambda k: (good + f"{k}: {yaml.safe_dump(GOOD_CONFIG[k], default_flow_style=True).strip()}\n", k)
        ),
        st.integers(min_value=1, max_value=9).map(
            lambda n: (good + "x: &a [1, 2]\n" + "".join(f"y{i}: *a\n" for i in range(n)), None)
        ),
        st.integers(min_value=33, max_value=5000).map(
            lambda n: (good + "deep: " + "[" * n + "]" * n + "\n", None)
        ),
        st.integers(min_value=4301, max_value=20000).map(lambda n: (good + "seed: " + "9" * n + "\n", None)),
        st.sampled_from(
            ["", "just a string\n", "- a\n- b\n", "42\n", "base_model: [\n", "a: b: c\n", "\t- x\n"]
        ).map(lambda t: (t, None)),
        st.text(max_size=60).map(lambda t: (good + "learning_rate: 2e-4\n" + t, None)),  # duplicate key first
        st.integers(min_value=1, max_value=3).map(lambda n: (good + f"{n}: top-level number\n", None)),
    )


@settings(PROFILE, max_examples=300)
@given(case=_yaml_breakers())
def test_bad_config_yaml(repo: Path, case: tuple[str, str | None]) -> None:
    text, field = case
    assert_refused(repo, CONFIG, text, field, kind="config YAML")


# --- dataset rows -------------------------------------------------------------------------------------
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)
)
BAD_ROWS = st.one_of(
    JSON_SCALARS.map(json.dumps),
    st.lists(JSON_SCALARS, max_size=3).map(json.dumps),
    st.fixed_dictionaries({"instruction": st.text(min_size=1, max_size=20)}).map(json.dumps),  # no output
    st.fixed_dictionaries(
        {
            "instruction": st.text(min_size=1),
            "output": st.one_of(st.integers(), st.none(), st.lists(st.text())),
        }
    ).map(json.dumps),
    st.fixed_dictionaries(
        {"instruction": st.one_of(st.integers(), st.none()), "output": st.text(min_size=1)}
    ).map(json.dumps),
    st.text(min_size=1, max_size=40)
    .filter(lambda t: t.strip() and _not_json(t))
    .map(lambda t: t.replace("\n", " ")),
    st.integers(min_value=50, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=4301, max_value=9000).map(
        lambda n: '{"instruction": "x", "output": ' + "1" * n + "}"
    ),
)


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


@settings(PROFILE, max_examples=400)
@given(rows=st.lists(BAD_ROWS, min_size=1, max_size=4), keep=st.integers(min_value=0, max_value=4))
def test_bad_dataset_rows(repo: Path, rows: list[str], keep: int) -> None:
    good = [json.dumps(r) for r in GOOD_ROWS[:keep]]
    assert_refused(repo, DATA, "\n".join(good + rows) + "\n", kind="dataset rows")


# --- eval spec, results, ratings -------------------------------------------------------------------
def _mutate(good: dict[str, Any], keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda k, v: json.dumps(good | {k: v}), st.sampled_from(keys), values),
        st.sampled_from(keys).map(lambda k: json.dumps({x: y for x, y in good.items() if x != k})),
        st.integers(min_value=1, max_value=40).map(lambda n: json.dumps(good, indent=1)[:-n]),  # truncated
        st.builds(
            lambda k, c: json.dumps(good | {k: c}).replace(f'"{c}"', c),
            st.sampled_from(keys),
            st.sampled_from(["NaN", "Infinity", "-Infinity"]),
        ),
        st.integers(min_value=1000, max_value=3000).map(lambda n: "[" * n + "]" * n),
    )


EVAL_VALUES = st.one_of(
    st.none(),
    st.just([]),
    st.text(max_size=10),
    st.integers(max_value=0),
    st.integers(min_value=101),
    st.lists(st.one_of(st.integers(), st.none(), st.just("")), min_size=1, max_size=3),
    st.lists(
        st.fixed_dictionaries(
            {
                "temperature": st.one_of(
                    st.floats(min_value=2.01, max_value=1e9),
                    st.floats(max_value=-0.01, min_value=-1e9),
                    st.text(max_size=3),
                )
            }
        ),
        min_size=1,
        max_size=2,
    ),
)


@settings(PROFILE, max_examples=300)
@given(text=_mutate(GOOD_EVAL, ["prompts", "settings", "seedVariants"], EVAL_VALUES))
def test_bad_eval_spec(repo: Path, text: str) -> None:
    assert_refused(repo, EVAL, text, kind="eval spec")


RESULT_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=10),
    st.just({"name": "haha-other-001", "default_system_message": "x"}),  # the wrong config
    st.just({"name": "haha-fuzz-002"}),  # no system message
    st.lists(st.one_of(st.integers(), st.just({"prompt": 1})), min_size=1, max_size=2),
)


@settings(PROFILE, max_examples=300)
@given(text=_mutate(GOOD_RESULT, ["config", "results"], RESULT_VALUES))
def test_bad_results(repo: Path, text: str) -> None:
    assert_refused(repo, RESULTS, text, kind="results")


VOTE_VALUES = st.one_of(
    st.none(),
    st.integers(max_value=-1),
    st.text(max_size=3).filter(lambda t: t not in ("a", "b", "tie")),
    st.just("haha-ghost-001"),
    st.lists(st.integers(), max_size=2),
)


@settings(PROFILE, max_examples=300)
@given(
    bad=_mutate(GOOD_VOTE, ["a", "b", "winner", "seed", "temperature", "time"], VOTE_VALUES),
    before=st.integers(min_value=0, max_value=2),
)
def test_bad_ratings(repo: Path, bad: str, before: int) -> None:
    good = [json.dumps(GOOD_VOTE)] * before
    assert_refused(repo, RATINGS, "\n".join([*good, bad.replace("\n", " ")]) + "\n", kind="ratings")


def test_corpus_size() -> None:
    """Runs last in this module: the counts the issue's closing note asks for."""
    total = sum(COUNTS.values())
    print(f"\nbad inputs refused by haha check: {total} ({COUNTS})")
    assert total >= 2000 or not COUNTS  # the whole module ran: a few thousand cases


# --- the real process -------------------------------------------------------------------------------------
SAMPLE: list[tuple[str, str, Callable[[str], str]]] = [
    # 002 follows 001 in its series: the global-batch comparison divided by these (ZeroDivisionError)
    (SECOND, "micro_batch_size", lambda t: t.replace("micro_batch_size: 8", "micro_batch_size: 0")),
    (
        SECOND,
        "gradient_accumulation_steps",
        lambda t: t.replace("gradient_accumulation_steps: 1", "gradient_accumulation_steps: 0"),
    ),
    (CONFIG, "learning_rate", lambda t: t.replace("learning_rate: 0.0002", "learning_rate: .nan")),
    (CONFIG, "num_epochs", lambda t: t.replace("num_epochs: 1", "num_epochs: 1000000000")),
    (
        CONFIG,
        None,
        lambda t: t + "zz_a: &a [x, x, x, x, x, x, x, x, x]\nzz_b: [*a, *a, *a, *a, *a, *a, *a]\n",
    ),
    (DATA, None, lambda t: t + "[" * 5000 + "]" * 5000 + "\n"),
    (EVAL, None, lambda t: t.replace("0.7", "NaN")),
    (RESULTS, None, lambda t: t[: len(t) // 2]),
    (RATINGS, "winner", lambda t: t.replace('"winner": "a"', '"winner": "c"')),
]


@pytest.mark.parametrize(("rel", "field", "edit"), SAMPLE, ids=[f"{r}:{f}" for r, f, _ in SAMPLE])
def test_the_haha_process_refuses_them(
    tmp_path: Path, rel: str, field: str | None, edit: Callable[[str], str]
) -> None:
    root = build_repo(tmp_path / "repo")
    path = root / rel
    path.write_text(edit(path.read_text()))
    before = snapshot(root)
    done = subprocess.run(
        [str(HAHA), "check", "--format", "github"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith(f"::error file={rel}"))
    assert "fix:" in line
    if field:
        assert f"title={field}" in line
    assert snapshot(root) == before
