"""Whether a dose calibrator may be used: a failed constancy check blocks it until a passing one.

AAPM TG-181 (Carey et al. 2012, section 6): the constancy check is done each day of use before
assaying patient doses, and a reading outside the action level means the calibrator is repaired or
replaced before it is used again. Checks voided with a reason (e.g. a reading typed in the wrong unit)
do not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CheckRecord:
    """One recorded QA check of a calibrator."""

    test: str
    passed: bool
    performed_at: datetime
    voided: bool = False


def blocking_check(checks: Iterable[CheckRecord]) -> CheckRecord | None:
    """The failed constancy check that blocks the calibrator (the latest constancy check, if it failed)."""
    constancy = [c for c in checks if c.test == "constancy" and not c.voided]
    if not constancy:
        return None
    latest = max(constancy, key=lambda c: c.performed_at)
    return None if latest.passed else latest
