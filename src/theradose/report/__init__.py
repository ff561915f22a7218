"""Dose reports: HTML (self-contained, figures embedded) and PDF (matplotlib, offline).

Public API::

    from theradose.report import build_report_data, write_html, write_pdf
"""

from __future__ import annotations

from theradose.report.data import ReportData, build_report_data
from theradose.report.figures import report_figures
from theradose.report.html import write_html
from theradose.report.pdf import write_pdf

__all__ = ["ReportData", "build_report_data", "report_figures", "write_html", "write_pdf"]
