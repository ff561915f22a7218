"""Laboratory tests and symptoms: catalogue, units, plausibility (``data/safety/labs.toml``)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Literal

from theradose.errors import InputError

Sex = Literal["male", "female"]

#: Graded symptoms (CTCAE v5.0 grades given by the clinician, 0-5).
SYMPTOMS: tuple[str, ...] = ("xerostomia", "fatigue", "nausea")

#: Spellings users write, mapped to catalogue names.
ALIASES: dict[str, str] = {
    "hb": "hemoglobin",
    "hgb": "hemoglobin",
    "haemoglobin": "hemoglobin",
    "plt": "platelets",
    "platelet": "platelets",
    "wbc": "leukocytes",
    "leucocytes": "leukocytes",
    "anc": "neutrophils",
    "neutrophil": "neutrophils",
    "lymphocyte": "lymphocytes",
    "creat": "creatinine",
    "scr": "creatinine",
    "gfr": "egfr",
    "alat": "alt",
    "asat": "ast",
    "bili": "bilirubin",
    "total_bilirubin": "bilirubin",
    "alkaline_phosphatase": "alp",
    "cga": "chromogranin_a",
    "dry_mouth": "xerostomia",
}


@dataclass(frozen=True)
class LabTest:
    """One test of the catalogue: canonical unit, unit factors, plausible range, reference limits."""

    name: str
    unit: str
    unit_factors: dict[str, float]
    plausible: tuple[float, float]
    lln: dict[str, float]
    uln: dict[str, float]


@dataclass(frozen=True)
class LabValue:
    """A laboratory value in its canonical unit, or a symptom grade (unit ``"grade"``)."""

    test: str
    value: float
    unit: str
    on: date
    baseline: float | None = None
    lln: float | None = None
    uln: float | None = None


@cache
def lab_catalogue() -> dict[str, LabTest]:
    """The laboratory tests theradose knows."""
    raw: dict[str, Any] = tomllib.loads(
        (resources.files("theradose.data") / "safety" / "labs.toml").read_text()
    )
    return {
        name: LabTest(
            name=name,
            unit=entry["unit"],
            unit_factors={str(k): float(v) for k, v in entry["units"].items()},
            plausible=(float(entry["plausible"][0]), float(entry["plausible"][1])),
            lln={k: float(v) for k, v in entry.get("lln", {}).items()},
            uln={k: float(v) for k, v in entry.get("uln", {}).items()},
        )
        for name, entry in raw.items()
    }


def canonical_test_name(name: str) -> str:
    """Catalogue name of a test or symptom (case-insensitive, common abbreviations accepted)."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = ALIASES.get(key, key)
    if key in lab_catalogue() or key in SYMPTOMS:
        return key
    known = ", ".join(sorted([*lab_catalogue(), *SYMPTOMS]))
    raise InputError(f"test {name!r} is not known; use one of: {known}")


def to_canonical(test: str, value: float, unit: str) -> float:
    """Convert ``value`` in ``unit`` to the canonical unit of ``test`` and check plausibility.

    Raises
    ------
    InputError
        Unknown unit, missing unit, non-finite, negative or implausible value.
    """
    name = canonical_test_name(test)
    if not math.isfinite(value):
        raise InputError(f"{name} value must be a number; got {value!r}")
    if name in SYMPTOMS:
        if unit not in ("", "grade") or value not in (0, 1, 2, 3, 4, 5):
            raise InputError(f"{name} is a CTCAE grade 0-5 with unit 'grade'; got {value!r} {unit!r}")
        return float(value)
    entry = lab_catalogue()[name]
    if not unit:
        raise InputError(f"{name}: unit is missing; give one of {', '.join(entry.unit_factors)}")
    factors = {k.lower(): v for k, v in entry.unit_factors.items()}
    factor = factors.get(unit.strip().lower())
    if factor is None:
        raise InputError(f"{name}: unit {unit!r} is not known; use one of {', '.join(entry.unit_factors)}")
    if value < 0:
        raise InputError(f"{name} must not be negative; got {value} {unit}")
    canonical = value * factor
    low, high = entry.plausible
    if not low <= canonical <= high:
        raise InputError(
            f"{name} = {value} {unit} is implausible (outside {low:g}-{high:g} {entry.unit}): "
            "check value and unit"
        )
    return canonical


def reference_limit(test: str, which: Literal["lln", "uln"], sex: Sex | None) -> float | None:
    """Default LLN/ULN of ``test`` for ``sex`` (the lower of the two when sex is unknown for LLN,
    the higher for ULN, so that grading is never stricter than either)."""
    entry = lab_catalogue()[test]
    table = entry.lln if which == "lln" else entry.uln
    if not table:
        return None
    if sex is not None:
        return table[sex]
    return min(table.values()) if which == "lln" else max(table.values())
