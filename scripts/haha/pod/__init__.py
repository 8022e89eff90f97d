"""The in-pod side of a run: its lifecycle (`haha pod`) and its teardown (`haha pod-terminate`)."""

from haha.pod.lifecycle import PodRun
from haha.pod.shared import SharedPodRun, each_config, run_pod
from haha.pod.teardown import mark_failed_if_unfinished, terminate_self

__all__ = ["PodRun", "SharedPodRun", "each_config", "mark_failed_if_unfinished", "run_pod", "terminate_self"]
