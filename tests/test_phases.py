"""meta.phases and meta.cost (haha.phases): pod order, clock skew, billed vs list price."""

from __future__ import annotations

import pytest
from haha.phases import POD_ORDER, Prediction, cost_meta, gpu_key, ordered, run_phases
from haha.schemas import validate
from hypothesis import given
from hypothesis import strategies as st


@given(st.dictionaries(st.sampled_from(POD_ORDER), st.floats(-1e4, 1e6, allow_nan=False)))
def test_phases_come_in_pod_order_and_never_negative(phases: dict[str, float]) -> None:
    out = ordered(phases)
    assert list(out) == [p for p in POD_ORDER if p in phases]
    assert all(v >= 0 for v in out.values())


def test_run_phases_split_at_the_first_step() -> None:
    assert run_phases(100.0, 160.0, 400.0, 30.0) == {"setup": 60.0, "train": 240.0, "eval": 30.0}
    # The adapter was reused: no training step, the whole training stage was set-up.
    assert run_phases(100.0, None, 130.0, 30.0) == {"setup": 30.0, "eval": 30.0}


def test_billed_price_wins_over_the_list_price_and_both_validate() -> None:
    billed = cost_meta(3600.0, "H200 SXM", 2, 7.0, 3.59, Prediction(3000.0, 6.0, "7 runs"))
    assert (billed["priced"], billed["billed_dollars"], billed["predicted_from"]) == ("billed", 7.0, "7 runs")
    listed = cost_meta(1800.0, "NVIDIA H200", 2, None, 3.59, None)
    assert (listed["priced"], listed["cost_per_hour"]) == ("list price", pytest.approx(7.18))
    assert listed["billed_dollars"] == pytest.approx(3.59)
    assert listed["predicted_from"] == "not recorded"
    for cost in (billed, listed):
        validate("results", {"config": {"name": "x-001", "default_system_message": ""}, "results": [],
                             "meta": {"cost": cost, "phases": {"boot": 1.0}}}, file="x")  # fmt: skip


@given(st.floats(0, 1e6, allow_nan=False), st.floats(0.01, 100, allow_nan=False))
def test_the_dollars_are_those_of_the_seconds_recorded(seconds: float, per_hour: float) -> None:
    """A reader who prices meta.cost's billed_seconds gets its billed_dollars (62.649 s at $3.59/h
    recorded 62.6 s and $0.0625, where 62.6 s cost $0.0624)."""
    cost = cost_meta(seconds, "H200 SXM", 1, per_hour, None, None)
    assert cost["billed_dollars"] == round(cost["billed_seconds"] / 3600 * per_hour, 4)


@pytest.mark.parametrize(
    ("name", "key"),
    [("NVIDIA H200", "h200"), ("H200 SXM", "h200"), ("NVIDIA A100-SXM4-80GB", "a100"), ("local", "local")],
)
def test_gpu_key_matches_haha_toml_ids_with_runpod_display_names(name: str, key: str) -> None:
    assert gpu_key(name) == key
