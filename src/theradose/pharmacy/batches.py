"""Radiopharmaceutical batches: reference activity and volume, expiry, QC results and release.

A batch (one multidose vial or one production lot) is a homogeneous solution: its activity
concentration at the reference time is ``activity_mbq / volume_ml`` and it decays with the nuclide's
half-life. Release requires every required QC test to have a result within its limits and the batch not
to be expired at the decision time (Ph. Eur. general chapter 0125 *Radiopharmaceutical preparations*;
EANM guidelines on current good radiopharmacy practice, Gillings et al., EJNMMI Radiopharm Chem 2020).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from theradose.errors import InputError
from theradose.pharmacy._checks import require_activity, require_aware, require_positive, require_text
from theradose.pharmacy.decay import activity_at_mbq
from theradose.pharmacy.identifiers import check_identifier

#: QC tests that must pass before a 177Lu-labelled ligand batch is released by default: radiochemical
#: purity (>= 95 %, Pluvicto/Lutathera SmPC specifications) and pH (4.5-7.0). Sites configure their own.
DEFAULT_REQUIRED_QC: tuple[str, ...] = ("radiochemical_purity", "ph")


@dataclass(frozen=True)
class QcResult:
    """One QC test result with its acceptance limits.

    Attributes
    ----------
    test : str
        Test name, e.g. ``"radiochemical_purity"``.
    value : float
        Measured value in ``unit``.
    unit : str
        Unit of ``value`` and of the limits (``"%"``, ``"pH"``, ``"EU/mL"``).
    lower_limit, upper_limit : float or None
        Inclusive acceptance limits; ``None`` means unbounded on that side.
    """

    test: str
    value: float
    unit: str
    lower_limit: float | None = None
    upper_limit: float | None = None

    def __post_init__(self) -> None:
        require_text(self.test, "test")
        if not math.isfinite(float(self.value)):
            raise InputError(f"value of QC test {self.test!r} must be finite; got {self.value!r}")
        if self.lower_limit is None and self.upper_limit is None:
            raise InputError(f"QC test {self.test!r} needs lower_limit or upper_limit: give its limits")
        if (
            self.lower_limit is not None
            and self.upper_limit is not None
            and self.lower_limit > self.upper_limit
        ):
            raise InputError(
                f"QC test {self.test!r}: lower_limit {self.lower_limit} > upper_limit {self.upper_limit}:"
                " swap the limits"
            )

    @property
    def passed(self) -> bool:
        """True when ``value`` lies within the inclusive limits."""
        if self.lower_limit is not None and self.value < self.lower_limit:
            return False
        return not (self.upper_limit is not None and self.value > self.upper_limit)


@dataclass(frozen=True)
class Batch:
    """A radiopharmaceutical batch (lot) as produced or received.

    Attributes
    ----------
    product : str
        Radiopharmaceutical, e.g. ``"[177Lu]Lu-PSMA-617"``.
    nuclide : str
        Canonical nuclide name, e.g. ``"Lu-177"``.
    lot : str
        Lot number, unique per product.
    activity_mbq : float
        Total activity at ``reference_time`` in MBq.
    volume_ml : float
        Total volume in mL.
    reference_time : datetime
        Calibration (reference) time of ``activity_mbq``, timezone-aware.
    expiry_time : datetime
        Time after which the batch must not be administered, timezone-aware.
    """

    product: str
    nuclide: str
    lot: str
    activity_mbq: float
    volume_ml: float
    reference_time: datetime
    expiry_time: datetime

    def __post_init__(self) -> None:
        require_text(self.product, "product")
        require_text(self.nuclide, "nuclide")
        require_text(self.lot, "lot")
        check_identifier(self.lot, "lot")
        require_activity(self.activity_mbq, "activity_mbq")
        require_positive(self.volume_ml, "volume_ml")
        require_aware(self.reference_time, "reference_time")
        require_aware(self.expiry_time, "expiry_time")
        if self.expiry_time <= self.reference_time:
            raise InputError(
                f"expiry_time {self.expiry_time.isoformat()} must be after reference_time "
                f"{self.reference_time.isoformat()}: check the label"
            )

    @property
    def concentration_ref_mbq_per_ml(self) -> float:
        """Activity concentration at the reference time in MBq/mL."""
        return self.activity_mbq / self.volume_ml

    def activity_at_mbq(self, time: datetime) -> float:
        """Total activity (whole batch) at ``time`` in MBq."""
        return activity_at_mbq(self.activity_mbq, self.nuclide, from_time=self.reference_time, to_time=time)

    def concentration_at_mbq_per_ml(self, time: datetime) -> float:
        """Activity concentration at ``time`` in MBq/mL."""
        return activity_at_mbq(
            self.concentration_ref_mbq_per_ml, self.nuclide, from_time=self.reference_time, to_time=time
        )

    def is_expired(self, time: datetime) -> bool:
        """True when ``time`` is after the expiry time."""
        return require_aware(time, "time") > self.expiry_time


@dataclass(frozen=True)
class ReleaseDecision:
    """Outcome of the release check: ``released`` and, when refused, every reason."""

    released: bool
    reasons: tuple[str, ...]
    failed_tests: tuple[str, ...]
    missing_tests: tuple[str, ...]


def release_decision(
    batch: Batch,
    qc_results: Iterable[QcResult],
    *,
    decision_time: datetime,
    required_tests: Sequence[str] = DEFAULT_REQUIRED_QC,
) -> ReleaseDecision:
    """Decide whether ``batch`` may be released for patient use.

    The batch is released when every test in ``required_tests`` has at least one result, the latest
    result of every test present is within its limits, and the batch is not expired at
    ``decision_time``.

    Parameters
    ----------
    batch : Batch
        The batch.
    qc_results : iterable of QcResult
        Results in the order they were recorded; a later result of the same test supersedes an earlier
        one (a documented re-test).
    decision_time : datetime
        Time of the decision (timezone-aware).
    required_tests : sequence of str
        Tests that must be present.

    Returns
    -------
    ReleaseDecision
    """
    require_aware(decision_time, "decision_time")
    latest: dict[str, QcResult] = {}
    for result in qc_results:
        latest[result.test] = result
    failed = tuple(sorted(name for name, r in latest.items() if not r.passed))
    missing = tuple(sorted(set(required_tests) - set(latest)))
    reasons: list[str] = []
    for name in failed:
        r = latest[name]
        reasons.append(
            f"QC {name} = {r.value:g} {r.unit} outside [{_fmt_limit(r.lower_limit)}, "
            f"{_fmt_limit(r.upper_limit)}]"
        )
    reasons.extend(f"QC {name} missing" for name in missing)
    if batch.is_expired(decision_time):
        reasons.append(f"batch expired at {batch.expiry_time.isoformat()}")
    return ReleaseDecision(
        released=not reasons, reasons=tuple(reasons), failed_tests=failed, missing_tests=missing
    )


def _fmt_limit(limit: float | None) -> str:
    return "-inf/+inf" if limit is None else f"{limit:g}"
