"""Shared pods (`[compute] configs_per_pod` > 1): which planned configs run in one pod, how long that
pod may live, and what sharing saves. Pure functions; plan, launch, reap and the gate use them.

Configs that train the same base model on the same GPUs pay the image pull, the base-model download and
the boot once when they run one after another in one pod. Each keeps its own status, results, W&B run
and Hub repo; the pod is named after its first config and names the others (podname.PodName).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def group(items: Sequence[T], key: Callable[[T], Hashable | None], per_pod: int) -> list[tuple[T, ...]]:
    """`items` in pods of at most `per_pod`, in their order: those with one key share, up to the cap.

    A None key never shares (what it needs is unknown). Each pod is placed where its first item was.
    """
    pods: list[list[T]] = []
    open_pod: dict[Hashable, list[T]] = {}
    for item in items:
        k = key(item)
        current = open_pod.get(k) if k is not None else None
        if current is not None and len(current) < per_pod:
            current.append(item)
            continue
        pods.append([item])
        if k is not None:
            open_pod[k] = pods[-1]
    return [tuple(p) for p in pods]


def pod_hours(deadline_hours: float, overhead_minutes: float, count: int) -> float:
    """A pod's lifetime: every config's own `deadline_hours`, less the overhead each later one skips."""
    later = max(deadline_hours - overhead_minutes / 60, deadline_hours / 2)
    return deadline_hours + (count - 1) * later


def saving(
    sizes: Sequence[int], overhead_minutes: float, price_per_hour: float | None
) -> tuple[float, float | None]:
    """(minutes, dollars) not paid when pods of these sizes share their overhead (dollars None: no price)."""
    minutes = sum(max(n - 1, 0) for n in sizes) * overhead_minutes
    return minutes, None if price_per_hour is None else minutes / 60 * price_per_hour
