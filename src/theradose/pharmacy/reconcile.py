"""Is a dosimetry study of the administration the service recorded? One rule, used twice.

A dose record (``doses.json``) or a study file states what was given: patient, cycle, radiopharmaceutical,
nuclide, injected activity and injection time. The service's administration record states the same from
the dose calibrator and the bedside. :func:`compare_administration` lists every field where the two
disagree; :func:`require_same_administration` refuses the first with one line naming the field and both
values. The command line (``theradose run --administration``) and the service's dosimetry import use it,
so "the same administration" means the same thing in both places.

Tolerances
----------
- Injection time: :data:`INJECTION_TIME_TOLERANCE_MIN` (1 min). Both statements come from the same clock
  reading (the pipeline copies the record's time); 1 min allows a time typed to the minute.
- Administered activity: :data:`ACTIVITY_TOLERANCE_FRACTION` (1 %) of the recorded net activity. The
  pipeline copies the record's activity, so any larger difference is another administration or a typing
  error; 1 % allows a typed value rounded to the nearest 10 MBq at 7.4 GBq, far inside the 5 % accuracy of
  a dose calibrator (AAPM TG-181), so a real mix-up of two administrations is not hidden by it.
- Radiopharmaceutical: the same product of the product registry (:func:`theradose.products.find_product`:
  any listed spelling); a name the registry does not list matches only itself (case, spaces, hyphens and
  brackets ignored).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from theradose.errors import InputError

#: Largest difference (minutes) between two statements of one injection time.
INJECTION_TIME_TOLERANCE_MIN = 1.0
#: Largest relative difference between a stated and the recorded administered activity.
ACTIVITY_TOLERANCE_FRACTION = 0.01


@dataclass(frozen=True)
class AdministrationFacts:
    """What one source says about an administration; ``None``: the source does not say.

    Attributes
    ----------
    patient : str or None
        Patient identifier (the service's pseudonym, or the DICOM Patient ID of the images).
    cycle : int or None
        Therapy cycle number.
    radiopharmaceutical, nuclide : str or None
    activity_mbq : float or None
        Net administered activity (MBq).
    injection_time : datetime or None
        Timezone-aware.
    """

    patient: str | None = None
    cycle: int | None = None
    radiopharmaceutical: str | None = None
    nuclide: str | None = None
    activity_mbq: float | None = None
    injection_time: datetime | None = None

    def __post_init__(self) -> None:
        if self.injection_time is not None and self.injection_time.tzinfo is None:
            raise InputError(
                f"injection_time {self.injection_time.isoformat()} has no time zone: give the UTC offset"
            )
        if self.activity_mbq is not None and not (math.isfinite(self.activity_mbq) and self.activity_mbq > 0):
            raise InputError(f"activity_mbq must be > 0; got {self.activity_mbq}")


@dataclass(frozen=True)
class Mismatch:
    """One field on which two statements of an administration disagree."""

    field: str
    stated: str
    recorded: str
    message: str


def same_product(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same radiopharmaceutical (registry spellings; else the same
    name with case, spaces and punctuation ignored)."""
    from theradose.products import find_product, normalise

    pa, pb = find_product(a), find_product(b)
    if pa is not None or pb is not None:
        return pa is not None and pb is not None and pa.code == pb.code
    return normalise(a) == normalise(b)


def same_nuclide(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same nuclide (``Lu-177``, ``177Lu``, ``lu177``)."""
    from theradose.nuclides import get_nuclide

    try:
        return get_nuclide(a).name == get_nuclide(b).name
    except InputError:
        return a.strip().lower() == b.strip().lower()


def _utc(moment: datetime) -> str:
    from datetime import UTC

    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def compare_administration(
    stated: AdministrationFacts,
    recorded: AdministrationFacts,
    *,
    stated_name: str,
    recorded_name: str,
    patient_aliases: Sequence[str] = (),
) -> list[Mismatch]:
    """Every field on which ``stated`` and ``recorded`` disagree (fields either leaves out are not compared).

    Parameters
    ----------
    stated, recorded : AdministrationFacts
        What the study says and what the service recorded.
    stated_name, recorded_name : str
        How the messages name the two sources (``"doses.json"``, ``"administration 12"``).
    patient_aliases : sequence of str
        Other identifiers of the recorded patient that the stated one may be (e.g. the record number in
        the images' Patient ID); a message never repeats them.

    Returns
    -------
    list of Mismatch
        In the order patient, cycle, radiopharmaceutical, nuclide, injection time, activity.
    """
    out: list[Mismatch] = []

    def add(field: str, stated_text: str, recorded_text: str, detail: str = "") -> None:
        message = (
            f"{field}: {stated_name} says {stated_text}, {recorded_name} records {recorded_text}"
            f"{detail}: this is not the dosimetry of that administration; check the study or the record"
        )
        out.append(Mismatch(field, stated_text, recorded_text, message))

    if stated.patient is not None and recorded.patient is not None:
        if stated.patient != recorded.patient and stated.patient not in patient_aliases:
            add("patient", repr(stated.patient), repr(recorded.patient))
    if stated.cycle is not None and recorded.cycle is not None and stated.cycle != recorded.cycle:
        add("cycle", f"cycle {stated.cycle}", f"cycle {recorded.cycle}")
    if stated.radiopharmaceutical is not None and recorded.radiopharmaceutical is not None:
        if not same_product(stated.radiopharmaceutical, recorded.radiopharmaceutical):
            add("radiopharmaceutical", repr(stated.radiopharmaceutical), repr(recorded.radiopharmaceutical))
    if stated.nuclide is not None and recorded.nuclide is not None:
        if not same_nuclide(stated.nuclide, recorded.nuclide):
            add("nuclide", repr(stated.nuclide), repr(recorded.nuclide))
    if stated.injection_time is not None and recorded.injection_time is not None:
        minutes = abs((stated.injection_time - recorded.injection_time).total_seconds()) / 60.0
        if minutes > INJECTION_TIME_TOLERANCE_MIN:
            add(
                "injection_time",
                _utc(stated.injection_time),
                _utc(recorded.injection_time),
                f" ({minutes:.0f} min apart, more than {INJECTION_TIME_TOLERANCE_MIN:g} min)",
            )
    if stated.activity_mbq is not None and recorded.activity_mbq is not None:
        fraction = abs(stated.activity_mbq - recorded.activity_mbq) / recorded.activity_mbq
        if fraction > ACTIVITY_TOLERANCE_FRACTION:
            add(
                "activity_mbq",
                f"{stated.activity_mbq:g} MBq",
                f"{recorded.activity_mbq:g} MBq",
                f" ({100 * fraction:.1f} % apart, more than {100 * ACTIVITY_TOLERANCE_FRACTION:g} %)",
            )
    return out


def require_same_administration(
    stated: AdministrationFacts,
    recorded: AdministrationFacts,
    *,
    stated_name: str,
    recorded_name: str,
    patient_aliases: Sequence[str] = (),
) -> None:
    """Refuse (:class:`~theradose.errors.InputError`) when :func:`compare_administration` finds a mismatch;
    the message is the first mismatch's, naming the field and both values."""
    found = compare_administration(
        stated,
        recorded,
        stated_name=stated_name,
        recorded_name=recorded_name,
        patient_aliases=patient_aliases,
    )
    if found:
        raise InputError(found[0].message)


__all__ = [
    "ACTIVITY_TOLERANCE_FRACTION",
    "INJECTION_TIME_TOLERANCE_MIN",
    "AdministrationFacts",
    "Mismatch",
    "compare_administration",
    "require_same_administration",
    "same_nuclide",
    "same_product",
]
