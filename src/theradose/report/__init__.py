"""Dose reports: HTML (self-contained, figures embedded) and PDF (A4 pages, matplotlib, offline).

Public API::

    from theradose.report import build_report_data, write_html, write_pdf, fill_signoff

``build_report_data`` takes the study's dose record (:class:`theradose.dosimetry.results.StudyDoses`);
the report never imports the pipeline. ``fill_signoff`` fills the HTML report's checked and approved
lines from e-signatures (the service uses it when it shows a review's report).
"""

from __future__ import annotations

from theradose.report.data import ReportData, TacPlot, build_report_data, coronal_mip, image_engine
from theradose.report.figures import report_figures
from theradose.report.html import write_html
from theradose.report.pdf import write_pdf
from theradose.report.signoff import fill_signoff, signoff_html

__all__ = [
    "ReportData",
    "TacPlot",
    "build_report_data",
    "coronal_mip",
    "fill_signoff",
    "image_engine",
    "report_figures",
    "signoff_html",
    "write_html",
    "write_pdf",
]
