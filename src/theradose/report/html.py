"""Self-contained HTML report: figures embedded as PNG data URIs, no external resources."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from theradose.report.data import ReportData
from theradose.report.figures import dose_table_rows, plan_summary, report_figures

_STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left; }
th { background: #eee; }
.signature td { height: 2.5em; min-width: 14em; }
img { max-width: 100%; }
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


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
    head, rows = dose_table_rows(data)
    parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
    parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
    parts.append("</table><p>Uncertainties are one standard uncertainty.</p>")
    lines, plan_head, plan_rows = plan_summary(data)
    if lines:
        parts.append("<h2>Next-cycle plan</h2>")
        parts += [f"<p>{e(line)}</p>" for line in lines]
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in plan_head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in plan_rows]
        parts.append("</table><p>Cumulative values include the recommended next cycle.</p>")
    for title, fig in (figures or report_figures(data)).items():
        parts.append(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{_png(fig)}'>")
    parts.append("<h2>Methods</h2>")
    parts += [f"<p>{e(p)}</p>" for p in data.methods]
    parts.append("<h2>References</h2><ol>")
    parts += [f"<li>{e(r)}</li>" for r in data.references]
    parts.append("</ol><h2>Sign-off</h2><table class='signature'>")
    parts += [
        f"<tr><th>{role}</th><td>Name:</td><td>Signature:</td><td>Date:</td></tr>"
        for role in ("Prepared by (medical physicist)", "Approved by (physician)")
    ]
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


def write_html(data: ReportData, path: str | Path, *, figures: dict[str, Any] | None = None) -> Path:
    """Write the HTML report to ``path``."""
    out = Path(path)
    out.write_text(render_html(data, figures), encoding="utf-8")
    return out
