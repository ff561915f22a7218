"""Numbers as a physicist reads them: fixed decimals with units, never e-notation.

Every number the report prints goes through these functions, so the PDF, the HTML and the tables agree.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

#: Significant digits shown for a measured value (its uncertainty is shown to the same decimals).
SIGNIFICANT = 3
#: Most decimals ever shown.
MAX_DECIMALS = 4
#: Shown for a missing value.
MISSING = "—"


def decimals_for(value: float, significant: int = SIGNIFICANT) -> int:
    """Decimals that show ``value`` to ``significant`` digits (0 to :data:`MAX_DECIMALS`)."""
    if value == 0 or not math.isfinite(value):
        return 0
    magnitude = math.floor(math.log10(abs(value)))
    return max(0, min(MAX_DECIMALS, significant - 1 - magnitude))


def fixed(value: float | None, decimals: int | None = None, unit: str = "") -> str:
    """``value`` with fixed decimals (default: :func:`decimals_for`) and an optional unit; never
    e-notation (a value below the last decimal shows as 0 with those decimals)."""
    if value is None or not math.isfinite(value):
        return MISSING
    places = decimals_for(value) if decimals is None else decimals
    text = f"{value:,.{places}f}".replace(",", " ")
    return f"{text} {unit}".rstrip() if unit else text


def plus_minus(value: float | None, sigma: float | None, unit: str = "") -> str:
    """``value ± sigma unit`` with the decimals of the value (:func:`decimals_for`)."""
    if value is None or not math.isfinite(value):
        return MISSING
    places = decimals_for(value)
    if sigma is None or not math.isfinite(sigma):
        return fixed(value, places, unit)
    return f"{fixed(value, places)} ± {fixed(sigma, places)}" + (f" {unit}" if unit else "")


def percent(fraction: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage with fixed decimals (``0.123`` → ``12.3 %``)."""
    if fraction is None or not math.isfinite(fraction):
        return MISSING
    return f"{100.0 * fraction:.{decimals}f} %"


def mass_g(value: float | None) -> str:
    """A mass in g: whole grams from 100 g, one decimal from 10 g, two below."""
    if value is None or not math.isfinite(value):
        return MISSING
    places = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return fixed(value, places)


def p_value(value: float | None) -> str:
    """A p-value with fixed decimals; below 0.001 as "< 0.001"."""
    if value is None or not math.isfinite(value):
        return MISSING
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def local_time(moment: datetime, zone: tzinfo) -> str:
    """``YYYY-MM-DD HH:MM`` in ``zone`` with the zone's abbreviation or UTC offset."""
    here = moment.astimezone(zone)
    name = here.tzname() or here.strftime("%z")
    if name and name[0] in "+-" and len(name) == 5:  # "+0100" → "UTC+01:00"
        name = f"UTC{name[:3]}:{name[3:]}"
    return f"{here.strftime('%Y-%m-%d %H:%M')} {name}"


__all__ = [
    "MISSING",
    "decimals_for",
    "fixed",
    "local_time",
    "mass_g",
    "p_value",
    "percent",
    "plus_minus",
]
