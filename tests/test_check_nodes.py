"""`haha check` on `haha: {nodes: N}`: the block, cost over every node, sharding over every GPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from check_helpers import LLAMA, ROOT, check, edit_config, errors, make_repo, only, warnings
from haha.check import cost
from haha.settings import load_settings

NEXT = "train/config/haha-llama-3-8b-lora-002.yml"
H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = make_repo(tmp_path)
    shutil.copytree(ROOT / "deepspeed_configs", root / "deepspeed_configs")
    return root


def add_next(root: Path, **changes: object) -> None:
    (root / NEXT).write_text((root / LLAMA).read_text())
    edit_config(root, NEXT, **changes)


def cost_of(root: Path, name: str = "haha-llama-3-8b-lora-002"):
    (found,) = [c for c in check(root).costs if c.config == name]
    return found


def test_efficiency_across_nodes_is_point_eight_per_doubling() -> None:
    assert cost.cluster_efficiency(8, 1) == pytest.approx(0.729)
    assert cost.cluster_efficiency(8, 2) == pytest.approx(0.729 * 0.8)
    assert cost.cluster_efficiency(8, 4) == pytest.approx(0.729 * 0.64)
    assert cost.cluster_efficiency(1, 2) == pytest.approx(0.8)


def test_two_nodes_cost_every_gpu_of_both(root: Path) -> None:
    add_next(root, haha={"gpus": 8, "nodes": 2, "gpu_types": [H100]}, micro_batch_size=1)
    two = cost_of(root)
    edit_config(root, NEXT, haha={"gpus": 8, "gpu_types": [H100]})
    one = cost_of(root)
    assert (two.gpus, two.nodes, one.nodes) == (8, 2, 1)
    assert two.scaling_efficiency == pytest.approx(0.729 * 0.8)
    # Twice the GPUs at 80% of the efficiency: 1 / (2 × 0.8) of the one-node time.
    assert two.train_seconds == pytest.approx(one.train_seconds / (2 * 0.8))
    settings = load_settings(root, {})
    overhead_h = settings.compute.overhead_minutes / 60
    price = settings.gpu(H100).price_per_hour
    assert two.dollars == pytest.approx((two.train_seconds / 3600 + overhead_h) * price * 16)
    assert two.global_batch == 16 * one.global_batch / 8


def test_a_nodes_config_of_eight_gpu_nodes_passes_the_gate_clean(root: Path) -> None:
    add_next(root, haha={"gpus": 8, "nodes": 2}, micro_batch_size=1)
    report = check(root)
    cluster = ("nodes of 8 GPUs", "cannot pull a private image", "on-demand only")
    assert not [f for f in report.findings if f.file == NEXT and any(c in f.message for c in cluster)]
    assert report.exit_code == 0


def test_smaller_nodes_warn_that_runpod_offers_eight_gpu_nodes(root: Path) -> None:
    add_next(root, haha={"gpus": 2, "nodes": 2}, micro_batch_size=1)
    report = check(root)
    assert not [f for f in errors(report) if f.file == NEXT] and report.exit_code == 0
    found = only(warnings(report), "nodes of 8 GPUs")
    assert (found.file, found.field) == (NEXT, "haha.gpus") and found.line is not None


def test_a_cluster_cannot_pull_a_private_image_nor_be_interruptible(root: Path) -> None:
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace('registry_auth_id = ""', 'registry_auth_id = "cr-ghcr-1"'))
    add_next(root, haha={"gpus": 8, "nodes": 2, "interruptible": True}, micro_batch_size=1)
    report = check(root)
    private = only(errors(report), "cannot pull a private image")
    spot = only(errors(report), "on-demand only")
    assert (private.file, private.field, spot.field) == (NEXT, "haha.nodes", "haha.interruptible")
    assert "registry_auth_id" in private.fix and report.exit_code != 0


def test_a_cluster_volume_under_ten_gb_is_refused_at_the_gate(root: Path) -> None:
    toml = root / "haha.toml"
    text = toml.read_text()
    assert "\nvolume_gb = 0" in text
    toml.write_text(text.replace("\nvolume_gb = 0", "\nvolume_gb = 5"))
    add_next(root, haha={"gpus": 8, "nodes": 2}, micro_batch_size=1)
    found = only(errors(check(root)), "at least 10 GB")
    assert (found.file, found.field) == (NEXT, "haha.nodes") and "compute.volume_gb" in found.fix


@pytest.mark.parametrize("nodes", [0, 9, "2", True, 1.5])
def test_bad_nodes_names_file_line_field_and_fix(root: Path, nodes: object) -> None:
    add_next(root, haha={"nodes": nodes})
    found = only(errors(check(root)), "haha.nodes is")
    assert (found.file, found.field) == (NEXT, "haha.nodes")
    assert found.line is not None and "1..8" in found.fix


def test_zero3_shards_over_every_gpu_of_every_node(root: Path) -> None:
    """ZeRO's data-parallel world spans the nodes: 2 nodes × 4 GPUs hold what 1 node × 8 holds."""
    big = {"adapter": None, "lora_r": None, "optimizer": "adamw_torch", "micro_batch_size": 1}
    add_next(
        root,
        haha={"gpus": 4, "nodes": 2, "gpu_types": [H100]},
        deepspeed="deepspeed_configs/zero3.json",
        **big,
    )
    two_nodes = cost_of(root).memory_gib
    edit_config(root, NEXT, haha={"gpus": 8, "gpu_types": [H100]})
    one_node = cost_of(root).memory_gib
    edit_config(root, NEXT, haha={"gpus": 4, "gpu_types": [H100]})
    four = cost_of(root).memory_gib
    assert two_nodes == pytest.approx(one_node) and four > two_nodes + 10
