"""The report's sign-off lines, blank in the file the pipeline writes and filled by the service from its
e-signatures when it shows a review's report.

The HTML report holds the sign-off block between :data:`BEGIN` and :data:`END`; :func:`fill_signoff`
replaces that block with the same table filled from the signatures (only valid ones fill a line; an
invalid one is shown as such). The report file on disk is never changed (its SHA-256 is what a signature
binds).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from theradose.report.numbers import local_time

#: The sign-off lines: e-signature meaning and the line's title.
SIGNOFF_ROLES: tuple[tuple[str, str], ...] = (
    ("prepared", "Prepared by (medical physicist)"),
    ("checked", "Checked by (medical physicist)"),
    ("approved", "Approved by (physician)"),
)
BEGIN = "<!-- theradose:signoff -->"
END = "<!-- /theradose:signoff -->"


def signoff_html(signatures: Sequence[Mapping[str, Any]] = (), *, zone: tzinfo | None = None) -> str:
    """The sign-off table: one line per role, filled from ``signatures`` (``meaning``, ``signer``,
    ``signed_at`` ISO 8601, ``valid``) where a valid one of that meaning exists, else blank."""
    e = html.escape
    rows = []
    for meaning, title in SIGNOFF_ROLES:
        found = [s for s in signatures if s.get("meaning") == meaning]
        valid = [s for s in found if s.get("valid", False)]
        if valid:
            when = datetime.fromisoformat(str(valid[-1]["signed_at"]).replace("Z", "+00:00"))
            shown = local_time(when, zone) if zone is not None else when.isoformat(timespec="minutes")
            cells = (
                f"<td>{e(str(valid[-1]['signer']))}</td><td>e-signature ({e(meaning)}), verified</td>"
                f"<td>{e(shown)}</td>"
            )
        elif found:
            cells = "<td colspan='3'>e-signature present but not valid (the files changed after signing)</td>"
        else:
            cells = "<td>Name:</td><td>Signature:</td><td>Date:</td>"
        rows.append(f"<tr data-meaning='{e(meaning)}'><th>{e(title)}</th>{cells}</tr>")
    return f"{BEGIN}<table class='signature'>{''.join(rows)}</table>{END}"


def fill_signoff(
    report_html: str, signatures: Sequence[Mapping[str, Any]], *, zone: tzinfo | None = None
) -> str:
    """``report_html`` with its sign-off block filled from ``signatures`` (unchanged when the report has
    no sign-off block, e.g. one written by an older version)."""
    start = report_html.find(BEGIN)
    end = report_html.find(END, start)
    if start < 0 or end < 0:
        return report_html
    return report_html[:start] + signoff_html(signatures, zone=zone) + report_html[end + len(END) :]


__all__ = ["BEGIN", "END", "SIGNOFF_ROLES", "fill_signoff", "signoff_html"]
