"""Generated bad inputs for every verb but `check` (issue 17): ratings rows, results files, store
files (results.json, status.json) and haha.toml, each fed to the verbs that read it.

Each case asserts what a user sees: a non-zero exit, a message naming the file, the field (and line
for JSONL and TOML) and a fix, no traceback, and every committed file as it was. The bulk goes
through `haha.cli.main` in this process (fast); a sample goes through the real `haha` process.
"""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from check_helpers import make_repo as make_config_repo
from haha import cli
from haha.rate.ratings import WINNERS
from haha.settings import BudgetSettings, ComputeSettings, GpuType, Settings, StoreSettings, Throughput
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_data import PROMPTS, healthy, make_repo, results_doc, vote

GENERATED = settings(
    deadline=None,
    derandomize=True,
    max_examples=250,  # x 10 generated tests: 2,500 cases
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
NAMES = ("haha-x-001", "haha-x-002")
SMOL, LLAMA = "haha-smollm2-135m-lora-001", "haha-llama-3-8b-lora-001"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stderr with rich's line wrapping undone."""
        return " ".join(self.err.split())


@contextmanager
def wide_console() -> Iterator[None]:
    """The CLI's stderr console, unwrapped, so a long path stays whole in the message."""
    width = cli.err.width
    cli.err.width = 10_000
    try:
        yield
    finally:
        cli.err.width = width


# typer builds the click command on every call (~15 ms); the cases share one, as one process would.
COMMAND = typer.main.get_command(cli.app)


def haha(*argv: str) -> Outcome:
    """`haha ARGV` in this process through cli.main; anything but SystemExit propagates (a traceback)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv, cli.app
    sys.argv, cli.app = ["haha", *argv], COMMAND  # type: ignore[assignment]
    try:
        with redirect_stdout(out), redirect_stderr(err), wide_console():
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv, cli.app = saved
    return Outcome(code, out.getvalue(), err.getvalue())


def haha_process(*argv: str) -> Outcome:
    """The real `haha` process."""
    exe = Path(sys.executable).parent / "haha"
    env = {"COLUMNS": "10000", "PATH": "/usr/bin:/bin", "HAHA_STORE": "local", "HOME": str(Path.home())}
    done = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=120, env=env)
    return Outcome(done.returncode, done.stdout, done.stderr)


def tree(root: Path) -> dict[str, bytes]:
    """Every committed file's bytes (the local store under .haha/ is not committed)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".haha" not in p.relative_to(root).parts
    }


def assert_refused(outcome: Outcome, before: dict[str, bytes], root: Path, *names: str) -> None:
    """Non-zero, no traceback, every name (file, line, field) in the message with a fix, tree unchanged."""
    assert outcome.code not in (0, 1), outcome
    assert "Traceback" not in outcome.err, outcome.err
    for name in names:
        assert name in outcome.text, (name, outcome.text)
    assert "fix:" in outcome.text, outcome.text
    assert tree(root) == before


# --- ratings rows ---------------------------------------------------------------------------------
VALID_ROW = vote(*NAMES, "a", prompt=PROMPTS[0])
NOT_STR = st.one_of(st.integers(), st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "winner": st.one_of(st.text(max_size=5).filter(lambda w: w not in WINNERS), NOT_STR),
    "seed": st.one_of(
        st.integers(max_value=0),
        st.floats().filter(lambda f: not f.is_integer()),
        st.text(max_size=3),
        st.booleans(),
    ),
    "temperature": st.one_of(
        st.floats(max_value=-1e-9), st.sampled_from([math.nan, math.inf]), st.text(max_size=3), st.none()
    ),
    "a": st.one_of(st.just(""), NOT_STR),
    "b": st.one_of(st.just(""), st.just(NAMES[0]), NOT_STR),
    "rater": st.one_of(st.just(""), NOT_STR),
    "time": st.one_of(st.text(max_size=12), st.just("2026-11-28 06:00:00"), NOT_STR),
    "prompt": NOT_STR,
}


@st.composite
def bad_rating_line(draw: st.DrawFn) -> tuple[str, str | None]:
    """(a line that is not a valid vote, the field a message should name, where one is certain)."""
    kind = draw(st.sampled_from(["set", "drop", "extra", "truncate", "not_object"]))
    row = dict(VALID_ROW)
    if kind == "set":
        key = draw(st.sampled_from(sorted(BAD_VALUES)))
        row[key] = value = draw(BAD_VALUES[key])
        not_json = isinstance(value, float) and not math.isfinite(value)
        unnamed = (key == "b" and value == NAMES[0]) or not_json
        return json.dumps(row), None if unnamed else key  # NaN/Infinity are refused as JSON, by line
    if kind == "drop":
        del row[draw(st.sampled_from(sorted(row)))]
        return json.dumps(row), None
    if kind == "extra":
        row[draw(st.text("abcxyz_", min_size=1, max_size=6).filter(lambda k: k not in row))] = 1
        return json.dumps(row), None
    text = json.dumps(row)
    if kind == "truncate":
        return text[: draw(st.integers(1, len(text) - 1))], None
    return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text()))), None


def ratings_repo(root: Path) -> Path:
    """Two results files, a committed report and one valid rater file."""
    make_repo(root, [results_doc(n, healthy) for n in NAMES])
    (root / "train/results/README.md").write_text("the committed report\n")
    (root / "train/results/index.html").write_text("<p>the committed report</p>\n")
    folder = root / "train/results/ratings"
    folder.mkdir()
    (folder / "ana.jsonl").write_text(json.dumps(VALID_ROW) + "\n")
    return root


@pytest.mark.parametrize("verb", ["report", "rate"])
@GENERATED
@given(
    case=bad_rating_line(),
    before=st.integers(0, 3),
    after=st.integers(0, 2),
    final_newline=st.booleans(),
)
def test_bad_ratings_rows(
    tmp_path: Path, verb: str, case: tuple[str, str | None], before: int, after: int, final_newline: bool
) -> None:
    root = tmp_path if (tmp_path / "train").exists() else ratings_repo(tmp_path)
    line, field = case
    good = json.dumps(VALID_ROW)
    text = "\n".join([good] * before + [line] + [good] * after) + ("\n" if final_newline else "")
    path = root / "train/results/ratings/bo.jsonl"
    path.write_text(text)
    try:
        snapshot = tree(root)
        argv = {"report": ["report"], "rate": ["rate", "--port", "0", "--stop-after", "0.1"]}[verb]
        names = [f"train/results/ratings/bo.jsonl:{before + 1}"] + ([f"[{field}"] if field else [])
        assert_refused(haha(*argv, "--repo", str(root)), snapshot, root, *names)
    finally:
        path.unlink()


# --- results files --------------------------------------------------------------------------------
def small_results(name: str) -> dict[str, Any]:
    """A results document cut down to 2 prompts x 2 temperatures x 2 seeds (fast to load)."""
    doc = results_doc(name, healthy)
    doc["results"] = [
        {
            **entry,
            "settingsResults": [
                {**s, "completions": s["completions"][:2]} for s in entry["settingsResults"][:2]
            ],
        }
        for entry in doc["results"][:2]
    ]
    doc["meta"] = {"train_loss": [{"step": 1, "loss": 2.0}]}
    return doc


WRONG = st.one_of(
    st.integers(), st.text(max_size=3), st.none(), st.booleans(), st.lists(st.integers(), max_size=2)
)
# path in the document → what makes it invalid there (values of the wrong type, or a deletion)
RESULTS_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "config": st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2)),
    "config.name": st.one_of(st.integers(), st.none(), st.booleans()),
    "results": st.one_of(
        st.integers(), st.text(max_size=3), st.dictionaries(st.text(max_size=2), st.integers())
    ),
    "results.0": st.one_of(st.integers(), st.text(max_size=3), st.none()),
    "results.0.prompt": st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
    "results.0.settingsResults": st.one_of(st.integers(), st.text(max_size=3), st.none()),
    "results.0.settingsResults.1": st.one_of(st.integers(), st.text(max_size=3), st.none()),
    "results.0.settingsResults.1.temperature": st.one_of(st.text(max_size=3), st.none(), st.booleans()),
    "results.1.settingsResults.0.completions": st.one_of(st.integers(), st.text(max_size=3), st.none()),
    "results.1.settingsResults.0.completions.1": st.one_of(st.integers(), st.none(), st.booleans()),
    "meta": st.one_of(
        st.integers().filter(bool), st.text(min_size=1, max_size=3), st.lists(st.integers(), min_size=1)
    ),
    "meta.train_loss": st.one_of(
        st.integers(), st.text(max_size=3), st.dictionaries(st.text(max_size=2), st.integers())
    ),
    "meta.train_loss.0.step": st.one_of(st.text(max_size=3), st.none(), st.floats()),
}
REQUIRED = ("config", "config.name", "results", "results.0.prompt", "results.0.settingsResults",
            "results.0.settingsResults.1.temperature", "results.1.settingsResults.0.completions")  # fmt: skip


def set_path(doc: Any, path: str, value: Any, delete: bool = False) -> None:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    key: Any = int(last) if isinstance(doc, list) else last
    if delete:
        del doc[key]
    else:
        doc[key] = value


@st.composite
def bad_results_text(draw: st.DrawFn, name: str) -> tuple[str, list[str]]:
    """(the text of a results file that is not valid, what the message must name besides the file)."""
    doc = small_results(name)
    kind = draw(st.sampled_from(["set", "delete", "truncate", "not_object", "nan"]))
    if kind == "set":
        path = draw(st.sampled_from(sorted(RESULTS_FIELDS)))
        set_path(doc, path, draw(RESULTS_FIELDS[path]))
        return json.dumps(doc, indent=2), [f"[{path}"]
    if kind == "delete":
        path = draw(st.sampled_from(REQUIRED))
        set_path(doc, path, None, delete=True)
        return json.dumps(doc, indent=2), []
    if kind == "nan":
        doc["results"][0]["settingsResults"][0]["temperature"] = draw(st.sampled_from([math.nan, math.inf]))
        return json.dumps(doc, indent=2), []
    if kind == "not_object":
        return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text()))), []
    text = json.dumps(doc, indent=2)
    cut = draw(st.integers(1, len(text) - 1))
    return text[:cut], [f":{text[:cut].count(chr(10)) + 1}"]


@pytest.mark.parametrize("verb", ["report", "compare", "rate", "judge"])
@GENERATED
@given(data=st.data())
def test_bad_results_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verb: str, data: st.DataObject
) -> None:
    root = tmp_path / "repo"
    if not root.exists():
        make_repo(root, [small_results(n) for n in NAMES])
        (root / "train/results/README.md").write_text("the committed report\n")
    monkeypatch.setenv("HAHA_JUDGE_URL", "http://127.0.0.1:9/v1")  # never reached: loading fails first
    monkeypatch.setenv("HAHA_JUDGE_MODEL", "m")
    text, names = data.draw(bad_results_text(NAMES[0]))
    path = root / f"train/results/{NAMES[0]}.json"
    good = path.read_bytes()
    path.write_text(text)
    try:
        snapshot = tree(root)
        argv = {
            "report": ["report"],
            "compare": ["compare", *NAMES],
            "rate": ["rate", "--port", "0", "--stop-after", "0.1"],
            "judge": ["judge", *NAMES],
        }[verb]
        assert_refused(
            haha(*argv, "--repo", str(root)), snapshot, root, f"train/results/{NAMES[0]}.json", *names
        )
    finally:
        path.write_bytes(good)


# --- the model store: status.json (plan) and results.json (collect) -------------------------------
VALID_STATUS = {"state": "failed", "reason": "boom", "gpu_count": 1, "cost_per_hour": 2.5, "pr": 7}
STATUS_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "state": st.one_of(
        st.text(max_size=8).filter(lambda s: s not in ("running", "succeeded", "failed")), WRONG
    ),
    "gpu_count": st.one_of(
        st.text(max_size=3), st.floats(allow_nan=False, allow_infinity=False), st.booleans()
    ),
    "cost_per_hour": st.one_of(st.text(max_size=3), st.booleans(), st.lists(st.integers(), max_size=1)),
    "reason": st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=1)),
    "pr": st.one_of(st.text(max_size=3), st.floats(0.5, 9.5), st.booleans()),
}


@st.composite
def bad_store_json(
    draw: st.DrawFn, valid: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]
) -> tuple[str, list[str]]:
    kind = draw(st.sampled_from(["set", "truncate", "not_object"]))
    if kind == "set":
        key = draw(st.sampled_from(sorted(fields)))
        doc = json.loads(json.dumps(valid))
        set_path(doc, key, draw(fields[key]))
        return json.dumps(doc, indent=2), [f"[{key}"]
    if kind == "not_object":
        return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text()))), []
    text = json.dumps(valid, indent=2)
    cut = draw(st.integers(1, len(text) - 1))
    return text[:cut], [f":{text[:cut].count(chr(10)) + 1}"]


def config_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    if not root.exists():
        make_config_repo(tmp_path)
        (root / "train/results/README.md").write_text("the committed report\n")
    return root


@GENERATED
@given(case=bad_store_json(VALID_STATUS, STATUS_FIELDS))
def test_haha_plan_reports_a_bad_status_per_run_and_plans_the_others(
    tmp_path: Path, case: tuple[str, list[str]]
) -> None:
    root = config_repo(tmp_path)
    text, names = case
    path = root / f".haha/store/{SMOL}/status.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    snapshot = tree(root)
    outcome = haha("plan", "--compute", "local", "--repo", str(root))
    plan = json.loads(outcome.out)
    assert [r["config"] for r in plan["include"]] == [LLAMA]  # the other run is still planned
    assert [e["config"] for e in plan["errors"]] == [SMOL]
    assert_refused(outcome, snapshot, root, f".haha/store/{SMOL}/status.json", *names)


VALID_PUBLISHED = small_results(SMOL)
PUBLISHED_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "config": st.one_of(st.integers(), st.text(max_size=3), st.none()),
    "config.name": st.one_of(st.integers(), st.text(max_size=3), st.none()),  # a string: not this run
    "results": st.one_of(st.integers(), st.text(max_size=3), st.none()),
}


@GENERATED
@given(case=bad_store_json(VALID_PUBLISHED, PUBLISHED_FIELDS))
def test_haha_collect_refuses_bad_published_results_and_writes_nothing(
    tmp_path: Path, case: tuple[str, list[str]]
) -> None:
    root = config_repo(tmp_path)
    text, names = case
    path = root / f".haha/store/{SMOL}/results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    snapshot = tree(root)
    outcome = haha("collect", "--repo", str(root))
    assert json.loads(outcome.out)["errors"][0]["config"] == SMOL
    assert_refused(outcome, snapshot, root, f".haha/store/{SMOL}/results.json", *names)


# --- haha.toml ------------------------------------------------------------------------------------
TOML_BAD: dict[str, list[object]] = {
    "gpu_count": [0, -1, 1.5, "one"],
    "container_disk_gb": [0, -5, "x"],
    "volume_gb": [-1, "none"],
    "deadline_hours": [0, -1.0, "six", math.nan, math.inf],
    "overhead_minutes": [-1, math.nan, "x"],
    "default_max_tokens": [0, -3, "x"],
    "kind": ["aws", 1],
    "cloud_type": ["CHEAP", 2],
    "price_per_hour": [0, -1.5, "x", math.nan],
    "peak_bf16_tflops": [0, "x", math.inf],
    "memory_gb": [0, "x"],
    "large_step_mfu": [0, 1.5, math.nan],
    "small_step_tokens": [0, "x"],
    "org": [1, True],
    "per_pr_dollars": [-1, math.nan, math.inf, "5"],
    "monthly_dollars": [-0.5, math.nan, "100", True],
}


# Every field name haha.toml knows anywhere: an "unknown" key must be none of them.
KNOWN = {
    n
    for m in (Settings, ComputeSettings, StoreSettings, Throughput, GpuType, BudgetSettings)
    for n in m.model_fields
}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf"
    return json.dumps(value)


@st.composite
def bad_toml(draw: st.DrawFn, text: str) -> tuple[str, list[str]]:
    """(haha.toml with one bad value, unknown key or syntax error, what the message must name)."""
    lines = text.splitlines()
    kind = draw(st.sampled_from(["value", "unknown", "syntax", "env_only"]))
    if kind == "value":
        key = draw(st.sampled_from(sorted(TOML_BAD)))
        at = [i for i, line in enumerate(lines) if re.match(rf"{key}\s*=", line)]
        if key == "kind":  # [store] kind: the suite's HAHA_STORE=local overrides it
            at = [i for i in at if i > lines.index("[compute]")]
        i = draw(st.sampled_from(at))
        lines[i] = f"{key} = {toml_value(draw(st.sampled_from(TOML_BAD[key])))}"
        return "\n".join(lines) + "\n", [f"haha.toml:{i + 1}", key]
    if kind == "unknown":
        tables = [0] + [i + 1 for i, line in enumerate(lines) if line.startswith("[")]
        i = draw(st.sampled_from(tables))
        name = draw(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True).filter(lambda n: n not in KNOWN))
        lines.insert(i, f"{name} = 1")
        return "\n".join(lines) + "\n", [f"haha.toml:{i + 1}", f"{name}]", "unknown setting"]
    if kind == "env_only":
        lines.insert(0, 'hf_token = "hf_x"')
        return "\n".join(lines) + "\n", ["haha.toml:1", "HF_TOKEN"]
    i = draw(st.integers(0, len(lines) - 1))
    broken = draw(st.sampled_from(["= 1", "[compute", "x = ", 'x = "unterminated', "[[]]", "x = [1,"]))
    lines.insert(i, broken)
    return "\n".join(lines) + "\n", ["haha.toml", "not valid TOML"]


@pytest.mark.parametrize("verb", ["plan", "collect"])
@GENERATED
@given(data=st.data())
def test_bad_haha_toml(tmp_path: Path, verb: str, data: st.DataObject) -> None:
    root = config_repo(tmp_path)
    path = root / "haha.toml"
    good = path.read_bytes()
    text, names = data.draw(bad_toml(good.decode()))
    path.write_text(text)
    try:
        snapshot = tree(root)
        argv = {"plan": ["plan", "--no-store"], "collect": ["collect"]}[verb]
        assert_refused(haha(*argv, "--repo", str(root)), snapshot, root, *names)
    finally:
        path.write_bytes(good)


def test_haha_toml_without_compute_uses_the_defaults(tmp_path: Path) -> None:
    """No [compute] at all: local compute and no GPU list, which plan does not need."""
    root = config_repo(tmp_path)
    text = (root / "haha.toml").read_text()
    kept = [block for block in re.split(r"\n(?=\[)", text) if not block.startswith(("[compute", "[[compute"))]
    (root / "haha.toml").write_text("\n".join(kept))
    outcome = haha("plan", "--no-store", "--repo", str(root))
    assert outcome.code == 0, outcome.err
    assert [r["config"] for r in json.loads(outcome.out)["include"]] == [LLAMA, SMOL]


def test_odd_files_in_the_results_folder(tmp_path: Path) -> None:
    """A folder named like a results or ratings file is not read; a missing eval.json is named."""
    root = ratings_repo(tmp_path / "ratings")
    (root / "train/results/haha-x-003.json").mkdir()
    (root / "train/results/ratings/bo.jsonl").mkdir()
    assert haha("rate", "--port", "0", "--stop-after", "0.1", "--repo", str(root)).code == 0
    config_root = config_repo(tmp_path)
    (config_root / "train/eval/eval.json").unlink()
    snapshot = tree(config_root)
    outcome = haha("plan", "--no-store", "--repo", str(config_root))
    assert_refused(outcome, snapshot, config_root, "train/eval/eval.json", "cannot read the eval spec")


# --- a sample through the real process ------------------------------------------------------------
def test_a_sample_through_the_haha_process(tmp_path: Path) -> None:
    results_root = ratings_repo(tmp_path / "ratings")
    bad = results_root / "train/results/ratings/bo.jsonl"
    bad.write_text(json.dumps(VALID_ROW) + "\n" + json.dumps({**VALID_ROW, "winner": "c"}) + "\n")
    snapshot = tree(results_root)
    outcome = haha_process("report", "--repo", str(results_root))
    assert_refused(outcome, snapshot, results_root, "train/results/ratings/bo.jsonl:2", "[winner", "'c'")

    bad.unlink()
    truncated = results_root / f"train/results/{NAMES[1]}.json"
    truncated.write_text(truncated.read_text()[:200])
    snapshot = tree(results_root)
    for argv in (["report"], ["compare", *NAMES]):
        outcome = haha_process(*argv, "--repo", str(results_root))
        assert_refused(outcome, snapshot, results_root, f"train/results/{NAMES[1]}.json:", "not valid JSON")

    root = config_repo(tmp_path)
    status = root / f".haha/store/{SMOL}/status.json"
    status.parent.mkdir(parents=True)
    status.write_text('{"state": "fai')
    snapshot = tree(root)
    outcome = haha_process("plan", "--compute", "local", "--repo", str(root))
    assert [r["config"] for r in json.loads(outcome.out)["include"]] == [LLAMA]
    assert_refused(outcome, snapshot, root, f".haha/store/{SMOL}/status.json:1", "not valid JSON")

    (root / f".haha/store/{SMOL}/results.json").write_text('{"config": {"name": ')
    outcome = haha_process("collect", "--repo", str(root))
    assert_refused(outcome, snapshot, root, f".haha/store/{SMOL}/results.json:1", "not valid JSON")

    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace("gpu_count = 1", "gpu_count = 0"))
    snapshot = tree(root)
    outcome = haha_process("plan", "--no-store", "--repo", str(root))
    line = toml.read_text().splitlines().index("gpu_count = 0") + 1
    assert_refused(
        outcome, snapshot, root, f"haha.toml:{line}", "[compute.gpu_count]", "greater than or equal to 1"
    )
