"""What a pod adds to its run's results file before the final upload: boot, baseline, teardown, the bill.

Pod created is launch's clock when it asked RunPod for the pod (HAHA_LAUNCHED_AT), container started
is boot.sh's (HAHA_BOOT_EPOCH); the price is what the provider reported for this pod (RunPod's
`costPerHr`, read by `teardown.describe_self`), else the list price in haha.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from haha.phases import cost_meta, gpu_key, ordered
from haha.podenv import PodEnv
from haha.settings import Settings


def pod_cost(
    meta: Mapping[str, Any],
    pod: PodEnv,
    settings: Settings,
    provider: tuple[str | None, float | None, datetime],
    baseline_from: datetime | None,
    now: datetime,
) -> tuple[dict[str, float], dict[str, Any]]:
    """(meta.phases, meta.cost) with the pod's own phases and billed seconds (pod created → now).

    `provider`: the GPU type and price per hour the provider reported for this pod, and when the pod
    process started (pod created, where neither launch nor boot.sh said when).

    `baseline_from`: when the pod started its baseline (it lasts until the pod's wrap-up, `now`).
    Teardown is the rest of the billed time: the gaps between phases and the wrap-up until now.
    """
    phases = {k: float(v) for k, v in (meta.get("phases") or {}).items() if k not in ("boot", "teardown")}
    reported_gpu, cost_per_hour, started = provider
    created = pod.launched_at or pod.boot_epoch or started.timestamp()
    billed = max(now.timestamp() - created, 0.0)
    if pod.launched_at is not None and pod.boot_epoch is not None:
        phases["boot"] = pod.boot_epoch - pod.launched_at
    if baseline_from is not None:
        phases["baseline"] = (now - baseline_from).total_seconds()
    phases["teardown"] = billed - sum(max(v, 0.0) for v in phases.values())
    before = meta.get("cost") or {}
    gpu_type = reported_gpu or str(before.get("gpu_type") or "")
    count = pod.gpu_count or int(before.get("gpu_count") or 1)
    list_price = _list_price(settings, gpu_type)
    cost = cost_meta(billed, gpu_type, count, cost_per_hour, list_price, pod.prediction)
    return ordered(phases), cost


def _list_price(settings: Settings, gpu_type: str) -> float | None:
    """haha.toml's price of the GPU type the pod got (RunPod reports its display name), else the first's."""
    if not settings.compute.gpu_types:
        return None
    return next(
        (g.price_per_hour for g in settings.compute.gpu_types if gpu_key(g.id) == gpu_key(gpu_type)),
        settings.compute.gpu_types[0].price_per_hour,
    )
