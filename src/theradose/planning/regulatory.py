"""Regulatory checks around an administration, with rules kept as data per jurisdiction.

Rules live in ``theradose/data/regulatory/<jurisdiction>.toml`` (shipped: ``us_nrc`` = 10 CFR Part 35).
Each check returns its citation. Percent deviations are compared exactly: each number is taken as the
shortest decimal that represents it (``repr``) and the comparison is done in decimal arithmetic, so a
measured 120 MBq against a prescribed 100 MBq is exactly 20 %, never 20.000000000000004 %.

Checks
------
- :func:`check_written_directive`: the content required by 10 CFR 35.40 is present and the directive
  was signed before the administration.
- :func:`check_dosage`: the measured dosage is within the allowed deviation of the prescribed dosage
  (10 CFR 35.63(d): not more than 20 %) and within the prescribed range if one was given.
- :func:`detect_medical_event`: 10 CFR 35.3045(a)(1) (dose difference above the thresholds AND dosage
  deviation of 20 % or more or outside the prescribed range) and (a)(2) (wrong drug, route or individual
  with a dose above the thresholds).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from theradose.errors import DataError, InputError

#: Folder of the shipped jurisdiction rule files.
REGULATORY_DIR = Path(__file__).resolve().parent.parent / "data" / "regulatory"

Comparison = Literal["greater_than", "at_least"]


@dataclass(frozen=True)
class RequiredField:
    """One field a written directive must contain."""

    field: str
    citation: str


@dataclass(frozen=True)
class Rules:
    """Regulatory rules of one jurisdiction (see ``data/regulatory/``)."""

    jurisdiction: str
    title: str
    written_directive_fields: tuple[RequiredField, ...]
    written_directive_citation: str
    dosage_max_deviation_percent: float
    dosage_fails_when: Comparison
    dosage_citation: str
    me_dosage_deviation_percent: float
    me_dosage_fails_when: Comparison
    me_dose_fails_when: Comparison
    me_effective_dose_equivalent_sv: float
    me_organ_dose_equivalent_sv: float
    me_skin_shallow_dose_equivalent_sv: float
    me_citation: str
    me_wrong_administration_citation: str


@dataclass(frozen=True)
class DosageCheck:
    """Result of the dosage check before administration."""

    ok: bool
    deviation_percent: float
    rule: str
    message: str


@dataclass(frozen=True)
class WrittenDirectiveCheck:
    """Result of the written-directive content check."""

    ok: bool
    problems: tuple[str, ...]
    rule: str


@dataclass(frozen=True)
class MedicalEventResult:
    """Whether an administration is a reportable medical event, and which criteria were met."""

    is_medical_event: bool
    criteria: tuple[str, ...]
    deviation_percent: float | None
    rule: str


def available_jurisdictions() -> tuple[str, ...]:
    """Names of the shipped jurisdiction rule files."""
    return tuple(sorted(p.stem for p in REGULATORY_DIR.glob("*.toml")))


def load_rules(jurisdiction: str = "us_nrc") -> Rules:
    """Load the rules of a shipped jurisdiction (``"us_nrc"``) or from a TOML file path."""
    path = REGULATORY_DIR / f"{jurisdiction}.toml"
    if not path.is_file():
        path = Path(jurisdiction)
        if not path.is_file():
            raise InputError(
                f"jurisdiction {jurisdiction!r} is unknown: use one of {list(available_jurisdictions())} "
                "or the path of a rules TOML"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"rules file {str(path)!r} cannot be read ({exc}): fix the file") from exc
    try:
        return _parse_rules(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"rules file {str(path)!r} is malformed ({exc!r}): fix or reinstall it") from exc


def _comparison(value: Any) -> Comparison:
    if value == "greater_than":
        return "greater_than"
    if value == "at_least":
        return "at_least"
    raise ValueError(f"comparison must be 'greater_than' or 'at_least', got {value!r}")


def _parse_rules(data: dict[str, Any]) -> Rules:
    wd = data["written_directive"]
    dc = data["dosage_check"]
    me = data["medical_event"]
    return Rules(
        jurisdiction=str(data["jurisdiction"]),
        title=str(data["title"]),
        written_directive_fields=tuple(
            RequiredField(str(f["field"]), str(f["citation"])) for f in wd["required_fields"]
        ),
        written_directive_citation=str(wd["citation"]),
        dosage_max_deviation_percent=float(dc["max_deviation_percent"]),
        dosage_fails_when=_comparison(dc["fails_when"]),
        dosage_citation=str(dc["citation"]),
        me_dosage_deviation_percent=float(me["dosage_deviation_percent"]),
        me_dosage_fails_when=_comparison(me["dosage_fails_when"]),
        me_dose_fails_when=_comparison(me["dose_fails_when"]),
        me_effective_dose_equivalent_sv=float(me["effective_dose_equivalent_sv"]),
        me_organ_dose_equivalent_sv=float(me["organ_dose_equivalent_sv"]),
        me_skin_shallow_dose_equivalent_sv=float(me["skin_shallow_dose_equivalent_sv"]),
        me_citation=str(me["citation"]),
        me_wrong_administration_citation=str(me["wrong_administration_citation"]),
    )


def _decimal(value: float, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number; got {value!r}: give it in the stated unit")
    result = Decimal(repr(float(value)))
    if not result.is_finite():
        raise InputError(f"{name} must be finite; got {value!r}: give a finite number")
    return result


def _exceeds(value: Decimal, threshold: Decimal, comparison: Comparison) -> bool:
    return value > threshold if comparison == "greater_than" else value >= threshold


def deviation_percent(prescribed_mbq: float, measured_mbq: float) -> Decimal:
    """Signed deviation of a measured from a prescribed dosage, 100 (M − P) / P, in exact decimal."""
    prescribed = _decimal(prescribed_mbq, "prescribed_mbq")
    measured = _decimal(measured_mbq, "measured_mbq")
    if prescribed <= 0:
        raise InputError(f"prescribed_mbq must be > 0; got {prescribed_mbq}: give the prescribed dosage")
    if measured < 0:
        raise InputError(f"measured_mbq must be >= 0; got {measured_mbq}: give the measured dosage")
    return (measured - prescribed) * 100 / prescribed


def check_dosage(
    prescribed_mbq: float,
    measured_mbq: float,
    *,
    prescribed_range_mbq: tuple[float, float] | None = None,
    rules: Rules | None = None,
) -> DosageCheck:
    """Check a measured dosage before administration (US: 10 CFR 35.63(d)).

    Parameters
    ----------
    prescribed_mbq, measured_mbq : float
        Prescribed and measured dosage (MBq).
    prescribed_range_mbq : (low, high), optional
        Prescribed dosage range, if the written directive gives one (MBq).
    rules : Rules, optional
        Jurisdiction rules; default US NRC.

    Returns
    -------
    DosageCheck
        ``ok`` is false when the deviation exceeds the allowed one (strictly more than 20 % under
        35.63(d)) or the dosage is outside the prescribed range.
    """
    rules = rules if rules is not None else load_rules()
    deviation = deviation_percent(prescribed_mbq, measured_mbq)
    limit = _decimal(rules.dosage_max_deviation_percent, "max_deviation_percent")
    fails = _exceeds(abs(deviation), limit, rules.dosage_fails_when)
    bound = "more than" if rules.dosage_fails_when == "greater_than" else "at least"
    message = (
        f"measured {measured_mbq:g} MBq differs from prescribed {prescribed_mbq:g} MBq by "
        f"{float(deviation):+.2f} %"
    )
    if fails:
        message += f": {bound} {float(limit):g} % is not allowed; do not administer unless the AU directs"
    if prescribed_range_mbq is not None:
        low, high = (_decimal(v, "prescribed_range_mbq") for v in prescribed_range_mbq)
        if low > high:
            raise InputError(
                f"prescribed_range_mbq must be (low, high); got {prescribed_range_mbq}: swap them"
            )
        if not low <= _decimal(measured_mbq, "measured_mbq") <= high:
            fails = True
            message += f"; outside the prescribed range {float(low):g}-{float(high):g} MBq"
    return DosageCheck(
        ok=not fails,
        deviation_percent=float(deviation),
        rule=f"{rules.dosage_citation}: not {bound} {float(limit):g} % from the prescribed dosage",
        message=message,
    )


def check_written_directive(
    directive: dict[str, Any],
    *,
    administration_datetime: datetime | None = None,
    rules: Rules | None = None,
) -> WrittenDirectiveCheck:
    """Check that a written directive holds the required content (US: 10 CFR 35.40).

    Parameters
    ----------
    directive : dict
        Fields: ``patient_name``, ``radioactive_drug``, ``dosage_mbq``, ``route_of_administration``,
        ``authorized_user``, ``signed_datetime`` (timezone-aware :class:`datetime`).
    administration_datetime : datetime, optional
        When the dosage is (to be) given; the directive must be signed before it.
    rules : Rules, optional

    Returns
    -------
    WrittenDirectiveCheck
        Each problem names the field and cites the paragraph requiring it.
    """
    rules = rules if rules is not None else load_rules()
    problems: list[str] = []
    for required in rules.written_directive_fields:
        value = directive.get(required.field)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"{required.field} is missing ({required.citation})")
            continue
        if required.field.endswith("_mbq") and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
        ):
            problems.append(
                f"{required.field} must be a positive number in MBq; got {value!r} ({required.citation})"
            )
        if required.field.endswith("_datetime"):
            if not isinstance(value, datetime) or value.tzinfo is None:
                problems.append(
                    f"{required.field} must be a timezone-aware date and time; got {value!r} "
                    f"({required.citation})"
                )
            elif administration_datetime is not None:
                if administration_datetime.tzinfo is None:
                    raise InputError("administration_datetime must be timezone-aware: add a UTC offset")
                if value > administration_datetime:
                    problems.append(
                        f"{required.field} {value.isoformat()} is after the administration "
                        f"{administration_datetime.isoformat()}: it must be signed before "
                        f"({required.citation})"
                    )
    return WrittenDirectiveCheck(
        ok=not problems, problems=tuple(problems), rule=rules.written_directive_citation
    )


def detect_medical_event(
    prescribed_mbq: float,
    administered_mbq: float,
    *,
    prescribed_range_mbq: tuple[float, float] | None = None,
    effective_dose_difference_sv: float = 0.0,
    organ_dose_difference_sv: float = 0.0,
    skin_dose_difference_sv: float = 0.0,
    wrong_drug: bool = False,
    wrong_route: bool = False,
    wrong_individual: bool = False,
    effective_dose_sv: float = 0.0,
    organ_dose_sv: float = 0.0,
    skin_dose_sv: float = 0.0,
    rules: Rules | None = None,
) -> MedicalEventResult:
    """Decide whether an administration is a medical event (US: 10 CFR 35.3045(a)(1)(ii) and (a)(2)).

    Parameters
    ----------
    prescribed_mbq, administered_mbq : float
        Prescribed and actually administered dosage (MBq).
    prescribed_range_mbq : (low, high), optional
    effective_dose_difference_sv, organ_dose_difference_sv, skin_dose_difference_sv : float
        |dose delivered − dose that would have resulted from the prescribed dosage| as effective dose
        equivalent, largest organ/tissue dose equivalent and skin shallow dose equivalent (Sv). For
        177Lu (electrons and photons, radiation weighting factor 1, ICRP 103) an organ's Sv equals its
        Gy, e.g. ``organ Gy/GBq × |ΔA| GBq``.
    wrong_drug, wrong_route, wrong_individual : bool
        Administration errors of 35.3045(a)(2)(i)-(iii).
    effective_dose_sv, organ_dose_sv, skin_dose_sv : float
        Doses received from a wrong administration (Sv).
    rules : Rules, optional

    Returns
    -------
    MedicalEventResult
    """
    rules = rules if rules is not None else load_rules()
    deviation = deviation_percent(prescribed_mbq, administered_mbq)
    comparison = rules.me_dose_fails_when
    thresholds = (
        ("effective dose equivalent", effective_dose_difference_sv, rules.me_effective_dose_equivalent_sv),
        ("organ or tissue dose", organ_dose_difference_sv, rules.me_organ_dose_equivalent_sv),
        ("skin shallow dose equivalent", skin_dose_difference_sv, rules.me_skin_shallow_dose_equivalent_sv),
    )
    criteria: list[str] = []
    dose_exceeded = [
        f"{label} difference {value:g} Sv {'>' if comparison == 'greater_than' else '>='} {limit:g} Sv"
        for label, value, limit in thresholds
        if _exceeds(abs(_decimal(value, label)), _decimal(limit, label), comparison)
    ]
    dosage_limit = _decimal(rules.me_dosage_deviation_percent, "dosage_deviation_percent")
    dosage_off = _exceeds(abs(deviation), dosage_limit, rules.me_dosage_fails_when)
    outside_range = False
    if prescribed_range_mbq is not None:
        low, high = (_decimal(v, "prescribed_range_mbq") for v in prescribed_range_mbq)
        outside_range = not low <= _decimal(administered_mbq, "administered_mbq") <= high
    if dose_exceeded and (dosage_off or outside_range):
        what = (
            f"dosage differs by {float(deviation):+.2f} % "
            f"({'>' if rules.me_dosage_fails_when == 'greater_than' else '>='} {float(dosage_limit):g} %)"
            if dosage_off
            else "dosage outside the prescribed range"
        )
        criteria.append(f"{rules.me_citation}: {what} and {'; '.join(dose_exceeded)}")
    wrong = [
        name
        for name, flag in (
            ("wrong radioactive drug", wrong_drug),
            ("wrong route", wrong_route),
            ("wrong individual", wrong_individual),
        )
        if flag
    ]
    if wrong:
        received = [
            f"{label} {value:g} Sv"
            for label, value, limit in (
                ("effective dose equivalent", effective_dose_sv, rules.me_effective_dose_equivalent_sv),
                ("organ or tissue dose", organ_dose_sv, rules.me_organ_dose_equivalent_sv),
                ("skin shallow dose equivalent", skin_dose_sv, rules.me_skin_shallow_dose_equivalent_sv),
            )
            if _exceeds(abs(_decimal(value, label)), _decimal(limit, label), comparison)
        ]
        if received:
            criteria.append(
                f"{rules.me_wrong_administration_citation}: {', '.join(wrong)} with {'; '.join(received)}"
            )
    rule = f"{rules.me_citation}; {rules.me_wrong_administration_citation}"
    return MedicalEventResult(
        is_medical_event=bool(criteria),
        criteria=tuple(criteria),
        deviation_percent=float(deviation),
        rule=rule,
    )


#: Radiation weighting factor of photons and electrons (ICRP Publication 103, 2007, Table 2).
RADIATION_WEIGHTING_FACTOR_LOW_LET = 1.0


def organ_dose_difference_sv(
    dose_gy_per_gbq: float,
    prescribed_mbq: float,
    administered_mbq: float,
    *,
    radiation_weighting_factor: float = RADIATION_WEIGHTING_FACTOR_LOW_LET,
) -> float:
    """Organ dose-equivalent difference caused by a dosage error, for :func:`detect_medical_event`.

    ``H = w_R × (Gy/GBq) × |A_administered − A_prescribed|`` in Sv (dose linear in activity for a
    given biodistribution; w_R = 1 for 177Lu electrons and photons, ICRP Publication 103).

    Parameters
    ----------
    dose_gy_per_gbq : float
        Organ absorbed dose per administered activity (Gy/GBq), e.g. from dosimetry of this cycle.
    prescribed_mbq, administered_mbq : float
        Prescribed and administered dosage (MBq).
    radiation_weighting_factor : float
        w_R (1 for low-LET radiation; 20 for alpha particles, ICRP 103).
    """
    from theradose.units import mbq_to_gbq

    for name, value in (
        ("dose_gy_per_gbq", dose_gy_per_gbq),
        ("prescribed_mbq", prescribed_mbq),
        ("administered_mbq", administered_mbq),
        ("radiation_weighting_factor", radiation_weighting_factor),
    ):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be finite and >= 0; got {value}: fix the value")
    return radiation_weighting_factor * dose_gy_per_gbq * mbq_to_gbq(abs(administered_mbq - prescribed_mbq))
