"""Dose reports: HTML (self-contained, figures embedded) and PDF (matplotlib, offline).

Public API::

    from theradose.report import build_report_data, write_html, write_pdf

``build_report_data`` takes the study's dose record (:class:`theradose.dosimetry.results.StudyDoses`);
the report never imports the pipeline.
"""

from __future__ import annotations

from theradose.report.data import ReportData, TacPlot, build_report_data, coronal_mip, image_engine
from theradose.report.figures import report_figures
from theradose.report.html import write_html
from theradose.report.pdf import write_pdf

__all__ = [
    "ReportData",
    "TacPlot",
    "build_report_data",
    "coronal_mip",
    "image_engine",
    "report_figures",
    "write_html",
    "write_pdf",
]
