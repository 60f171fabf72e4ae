"""hte.report: a self-contained HTML report of a run folder (``write_report``, ``build_report``)."""

from hte.report.build import REPORT_FILE, build_report, write_report

__all__ = ["REPORT_FILE", "build_report", "write_report"]
