"""An Axolotl plugin that lets its data-parallel path run on CPU processes (gloo), for tests only.

Axolotl 0.19.0 places each rank's model with `device_map = {"": LOCAL_RANK}` whenever WORLD_SIZE > 1
(`axolotl.utils.config.normalize_config`), an integer that transformers reads as an accelerator index;
without one it fails with "Cannot access accelerator device when none is available". On CPU this
plugin maps that placement to `{"": "cpu"}` after Axolotl computed it, and changes nothing else:
the launcher (torchrun, one process per device), Trainer, DDP wrapping and gradient all-reduce (gloo
on CPU) stay Axolotl's and torch's own. `haha run` adds it only to CPU runs with several processes,
and records it with the other CPU overrides (`meta.cpu_overrides`).
"""

from __future__ import annotations

from typing import Any

from axolotl.integrations.base import BasePlugin

PLUGIN = "haha.cpu_ddp.CpuDdpPlugin"


def _cpu_placement(device_map: Any) -> Any:
    """An integer (accelerator index) placement → the CPU; anything else unchanged."""
    if isinstance(device_map, int) and not isinstance(device_map, bool):
        return "cpu"
    if isinstance(device_map, dict):
        return {k: _cpu_placement(v) for k, v in device_map.items()}
    return device_map


class CpuDdpPlugin(BasePlugin):
    """Registered through the config's `plugins:`; patches the model loader's placement once."""

    def register(self, cfg: dict) -> None:
        import torch
        from axolotl.loaders.model import ModelLoader

        if torch.cuda.is_available() or getattr(ModelLoader, "_haha_cpu_ddp", False):
            return
        original = ModelLoader._set_device_map_config

        def set_device_map_config(loader: ModelLoader) -> None:
            original(loader)
            if "device_map" in loader.model_kwargs:
                loader.model_kwargs["device_map"] = _cpu_placement(loader.model_kwargs["device_map"])

        ModelLoader._set_device_map_config = set_device_map_config  # type: ignore[method-assign]
        ModelLoader._haha_cpu_ddp = True  # type: ignore[attr-defined]
