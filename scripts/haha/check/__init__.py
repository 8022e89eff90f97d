"""The PR gate: config rules, Axolotl schema, dataset scan, eval spec and a cost model, as Findings."""

from haha.check.gate import CheckReport, DatasetStats, run_check

__all__ = ["CheckReport", "DatasetStats", "run_check"]
