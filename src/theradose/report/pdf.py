"""PDF report on A4 pages (matplotlib's PdfPages, offline, no browser).

Every page is one A4 figure (210 × 297 mm = 595.28 × 841.89 pt): text, tables and figures are laid out
top to bottom by :class:`A4Writer`, which starts a new page when one is full and numbers the pages.
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from theradose.report.data import ReportData, TacPlot
from theradose.report.figures import (
    MAX_CURVES_PER_PANEL,
    PLAN_FIGURE_TITLE,
    TAC_COLUMNS,
    Rect,
    draw_dvhs,
    draw_mips,
    draw_tacs,
    dvh_panels,
)
from theradose.report.signoff import SIGNOFF_ROLES
from theradose.report.tables import (
    FLAG_LEGEND,
    budget_legend,
    budget_table_rows,
    dose_table_rows,
    estimates_table_rows,
    kinetics_table_rows,
    plan_summary,
)

#: A4 in inches (ISO 216: 210 × 297 mm).
A4_WIDTH_IN = 210.0 / 25.4
A4_HEIGHT_IN = 297.0 / 25.4
#: Page margins (fractions of the page width and height).
MARGIN_X = 0.07
MARGIN_TOP = 0.05
MARGIN_BOTTOM = 0.06
#: Average glyph width of the report font (DejaVu Sans) in ems, for wrapping text to the page width.
GLYPH_EM = 0.56
#: The same for bold text.
GLYPH_EM_BOLD = 0.64
#: Points per inch.
PT_PER_IN = 72.0


class A4Writer:
    """Lays out headings, paragraphs, key-value blocks, tables and figures on A4 pages, top to bottom."""

    def __init__(self, title: str, footer: str) -> None:
        self.title = title
        self.footer = footer
        self.pages: list[Any] = []
        self.page: Any = None
        self.y = 0.0

    # --- geometry -----------------------------------------------------------------------------------
    @property
    def width(self) -> float:
        return 1.0 - 2 * MARGIN_X

    def _line_height(self, size_pt: float, spacing: float = 1.35) -> float:
        return size_pt * spacing / PT_PER_IN / A4_HEIGHT_IN

    def _chars(self, size_pt: float, width_fraction: float, *, bold: bool = False) -> int:
        em = GLYPH_EM_BOLD if bold else GLYPH_EM
        return max(4, int(width_fraction * A4_WIDTH_IN * PT_PER_IN / (em * size_pt)))

    def new_page(self) -> None:
        from matplotlib.figure import Figure

        self.page = Figure(figsize=(A4_WIDTH_IN, A4_HEIGHT_IN), dpi=100)
        self.pages.append(self.page)
        self.y = 1.0 - MARGIN_TOP

    def need(self, height: float) -> None:
        """Start a new page unless ``height`` (page fraction) fits below the current position."""
        if self.page is None or self.y - height < MARGIN_BOTTOM:
            self.new_page()

    # --- content ------------------------------------------------------------------------------------
    def heading(self, text: str, size: float = 11.0) -> None:
        self.need(self._line_height(size) * 2 + 0.04)
        self.y -= self._line_height(size) * 0.4
        self.page.text(MARGIN_X, self.y, text, fontsize=size, weight="bold", va="top")
        self.y -= self._line_height(size) * 1.3

    def paragraph(self, text: str, size: float = 7.5, *, indent: float = 0.0) -> None:
        lines = textwrap.wrap(text, self._chars(size, self.width - indent)) or [""]
        for line in lines:
            self.need(self._line_height(size))
            self.page.text(MARGIN_X + indent, self.y, line, fontsize=size, va="top")
            self.y -= self._line_height(size)
        self.y -= self._line_height(size) * 0.5

    def key_values(
        self, pairs: Sequence[tuple[str, str]], size: float = 7.5, key_width: float = 0.22
    ) -> None:
        for key, value in pairs:
            lines = textwrap.wrap(value, self._chars(size, self.width - key_width)) or [""]
            self.need(self._line_height(size) * len(lines))
            self.page.text(MARGIN_X, self.y, f"{key}:", fontsize=size, weight="bold", va="top")
            for line in lines:
                self.page.text(MARGIN_X + key_width, self.y, line, fontsize=size, va="top")
                self.y -= self._line_height(size)
        self.y -= self._line_height(size) * 0.5

    def table(
        self, header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float], size: float = 6.5
    ) -> None:
        """A table with wrapped header cells and one line per row, ruled, continued on the next page with
        its header repeated. ``widths`` are the columns' shares of the text width."""
        total = sum(widths)
        columns = [w / total * self.width for w in widths]
        lefts = [MARGIN_X + sum(columns[:i]) for i in range(len(columns))]
        wrapped = [
            textwrap.wrap(h, self._chars(size, c)) or [""] for h, c in zip(header, columns, strict=True)
        ]
        head_lines = max(len(w) for w in wrapped)
        row_h = self._line_height(size, 1.45)

        def draw_header() -> None:
            self.need(row_h * (head_lines + 2))
            top = self.y
            for left, lines in zip(lefts, wrapped, strict=True):
                for k, line in enumerate(lines):
                    self.page.text(left, top - k * row_h, line, fontsize=size, weight="bold", va="top")
            self.y -= row_h * head_lines + row_h * 0.2
            self._rule()

        draw_header()
        for row in rows:
            if self.y - row_h < MARGIN_BOTTOM:
                self.new_page()
                self.page.text(MARGIN_X, self.y, "(table continued)", fontsize=size, style="italic", va="top")
                self.y -= row_h * 1.5
                draw_header()
            for left, cell, width in zip(lefts, row, columns, strict=True):
                text = str(cell)
                limit = self._chars(size, width * 0.95)
                if len(text) > limit:
                    text = text[: max(limit - 1, 1)] + "…"
                self.page.text(left, self.y, text, fontsize=size, va="top")
            self.y -= row_h
        self._rule()
        self.y -= row_h * 0.6

    def _rule(self) -> None:
        from matplotlib.lines import Line2D

        y = self.y + self._line_height(6.5, 0.3)
        self.page.add_artist(
            Line2D([MARGIN_X, 1 - MARGIN_X], [y, y], transform=self.page.transFigure, lw=0.4, color="#666666")
        )

    def figure(self, height: float, draw: Callable[[Any, Rect], None]) -> None:
        """Reserve ``height`` (page fraction) and call ``draw(page, rect)``."""
        self.need(height)
        rect = (MARGIN_X, self.y - height, self.width, height)
        draw(self.page, rect)
        self.y -= height + 0.01

    def image(self, fig: Any, width_fraction: float = 1.0) -> None:
        """Place another figure (rasterised at 200 dpi) at its aspect ratio."""
        import matplotlib.image as mpimg

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=200)
        buf.seek(0)
        pixels = mpimg.imread(buf)
        w_in, h_in = fig.get_size_inches()
        width = self.width * width_fraction
        height = width * A4_WIDTH_IN * h_in / w_in / A4_HEIGHT_IN
        self.need(height)
        ax = self.page.add_axes((MARGIN_X, self.y - height, width, height))
        ax.imshow(pixels)
        ax.axis("off")
        self.y -= height + 0.01

    def finish(self, path: Path, *, title: str) -> Path:
        """Number the pages and write the PDF."""
        from matplotlib.backends.backend_pdf import PdfPages

        n = len(self.pages)
        for i, page in enumerate(self.pages, start=1):
            page.text(MARGIN_X, MARGIN_BOTTOM * 0.5, self.footer, fontsize=6, color="#444444", va="center")
            page.text(
                1 - MARGIN_X, MARGIN_BOTTOM * 0.5, f"page {i} of {n}", fontsize=6, color="#444444",
                ha="right", va="center",
            )  # fmt: skip
        with PdfPages(path, metadata={"Title": title, "Creator": "theradose", "CreationDate": None}) as pdf:
            for page in self.pages:
                pdf.savefig(page)
        return path


def _tacs(tacs: Sequence[TacPlot], fig: Any, rect: Rect) -> None:
    draw_tacs(fig, tacs, rect)


def _mips(data: ReportData, fig: Any, rect: Rect) -> None:
    draw_mips(fig, data, rect)


def _dvhs(data: ReportData, panels: Sequence[tuple[str, list[str]]], fig: Any, rect: Rect) -> None:
    draw_dvhs(fig, data, panels, rect)


def write_pdf(data: ReportData, path: str | Path, *, figures: dict[str, Any] | None = None) -> Path:
    """Write the report as a PDF of A4 pages: header and doses ± σ, warnings, the uncertainty budgets,
    the next-cycle plan, TACs, MIPs, DVHs, Methods with the kinetics table, references, provenance and the
    sign-off lines. ``figures`` (the HTML's) supplies the plan figure, drawn once."""
    doses = data.doses
    writer = A4Writer(data.title, f"{data.title} · {doses.patient.name}")
    writer.new_page()
    writer.heading(data.title, 13)
    writer.key_values(data.header)
    writer.heading("Absorbed doses")
    header, rows = dose_table_rows(data)
    writer.table(header, rows, (1.65, 0.75, 1.45, 1.65, 0.55, 0.7, 1.25, 1.75, 0.65))
    writer.paragraph(
        "± one standard uncertainty (the region's uncertainty budget); u: relative standard uncertainty of "
        "the dose; dominant: the budget components that make up 80 % of its variance. " + FLAG_LEGEND,
        6.5,
    )
    writer.heading("Warnings")
    if data.warnings:
        for warning in data.warnings:
            writer.paragraph(f"• {warning}", 7.0)
    else:
        writer.paragraph("None: every fit passed its goodness-of-fit test and no region is flagged.", 7.0)
    writer.heading("Uncertainty budgets (EANM, Gear et al. 2018)")
    header, rows = budget_table_rows(data)
    writer.table(header, rows, (1.7, 0.6, *([0.6] * 9), 0.7))
    writer.paragraph(budget_legend(), 6.5)
    header, rows = estimates_table_rows(data)
    writer.heading("Dose estimates of every method")
    writer.table(header, rows, (1.7, *([1.4] * (len(header) - 1))))
    writer.paragraph(
        "* the dose of each region (the study's reference dose); the others for comparison.", 6.5
    )
    lines, plan_head, plan_rows = plan_summary(data)
    if lines:
        writer.new_page()
        writer.heading("Next-cycle plan")
        for line in lines:
            writer.paragraph(line, 7.5)
        writer.table(plan_head, plan_rows, (1.1, 2.4, 1.3, 1.0, 0.9, 1.0, 0.9, 0.9))
        plan_figure = (figures or {}).get(PLAN_FIGURE_TITLE)
        if plan_figure is None and data.plan is not None and data.next_cycle is not None:
            from theradose.planning.plot import cumulative_bed_figure

            plan_figure = cumulative_bed_figure(data.plan, data.next_cycle)
        if plan_figure is not None:
            writer.heading(PLAN_FIGURE_TITLE, 9)
            writer.image(plan_figure, 0.85)
    per_page = TAC_COLUMNS * 4
    for start in range(0, len(data.tacs), per_page):
        tacs = data.tacs[start : start + per_page]
        writer.new_page()
        writer.heading("Time-activity curves" + (" (continued)" if start else ""))
        writer.figure(0.205 * math.ceil(len(tacs) / TAC_COLUMNS), functools.partial(_tacs, tacs))
    writer.new_page()
    writer.heading("Maximum-intensity projections")
    writer.figure(0.5, functools.partial(_mips, data))
    writer.paragraph(
        "Coronal maximum-intensity projections, patient's right on the viewer's left (R, L), superior up "
        "(S, I). Colour scales are linear from 0; values above the top of a scale (the 99.5th percentile of "
        "the body's pixels, so that organs stay visible next to hot tumours) are shown in its top colour, "
        "and the image maximum is given on the bar.",
        6.5,
    )
    panels = dvh_panels(data)
    per_dvh_page = 6
    for start in range(0, len(panels), per_dvh_page):
        chunk = panels[start : start + per_dvh_page]
        writer.new_page()
        writer.heading("Dose-volume histograms" + (" (continued)" if start else ""))
        writer.figure(0.255 * math.ceil(len(chunk) / 2), functools.partial(_dvhs, data, chunk))
        writer.paragraph(
            f"Cumulative DVHs (ICRU Report 83), linear dose axis from 0 Gy, at most {MAX_CURVES_PER_PANEL} "
            "regions per panel; regions of similar maximum dose share a panel.",
            6.5,
        )
    writer.new_page()
    writer.heading("Methods")
    for paragraph in data.methods:
        writer.paragraph(paragraph, 7.5)
    writer.heading("Kinetics per region", 9)
    header, rows = kinetics_table_rows(data)
    writer.table(header, rows, (1.7, 1.2, 1.2, 0.8, 0.7, 0.6, 1.2, 0.9))
    writer.heading("References")
    for i, reference in enumerate(data.references, start=1):
        writer.paragraph(f"{i}. {reference}", 6.5)
    writer.heading("Provenance")
    writer.key_values(data.provenance, 6.5, key_width=0.24)
    writer.heading("Sign-off")
    for _meaning, title in SIGNOFF_ROLES:
        writer.need(0.05)
        writer.y -= 0.02
        writer.paragraph(
            f"{title}:   name ______________________   signature ______________________   date ____________",
            7.5,
        )
    writer.paragraph(
        "In the theradose service the checked and approved lines are filled from the review's e-signatures.",
        6.5,
    )
    return writer.finish(Path(path), title=data.title)


__all__ = ["A4_HEIGHT_IN", "A4_WIDTH_IN", "A4Writer", "write_pdf"]
