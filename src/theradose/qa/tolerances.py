"""Tolerance sets for dose-calibrator QA, kept as data (``data/qa/tolerances.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from theradose.errors import InputError

DoseCalibratorTest = Literal["constancy", "linearity", "accuracy", "geometry"]
TESTS: tuple[DoseCalibratorTest, ...] = ("constancy", "linearity", "accuracy", "geometry")

#: Deviations are rounded to this many decimals before comparison with a tolerance, so that a reading
#: exactly at the edge (e.g. 110 MBq against 100 MBq and ±10 %) passes despite binary floating point.
EDGE_DECIMALS = 9


@dataclass(frozen=True)
class ToleranceSet:
    """Maximum |deviation| in percent per dose-calibrator test."""

    name: str
    constancy_percent: float
    linearity_percent: float
    accuracy_percent: float
    geometry_percent: float
    source: str = ""

    def tolerance_percent(self, test: DoseCalibratorTest) -> float:
        """Tolerance of ``test`` in percent."""
        value: float = getattr(self, f"{test}_percent")
        return value

    def passes(self, test: DoseCalibratorTest, deviation_percent: float) -> bool:
        """True when |deviation| is within the tolerance of ``test`` (the edge passes)."""
        return round(abs(deviation_percent), EDGE_DECIMALS) <= self.tolerance_percent(test)


def _read_toml(path: Path | None) -> dict[str, dict[str, object]]:
    if path is None:
        text = (resources.files("theradose.data") / "qa" / "tolerances.toml").read_text()
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise InputError(
                f"tolerance file {path} cannot be read ({exc.strerror}): check the path"
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"tolerance file {path}: {exc}: fix the TOML syntax") from None


def load_tolerance_set(name: str = "regulatory", *, path: Path | None = None) -> ToleranceSet:
    """Load a tolerance set by name from the shipped table or a user TOML file.

    Raises
    ------
    InputError
        If the set or one of its keys is missing or not a positive number.
    """
    table = _read_toml(path)
    if name not in table:
        raise InputError(f"tolerance set {name!r} not found; available: {', '.join(sorted(table))}")
    entry = table[name]
    values: dict[str, float] = {}
    for test in TESTS:
        key = f"{test}_percent"
        raw = entry.get(key)
        if not isinstance(raw, (int, float)) or isinstance(raw, bool) or raw <= 0:
            raise InputError(f"tolerance set {name!r}: {key} must be a positive number; got {raw!r}")
        values[key] = float(raw)
    return ToleranceSet(name=name, source=str(entry.get("source", "")), **values)
