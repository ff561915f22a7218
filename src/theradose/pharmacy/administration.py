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
