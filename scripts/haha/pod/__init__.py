"""The in-pod side of a run: its lifecycle (`haha pod`) and its teardown (`haha pod-terminate`)."""

from haha.pod.lifecycle import PodRun
from haha.pod.teardown import mark_failed_if_unfinished, terminate_self

__all__ = ["PodRun", "mark_failed_if_unfinished", "terminate_self"]
