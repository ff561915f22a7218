"""Prescriptions / written directives for radiopharmaceutical therapy.

A written directive for unsealed byproduct material states the patient, the radioactive drug, the
dosage and the route of administration and is dated and signed by the authorized user before
administration (10 CFR 35.40(b)(2)). Here it is linked to the treatment plan (and cycle) it implements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_positive, require_text
from theradose.pharmacy.administration import ROUTES


@dataclass(frozen=True)
class WrittenDirective:
    """A written directive (prescription) for one administration.

    Attributes
    ----------
    patient_pseudonym : str
        The patient's pseudonym (never the identity).
    radiopharmaceutical : str
        Product, e.g. ``"[177Lu]Lu-PSMA-617"``.
    nuclide : str
        Canonical nuclide name.
    prescribed_activity_mbq : float
        Prescribed activity in MBq.
    route : str
        Route of administration (one of :data:`theradose.pharmacy.administration.ROUTES`).
    authorized_user : str
        Prescribing authorized user physician.
    written_at : datetime
        Date and time the directive was written (timezone-aware).
    plan_id : str or None
        Identifier of the treatment plan it implements.
    cycle : int
        Treatment cycle number (>= 1).
    """

    patient_pseudonym: str
    radiopharmaceutical: str
    nuclide: str
    prescribed_activity_mbq: float
    route: str
    authorized_user: str
    written_at: datetime
    plan_id: str | None = None
    cycle: int = 1

    def __post_init__(self) -> None:
        require_text(self.patient_pseudonym, "patient_pseudonym")
        require_text(self.radiopharmaceutical, "radiopharmaceutical")
        require_text(self.nuclide, "nuclide")
        require_positive(self.prescribed_activity_mbq, "prescribed_activity_mbq")
        require_text(self.authorized_user, "authorized_user")
        require_aware(self.written_at, "written_at")
        if self.route not in ROUTES:
            raise InputError(f"route must be one of {', '.join(ROUTES)}; got {self.route!r}")
        if self.cycle < 1:
            raise InputError(f"cycle must be >= 1; got {self.cycle}: cycles are numbered from 1")
