"""Administration: net administered activity from syringe assay before and residual after injection.

The syringe (or vial) is assayed in the dose calibrator before injection (``A_pre`` at ``t_pre``) and the
residual after (``A_res`` at ``t_res``). Both are decay-corrected to the injection time ``t_inj``:

``A_net(t_inj) = A_pre · exp(-λ (t_inj - t_pre)) - A_res · exp(+λ (t_res - t_inj))``

(EANM Dosimetry Committee recommendations for 177Lu-labelled SSTR and PSMA ligands, Sjögreen Gleisner
et al., EJNMMI Phys 9:30, 2022, section "Administered activity"; decay law: Cherry, Sorenson & Phelps,
*Physics in Nuclear Medicine*, 4th ed., ch. 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_non_negative, require_positive
from theradose.pharmacy.decay import activity_at_mbq

Route = Literal["intravenous", "intra-arterial", "oral", "intraperitoneal", "intrathecal", "intratumoral"]
ROUTES: tuple[str, ...] = get_args(Route)


@dataclass(frozen=True)
class AdministrationResult:
    """Net administered activity and its parts, all at the injection time (MBq)."""

    net_activity_mbq: float
    syringe_at_injection_mbq: float
    residual_at_injection_mbq: float
    injection_time: datetime
    route: str


def net_administered_activity(
    nuclide: str,
    *,
    syringe_activity_mbq: float,
    syringe_measured_at: datetime,
    residual_activity_mbq: float,
    residual_measured_at: datetime,
    injection_time: datetime,
    route: Route = "intravenous",
) -> AdministrationResult:
    """Net activity administered, decay-corrected to the injection time.

    Parameters
    ----------
    nuclide : str
        Nuclide of the radiopharmaceutical.
    syringe_activity_mbq : float
        Dose-calibrator reading of the full syringe in MBq (> 0).
    syringe_measured_at : datetime
        Time of that reading; not after ``injection_time``.
    residual_activity_mbq : float
        Reading of the syringe, lines and vial after injection in MBq (>= 0).
    residual_measured_at : datetime
        Time of that reading; not before ``injection_time``.
    injection_time : datetime
        Injection time (start of administration).
    route : Route
        Route of administration.

    Returns
    -------
    AdministrationResult
    """
    require_positive(syringe_activity_mbq, "syringe_activity_mbq")
    require_non_negative(residual_activity_mbq, "residual_activity_mbq")
    require_aware(syringe_measured_at, "syringe_measured_at")
    require_aware(residual_measured_at, "residual_measured_at")
    require_aware(injection_time, "injection_time")
    if route not in ROUTES:
        raise InputError(f"route must be one of {', '.join(ROUTES)}; got {route!r}")
    if syringe_measured_at > injection_time:
        raise InputError(
            f"syringe_measured_at {syringe_measured_at.isoformat()} is after injection_time "
            f"{injection_time.isoformat()}: assay the syringe before injecting"
        )
    if residual_measured_at < injection_time:
        raise InputError(
            f"residual_measured_at {residual_measured_at.isoformat()} is before injection_time "
            f"{injection_time.isoformat()}: assay the residual after injecting"
        )
    pre = activity_at_mbq(
        syringe_activity_mbq, nuclide, from_time=syringe_measured_at, to_time=injection_time
    )
    residual = activity_at_mbq(
        residual_activity_mbq, nuclide, from_time=residual_measured_at, to_time=injection_time
    )
    net = pre - residual
    if net <= 0.0:
        raise InputError(
            f"residual_activity_mbq {residual_activity_mbq:g} (={residual:.4g} MBq at injection) is not "
            f"less than the syringe activity ({pre:.4g} MBq at injection): check both readings"
        )
    return AdministrationResult(
        net_activity_mbq=net,
        syringe_at_injection_mbq=pre,
        residual_at_injection_mbq=residual,
        injection_time=injection_time,
        route=route,
    )


#: Clock difference tolerated between the bedside and the server when refusing future times, in minutes.
CLOCK_SKEW_MIN = 2.0


def check_times(
    *,
    syringe_measured_at: datetime,
    injection_time: datetime,
    residual_measured_at: datetime | None,
    now: datetime,
    dispensed_at: datetime | None = None,
) -> None:
    """Refuse times in the future or out of order (assay ≤ injection ≤ residual ≤ now; after dispensing).

    Raises
    ------
    InputError
        Naming the field, its value and the fix.
    """
    from datetime import timedelta

    latest = require_aware(now, "now") + timedelta(minutes=CLOCK_SKEW_MIN)
    named = [("syringe_measured_at", syringe_measured_at), ("injection_time", injection_time)]
    if residual_measured_at is not None:
        named.append(("residual_measured_at", residual_measured_at))
    for name, value in named:
        if require_aware(value, name) > latest:
            raise InputError(f"{name} {value.isoformat()} is in the future: enter the time it happened")
    if syringe_measured_at > injection_time:
        raise InputError(
            f"syringe_measured_at {syringe_measured_at.isoformat()} is after injection_time "
            f"{injection_time.isoformat()}: assay the syringe before injecting"
        )
    if residual_measured_at is not None and residual_measured_at < injection_time:
        raise InputError(
            f"residual_measured_at {residual_measured_at.isoformat()} is before injection_time "
            f"{injection_time.isoformat()}: assay the residual after injecting"
        )
    if dispensed_at is not None and injection_time < dispensed_at - timedelta(minutes=CLOCK_SKEW_MIN):
        raise InputError(
            f"injection_time {injection_time.isoformat()} is before the dose was dispensed "
            f"({dispensed_at.isoformat()}): check the time"
        )


#: Patient identifiers a bedside check may use (two of them must be confirmed).
IDENTIFIERS: tuple[str, ...] = ("mrn", "birth_date", "family_name")
#: How many identifiers must be confirmed (two-identifier rule, The Joint Commission NPSG.01.01.01).
REQUIRED_IDENTIFIERS = 2


class IdentityMismatch(InputError):
    """A confirmed identifier does not match the patient of the directive."""


def _identifier_key(value: str) -> str:
    return " ".join(value.split()).casefold()


def confirm_identity(expected: dict[str, str | None], confirmed: dict[str, str | None]) -> tuple[str, ...]:
    """Check the identifiers confirmed at the bedside against the patient's identity.

    Parameters
    ----------
    expected : dict
        The patient's identifiers (``mrn``, ``birth_date`` as ``YYYY-MM-DD``, ``family_name``).
    confirmed : dict
        What was typed or scanned; blank entries are not confirmed.

    Returns
    -------
    tuple of str
        The identifiers that matched (at least :data:`REQUIRED_IDENTIFIERS`).

    Raises
    ------
    IdentityMismatch
        When an entered identifier differs (naming it, never the expected value), or too few are given.
    """
    given = {k: v for k, v in confirmed.items() if k in IDENTIFIERS and v is not None and v.strip()}
    for name, value in given.items():
        known = expected.get(name)
        if known is None or _identifier_key(known) != _identifier_key(value):
            raise IdentityMismatch(
                f"confirm_{name} {value!r} does not match the patient of this dose: STOP, check the "
                "patient's wristband and the label"
            )
    if len(given) < REQUIRED_IDENTIFIERS:
        raise IdentityMismatch(
            f"confirm_mrn and the others: confirm {REQUIRED_IDENTIFIERS} identifiers (record number, "
            f"birth date or family name) from the patient's wristband; {len(given)} given"
        )
    return tuple(sorted(given))
