"""Self-contained HTML report: figures embedded as PNG data URIs, no external resources. Same content as
the PDF (:mod:`theradose.report.pdf`), from the same tables (:mod:`theradose.report.tables`)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from theradose.report.data import ReportData
from theradose.report.figures import report_figures
from theradose.report.signoff import signoff_html
from theradose.report.tables import (
    FLAG_LEGEND,
    budget_legend,
    budget_table_rows,
    dose_table_rows,
    estimates_table_rows,
    kinetics_table_rows,
    plan_summary,
)

_STYLE = """
body { font-family: sans-serif; max-width: 64em; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 0.5em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left; }
td.num { text-align: right; white-space: nowrap; }
th { background: #eee; }
.warnings li { color: #8a1c00; }
.note { font-size: 0.85em; color: #444; }
.signature td { height: 2.5em; min-width: 12em; }
img { max-width: 100%; }
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    e = html.escape
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            numeric = i > 0 and any(ch.isdigit() for ch in str(cell)) and not str(cell)[:1].isalpha()
            cells.append(f"<td class='num'>{e(str(cell))}</td>" if numeric else f"<td>{e(str(cell))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return out


def render_html(data: ReportData, figures: dict[str, Any] | None = None) -> str:
    """The report as one HTML document (string); ``figures`` from :func:`report_figures` (drawn if None)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        f"<html lang='en'><head><meta charset='utf-8'><title>{e(data.title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(data.title)}</h1>",
        "<table class='header'>",
        *(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in data.header),
        "</table>",
        "<h2>Absorbed doses</h2>",
    ]
    parts += _table(*dose_table_rows(data))
    parts.append(
        "<p class='note'>± one standard uncertainty (the region's uncertainty budget); u: relative standard "
        "uncertainty of the dose; dominant: the budget components that make up 80 % of its variance. "
        f"{e(FLAG_LEGEND)}</p>"
    )
    parts.append("<h2>Warnings</h2>")
    if data.warnings:
        parts.append("<ul class='warnings'>" + "".join(f"<li>{e(w)}</li>" for w in data.warnings) + "</ul>")
    else:
        parts.append("<p>None: every fit passed its goodness-of-fit test and no region is flagged.</p>")
    parts.append("<h2>Uncertainty budgets (EANM, Gear et al. 2018)</h2>")
    parts += _table(*budget_table_rows(data))
    parts.append(f"<p class='note'>{e(budget_legend())}</p>")
    parts.append("<h2>Dose estimates of every method</h2>")
    parts += _table(*estimates_table_rows(data))
    parts.append("<p class='note'>* the dose of each region (the study's reference dose).</p>")
    lines, plan_head, plan_rows = plan_summary(data)
    if lines:
        parts.append("<h2>Next-cycle plan</h2>")
        parts += [f"<p>{e(line)}</p>" for line in lines]
        parts += _table(plan_head, plan_rows)
        parts.append("<p class='note'>Cumulative values include the recommended next cycle.</p>")
    for title, fig in (figures or report_figures(data)).items():
        parts.append(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{_png(fig)}'>")
    parts.append("<h2>Methods</h2>")
    parts += [f"<p>{e(p)}</p>" for p in data.methods]
    parts.append("<h3>Kinetics per region</h3>")
    parts += _table(*kinetics_table_rows(data))
    parts.append("<h2>References</h2><ol>")
    parts += [f"<li>{e(r)}</li>" for r in data.references]
    parts.append("</ol><h2>Provenance</h2><table>")
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in data.provenance]
    parts.append("</table><h2>Sign-off</h2>")
    parts.append(signoff_html())
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(data: ReportData, path: str | Path, *, figures: dict[str, Any] | None = None) -> Path:
    """Write the HTML report to ``path``."""
    out = Path(path)
    out.write_text(render_html(data, figures), encoding="utf-8")
    return out
