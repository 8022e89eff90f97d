"""Reading eval results: metrics, flags for broken runs, a markdown/HTML report, compare and judge."""

from haha.report.build import summary_table, write_report

__all__ = ["summary_table", "write_report"]
