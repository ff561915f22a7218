"""PDF report with matplotlib's PdfPages (offline, no browser)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from theradose.report.data import ReportData
from theradose.report.figures import (
    FIGURE_WIDTH_IN,
    _figure,
    dose_table_rows,
    plan_summary,
    report_figures,
)

#: A4 height, inches.
PAGE_HEIGHT_IN = 11.69


def write_pdf(data: ReportData, path: str | Path, *, figures: dict[str, Any] | None = None) -> Path:
    """Write the report as a multi-page PDF: header and dose table, TACs, MIPs, DVHs, methods and sign-off."""
    from matplotlib.backends.backend_pdf import PdfPages

    out = Path(path)
    with PdfPages(out, metadata={"Title": data.title, "Creator": "theradose", "CreationDate": None}) as pdf:
        page = _figure(PAGE_HEIGHT_IN)
        page.text(0.05, 0.97, data.title, fontsize=13, weight="bold", va="top")
        y = 0.93
        for label, value in data.header:
            page.text(0.05, y, f"{label}:", fontsize=8, weight="bold", va="top")
            page.text(0.35, y, value, fontsize=8, va="top")
            y -= 0.018
        head, rows = dose_table_rows(data)
        ax = page.add_axes((0.03, 0.05, 0.94, y - 0.07))
        ax.axis("off")
        table = ax.table(cellText=rows, colLabels=head, loc="upper center", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(5.5)
        table.auto_set_column_width(col=list(range(len(head))))
        table.scale(1.0, 1.1)
        pdf.savefig(page)
        lines, plan_head, plan_rows = plan_summary(data)
        if lines:
            plan_page = _figure(PAGE_HEIGHT_IN)
            plan_page.text(0.05, 0.97, "Next-cycle plan", fontsize=11, weight="bold", va="top")
            y = 0.93
            for line in lines:
                text = textwrap.fill(line, int(FIGURE_WIDTH_IN * 14))
                plan_page.text(0.05, y, text, fontsize=7.5, va="top")
                y -= 0.014 * (text.count("\n") + 1.6)
            ax = plan_page.add_axes((0.03, 0.05, 0.94, y - 0.07))
            ax.axis("off")
            table = ax.table(cellText=plan_rows, colLabels=plan_head, loc="upper center", cellLoc="left")
            table.auto_set_font_size(False)
            table.set_fontsize(6)
            table.auto_set_column_width(col=list(range(len(plan_head))))
            pdf.savefig(plan_page)
        for fig in (figures or report_figures(data)).values():
            pdf.savefig(fig)
        last = _figure(PAGE_HEIGHT_IN)
        y = 0.96
        last.text(0.05, y, "Methods", fontsize=11, weight="bold", va="top")
        y -= 0.03
        width = int(FIGURE_WIDTH_IN * 14)
        for paragraph in data.methods:
            text = textwrap.fill(paragraph, width)
            last.text(0.05, y, text, fontsize=7.5, va="top")
            y -= 0.014 * (text.count("\n") + 2)
        last.text(0.05, y, "References", fontsize=11, weight="bold", va="top")
        y -= 0.03
        for i, ref in enumerate(data.references, start=1):
            text = textwrap.fill(f"{i}. {ref}", width)
            last.text(0.05, y, text, fontsize=6.5, va="top")
            y -= 0.012 * (text.count("\n") + 1.6)
        y -= 0.02
        last.text(0.05, y, "Sign-off", fontsize=11, weight="bold", va="top")
        for role in ("Prepared by (medical physicist)", "Approved by (physician)"):
            y -= 0.05
            last.text(0.05, y, f"{role}:   Name ____________________   Signature ____________________   "
                f"Date ________",
                      fontsize=7.5, va="top")  # fmt: skip
        pdf.savefig(last)
    return out
