"""The printable syringe/vial label of a dispensed dose: a one-page PDF with a 2D (QR) code.

The label names the patient (pseudonym, and the name and birth date for roles allowed to read the
identity), the product, the activity at the calibration (planned) time, the volume, the lot, the
batch expiry and the dispensing number; the QR code (ISO/IEC 18004, drawn from ``segno``) carries the
same identifiers as text so a bedside scanner can check the syringe against the directive.
"""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.models import Batch, Dispensing, Patient, PatientIdentity, Prescription
from theradose.service.operations.common import get_or_404, utcnow
from theradose.service.permissions import allowed

#: Label size (width, height) in inches: 4 x 2 in, a common syringe-shield label.
LABEL_SIZE_IN = (4.0, 2.0)


def label_text(session: Session, me: Principal, dispensing_id: int, *, site_timezone: str) -> dict[str, str]:
    """The fields of the label (identity only for roles allowed to read it; that read is audited)."""
    disp = get_or_404(session, Dispensing, dispensing_id)
    batch = session.get(Batch, disp.batch_id)
    rx = session.get(Prescription, disp.prescription_id)
    patient = session.get(Patient, disp.patient_id)
    assert batch is not None and rx is not None and patient is not None
    tz = ZoneInfo(site_timezone)
    fields = {
        "patient": patient.pseudonym,
        "product": batch.product,
        "activity": f"{disp.activity_at_planned_mbq:,.0f} MBq at "
        f"{disp.planned_time.astimezone(tz):%Y-%m-%d %H:%M %Z}",
        "volume": f"{disp.volume_ml:.2f} mL",
        "lot": batch.lot,
        "expiry": f"{batch.expiry_time.astimezone(tz):%Y-%m-%d %H:%M %Z}",
        "dispensing": f"D{disp.id} / RX{rx.id} cycle {rx.cycle}",
    }
    if allowed(me.role, "identity:read"):
        ident = session.execute(
            select(PatientIdentity).where(PatientIdentity.patient_id == patient.id)
        ).scalar_one_or_none()
        if ident is not None:
            birth = ident.birth_date.isoformat() if ident.birth_date else "birth date not recorded"
            fields["name"] = (
                f"{ident.family_name.upper()}, {ident.given_name} · born {birth} · MRN {ident.mrn}"
            )
            audit_store.append(
                session,
                actor=me.username,
                at=utcnow(),
                action="read",
                entity="patient_identity",
                entity_id=patient.pseudonym,
                after={"view": "label", "dispensing": disp.id},
            )
    return fields


def label_pdf(fields: dict[str, str], *, image_format: str = "pdf") -> bytes:
    """Render the label fields and their QR code as a one-page PDF (or ``image_format="png"``)."""
    import matplotlib

    matplotlib.use("Agg")
    import segno
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    payload = "|".join(f"{k}={fields[k]}" for k in ("dispensing", "patient", "product", "lot", "activity"))
    qr = segno.make(payload, error="m")
    matrix = [list(row) for row in qr.matrix]
    fig = Figure(figsize=LABEL_SIZE_IN)
    ax = fig.add_axes((0.70, 0.08, 0.28, 0.84))
    size = len(matrix)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                ax.add_patch(Rectangle((x, size - 1 - y), 1, 1, color="black", linewidth=0))
    ax.set_xlim(-4, size + 4)  # the 4-module quiet zone of ISO/IEC 18004
    ax.set_ylim(-4, size + 4)
    ax.set_aspect("equal")
    ax.axis("off")
    lines = [
        ("RADIOACTIVE · " + fields["product"], 8.5, "bold"),
        (fields.get("name", "Patient " + fields["patient"]), 8, "bold"),
        (fields.get("born", ""), 6.5, "normal"),
        ("Patient " + fields["patient"] + " · " + fields["dispensing"], 6, "normal"),
        (fields["activity"], 7.5, "bold"),
        ("Volume " + fields["volume"] + " · Lot " + fields["lot"], 6.5, "normal"),
        ("Batch expiry " + fields["expiry"], 6.5, "normal"),
    ]
    y = 0.92
    for text, size_pt, weight in lines:
        if text:
            fig.text(0.03, y, text, fontsize=size_pt, weight=weight, va="top", family="DejaVu Sans")
        y -= 0.125
    out = io.BytesIO()
    fig.savefig(out, format=image_format, dpi=200)
    return out.getvalue()
