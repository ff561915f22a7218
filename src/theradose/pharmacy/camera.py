"""SPECT/CT camera calibrations: sensitivity factor, recovery curve and calibration history.

Quantitative 177Lu SPECT needs a system calibration factor (cps/MBq) and recovery coefficients for
partial-volume correction (MIRD Pamphlet No. 26, Ljungberg et al., J Nucl Med 57:151, 2016). Calibrations
are kept as a history; the one in force at a time is the latest performed at or before it.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from theradose.errors import InputError
from theradose.pharmacy._checks import require_aware, require_fraction, require_positive, require_text

#: Default relative change of the sensitivity between consecutive calibrations that is flagged.
DEFAULT_SENSITIVITY_CHANGE_FRACTION = 0.05


@dataclass(frozen=True)
class CameraCalibration:
    """One SPECT/CT calibration.

    Attributes
    ----------
    camera : str
        Camera identifier.
    nuclide : str
        Calibrated nuclide.
    sensitivity_cps_per_mbq : float
        System volume sensitivity in counts per second per MBq.
    performed_at : datetime
        When the calibration was done.
    recovery_volume_ml : tuple of float
        Sphere volumes of the recovery curve in mL, strictly increasing (may be empty).
    recovery_coefficient : tuple of float
        Recovery coefficients at those volumes (0 < RC <= 1.5).
    """

    camera: str
    nuclide: str
    sensitivity_cps_per_mbq: float
    performed_at: datetime
    recovery_volume_ml: tuple[float, ...] = ()
    recovery_coefficient: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        require_text(self.camera, "camera")
        require_text(self.nuclide, "nuclide")
        require_positive(self.sensitivity_cps_per_mbq, "sensitivity_cps_per_mbq")
        require_aware(self.performed_at, "performed_at")
        if len(self.recovery_volume_ml) != len(self.recovery_coefficient):
            raise InputError(
                f"recovery_volume_ml has {len(self.recovery_volume_ml)} values but recovery_coefficient has "
                f"{len(self.recovery_coefficient)}: give one coefficient per volume"
            )
        for a, b in itertools.pairwise(self.recovery_volume_ml):
            if not b > a:
                raise InputError(f"recovery_volume_ml must be strictly increasing; got {a:g} then {b:g}")
        for v in self.recovery_volume_ml:
            require_positive(v, "recovery_volume_ml")
        for rc in self.recovery_coefficient:
            if not (math.isfinite(rc) and 0.0 < rc <= 1.5):
                raise InputError(f"recovery_coefficient must be in (0, 1.5]; got {rc!r}")

    def recovery_at(self, volume_ml: float) -> float:
        """Recovery coefficient at ``volume_ml``, linear in log(volume), clamped at the curve ends."""
        require_positive(volume_ml, "volume_ml")
        if not self.recovery_volume_ml:
            raise InputError(f"calibration of {self.camera} has no recovery curve: add sphere measurements")
        vols = self.recovery_volume_ml
        rcs = self.recovery_coefficient
        if volume_ml <= vols[0]:
            return rcs[0]
        if volume_ml >= vols[-1]:
            return rcs[-1]
        i = bisect.bisect_right(vols, volume_ml)
        x0, x1 = math.log(vols[i - 1]), math.log(vols[i])
        w = (math.log(volume_ml) - x0) / (x1 - x0)
        return rcs[i - 1] + w * (rcs[i] - rcs[i - 1])


def calibration_in_force(history: Iterable[CameraCalibration], at_time: datetime) -> CameraCalibration:
    """The latest calibration performed at or before ``at_time``."""
    require_aware(at_time, "at_time")
    candidates = [c for c in history if c.performed_at <= at_time]
    if not candidates:
        raise InputError(f"no camera calibration on or before {at_time.isoformat()}: calibrate the camera")
    return max(candidates, key=lambda c: c.performed_at)


@dataclass(frozen=True)
class SensitivityTrend:
    """Relative change of each calibration's sensitivity against the previous one, and flags."""

    performed_at: tuple[datetime, ...]
    change_fraction: tuple[float | None, ...]
    flagged: tuple[bool, ...]


def sensitivity_trend(
    history: Sequence[CameraCalibration],
    *,
    tolerance_fraction: float = DEFAULT_SENSITIVITY_CHANGE_FRACTION,
) -> SensitivityTrend:
    """Change of sensitivity between consecutive calibrations (sorted by time); flag changes > tolerance."""
    require_fraction(tolerance_fraction, "tolerance_fraction")
    ordered = sorted(history, key=lambda c: c.performed_at)
    changes: list[float | None] = [None]
    for prev, cur in itertools.pairwise(ordered):
        changes.append(cur.sensitivity_cps_per_mbq / prev.sensitivity_cps_per_mbq - 1.0)
    flagged = tuple(c is not None and abs(c) > tolerance_fraction for c in changes)
    return SensitivityTrend(
        performed_at=tuple(c.performed_at for c in ordered), change_fraction=tuple(changes), flagged=flagged
    )
