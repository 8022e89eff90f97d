"""`haha check` on datasets and the eval spec: line-numbered errors, duplicates, leakage, token counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from check_helpers import DATA, EVAL, ROOT, check, errors, make_repo, only, warnings
from haha.check import gate, tokens
from haha.check.datasets import MAX_LINE_FINDINGS, scan_dataset
from haha.findings import Severity
from hypothesis import given, settings
from hypothesis import strategies as st
from process_settings import process_settings


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def set_line(root: Path, number: int, text: str) -> None:
    path = root / DATA
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_bad_lines_3_and_7_are_both_reported(root: Path) -> None:
    set_line(root, 3, '{"instruction": "A setup", "output": "A punchline"')
    set_line(root, 7, '{"instruction": "A setup", "input": ""}')
    report = check(root)
    bad = [f for f in errors(report) if f.file == DATA]
    assert [f.line for f in bad] == [3, 7]
    assert "not valid JSON" in bad[0].message
    assert bad[1].field == "output"
    assert "train/data/haha-v1.jsonl:7 [output]" in bad[1].text()
    assert report.exit_code == 1


def test_row_schema_names_the_field(root: Path) -> None:
    set_line(root, 5, '{"instruction": 5, "output": "x", "extra": 1}')
    fields = {f.field for f in errors(check(root)) if f.line == 5}
    assert fields == {"instruction", None}


def test_many_bad_lines_are_capped_with_a_count() -> None:
    text = "\n".join(["not json"] * (MAX_LINE_FINDINGS + 7)) + "\n"
    scan = scan_dataset("d.jsonl", text)
    assert len(scan.invalid_lines) == MAX_LINE_FINDINGS + 7
    assert len(scan.findings) == MAX_LINE_FINDINGS + 1
    assert scan.findings[-1].message.startswith("and 7 more invalid lines: 21, 22,")


def test_duplicates_and_empty_outputs_are_counted() -> None:
    rows = [
        {"instruction": "Setup one", "output": "Punch"},
        {"instruction": "setup   ONE", "output": "Other punch"},
        {"instruction": "Setup one", "output": "Punch"},
        {"instruction": "Setup two", "output": "  "},
    ]
    scan = scan_dataset("d.jsonl", "\n".join(map(json.dumps, rows)))
    assert (scan.duplicate_instructions, scan.duplicate_rows, scan.empty_outputs) == (2, 1, 1)
    assert "line 3 = line 1" in only(list(scan.findings), "repeat an earlier row").message
    assert [f.line for f in scan.findings if f.severity == Severity.ERROR] == [4]


def test_eval_prompt_in_training_data_is_leakage(root: Path) -> None:
    spec = json.loads((root / EVAL).read_text())
    first_row = json.loads((root / DATA).read_text().splitlines()[0])
    spec["prompts"].append("  " + first_row["instruction"].upper())
    (root / EVAL).write_text(json.dumps(spec, indent=2))
    index = len(spec["prompts"]) - 1
    finding = only(warnings(check(root)), "also appears in the training data")
    assert (finding.file, finding.field) == (EVAL, f"prompts.{index}")
    assert f"{DATA}:1" in finding.message
    assert finding.line == 3 + index


def test_non_string_eval_prompt_names_line_and_field(root: Path) -> None:
    text = (root / EVAL).read_text()
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines) if "Montana" in line)
    lines[number] = "    42,"
    (root / EVAL).write_text("\n".join(lines) + "\n")
    finding = only(errors(check(root)), "prompts.1")
    assert (finding.file, finding.line) == (EVAL, number + 1)
    assert "not of type 'string'" in finding.message


def test_broken_eval_json_names_the_line(root: Path) -> None:
    (root / EVAL).write_text('{\n  "prompts": ["a"],\n  "settings": [}\n')
    finding = only(errors(check(root)), "not valid JSON")
    assert (finding.file, finding.line) == (EVAL, 3)


def test_missing_eval_spec_fails(root: Path) -> None:
    (root / EVAL).unlink()
    assert only(errors(check(root)), "eval spec is missing").file == EVAL


def test_token_counts_fall_back_to_cl100k_and_say_so(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "cached_tokenizer_file", lambda base_model: None)
    report = check(root)
    note = only(report.findings, "HuggingFaceTB/SmolLM2-135M-Instruct's tokenizer")
    assert note.severity == Severity.NOTICE
    assert "approximate: cl100k_base" in note.message
    assert {d.tokenizer for d in report.datasets} == {"cl100k_base"}


def test_cached_tokenizer_without_tokenizers_library_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "cached_tokenizer_file", lambda base_model: "/cache/tokenizer.json")
    monkeypatch.setitem(__import__("sys").modules, "tokenizers", None)
    counter = tokens.counter_for("some/model")
    assert "`tokenizers` library is not installed" in counter.note


def test_chatml_rows_count_markers_as_single_tokens() -> None:
    counter = tokens.Cl100kCounter(note="")
    text = tokens.chatml("sys", "hi", "", "yo")
    plain = counter.count([text.replace("<|im_start|>", "").replace("<|im_end|>", "")])[0]
    assert counter.count([text])[0] == plain + 6


def test_each_dataset_is_scanned_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counting(file: str, text: str):
        calls.append(file)
        return scan_dataset(file, text)

    monkeypatch.setattr(gate, "scan_dataset", counting)
    report = check(root)
    assert len(report.costs) == 2
    assert calls == [DATA]


def test_rows_longer_than_sequence_len_are_reported(root: Path) -> None:
    text = (root / "train/config/haha-smollm2-135m-lora-001.yml").read_text()
    (root / "train/config/haha-smollm2-135m-lora-001.yml").write_text(
        text.replace("sequence_len: 128", "sequence_len: 60")
    )
    report = check(root)
    finding = only(warnings(report), "longer than sequence_len 60")
    assert "will be dropped" in finding.message
    cost = next(c for c in report.costs if c.config == "haha-smollm2-135m-lora-001")
    assert 0 < cost.long_share < 1


def test_exact_counts_by_pieces_equal_whole_row_encoding() -> None:
    """With ChatML markers as added tokens, counting distinct pieces once is exact, not an estimate."""
    from haha.check.tokens import HfCounter, cached_tokenizer_file, chatml
    from haha.models import SMOLLM2, ensure_model
    from tokenizers import Tokenizer

    ensure_model(SMOLLM2, process_settings())
    path = cached_tokenizer_file(SMOLLM2)
    rows = [json.loads(line) for line in (ROOT / DATA).read_text().splitlines()[:50]]
    texts = [
        chatml(system, r["instruction"], r["input"], r["output"])
        for r in rows
        for system in ("", "Be funny.")
    ]
    whole = [len(e.ids) for e in Tokenizer.from_file(path).encode_batch(texts, add_special_tokens=True)]
    assert HfCounter(SMOLLM2, path).count(texts) == whole


def test_each_rows_turns_are_encoded_once_whatever_the_system_message(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configs with different system messages share the rows' user and assistant turns: the gate
    encodes those once per dataset and tokenizer (it once encoded every row again per config)."""
    monkeypatch.setattr(tokens, "cached_tokenizer_file", lambda base_model: None)
    config = root / "train/config/haha-llama-3-8b-lora-001.yml"
    config.write_text(config.read_text().replace("craft jokes.", "craft puns."))
    seen: list[str] = []
    count = tokens.Cl100kCounter.count

    def recording(self: tokens.Cl100kCounter, texts: list[str]) -> list[int]:
        seen.extend(texts)
        return count(self, texts)

    monkeypatch.setattr(tokens.Cl100kCounter, "count", recording)
    report = check(root)
    assert len(report.costs) == 2
    first = json.loads((root / DATA).read_text().splitlines()[0])["instruction"]
    assert sum(f"user\n{first}" in text for text in seen) == 1


@pytest.mark.parametrize("tokenizer", ["cl100k", "smollm2"])
def test_counts_from_turns_equal_whole_row_counts(tokenizer: str) -> None:
    """count_chats adds a system turn's count to a dialogue's; it must equal encoding the whole row,
    system messages with markers in them included."""
    from haha.check.tokens import HfCounter, cached_tokenizer_file, chatml, count_chats, dialogue
    from haha.models import SMOLLM2, ensure_model

    if tokenizer == "smollm2":
        ensure_model(SMOLLM2, process_settings())
        counter = HfCounter(SMOLLM2, cached_tokenizer_file(SMOLLM2))
        assert counter.splits_at_markers
    else:
        counter = tokens.Cl100kCounter(note="")
    rows = [json.loads(line) for line in (ROOT / DATA).read_text().splitlines()[:30]]
    rows.append({"instruction": "a <|im_end|> b", "input": "<|im_start|>", "output": "\n"})
    systems = ["", "Be funny.", " <|im_start|>x<|im_end|>\n", "\n\n"]
    pairs = [(s, r) for r in rows for s in systems]
    turns = counter.count([dialogue(r["instruction"], r["input"], r["output"]) for _, r in pairs])
    whole = counter.count([chatml(s, r["instruction"], r["input"], r["output"]) for s, r in pairs])
    assert count_chats(counter, [s for s, _ in pairs], turns) == whole


_FIELD_VALUES = st.one_of(st.text(alphabet=" \t\n\u00a0\u2028x<|é", max_size=4), st.integers(), st.none())


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(["instruction", "input", "output", "system", "x"]), _FIELD_VALUES),
        _FIELD_VALUES,
        st.lists(st.text(max_size=2), max_size=2),
    )
)
def test_rows_passed_without_the_validator_are_exactly_those_the_schema_accepts(value: object) -> None:
    """The plain-Python check of the row schema (the gate's fast path) agrees with jsonschema."""
    from haha.check.datasets import ROW_SCHEMA, _plainly_valid
    from haha.schemas import iter_errors

    assert _plainly_valid(value) == (not list(iter_errors(ROW_SCHEMA, value)))
