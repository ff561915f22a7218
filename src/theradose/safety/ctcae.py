"""CTCAE v5.0 grading of laboratory values (``data/safety/ctcae_v5.toml``).

Each grade comes with the rule that decided it, e.g. ``"platelets 60 10^9/L < 75 → grade 2
(Platelet count decreased, CTCAE v5.0)"``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from theradose.safety.labs import SYMPTOMS, LabValue, Sex, lab_catalogue, reference_limit

#: Values are compared after rounding to this many decimals so that a value typed exactly on a CTCAE
#: boundary is graded as the table says despite unit-conversion round-off.
EDGE_DECIMALS = 9


@dataclass(frozen=True)
class Grade:
    """A CTCAE grade with the rule that decided it."""

    test: str
    value: float
    unit: str
    grade: int
    rule: str
    term: str = ""


@cache
def ctcae_table() -> dict[str, Any]:
    """The CTCAE v5.0 grading table."""
    return tomllib.loads((resources.files("theradose.data") / "safety" / "ctcae_v5.toml").read_text())


def _grade_below(value: float, thresholds: Sequence[tuple[float, int]]) -> tuple[int, float | None]:
    grade, limit = 0, None
    for threshold, g in thresholds:
        if round(value, EDGE_DECIMALS) < round(threshold, EDGE_DECIMALS) and g > grade:
            grade, limit = g, threshold
    return grade, limit


def _grade_above(
    value: float, reference: float, multiples: Iterable[Sequence[float]]
) -> tuple[int, float | None]:
    grade, limit = 0, None
    for multiple, g in multiples:
        if round(value, EDGE_DECIMALS) > round(multiple * reference, EDGE_DECIMALS) and g > grade:
            grade, limit = int(g), multiple
    return grade, limit


def grade_lab(lab: LabValue, *, sex: Sex | None = None) -> Grade:
    """CTCAE v5.0 grade of one laboratory value (canonical unit) or symptom.

    Limits: the row's own ``lln``/``uln`` when given, else the defaults for ``sex``. Tests without a
    CTCAE term (PSA, chromogranin A, albumin) get grade 0 with the rule "not graded".
    """
    table = ctcae_table()
    if lab.test in SYMPTOMS:
        return Grade(
            lab.test,
            lab.value,
            "grade",
            int(lab.value),
            f"{lab.test} graded clinically: grade {int(lab.value)}",
        )
    if lab.test not in table:
        return Grade(
            lab.test, lab.value, lab.unit, 0, f"{lab.test} has no CTCAE v5.0 laboratory term: not graded"
        )
    entry = table[lab.test]
    unit = lab_catalogue()[lab.test].unit
    term = str(entry["term"])
    shown = f"{lab.test} {lab.value:g} {unit}"
    if entry["kind"] == "below":
        lln = lab.lln if lab.lln is not None else reference_limit(lab.test, "lln", sex)
        assert lln is not None, f"no LLN for {lab.test}"
        thresholds = [((lln if t == "LLN" else float(t)), int(g)) for t, g in entry["thresholds"]]
        grade, below_limit = _grade_below(lab.value, thresholds)
        if grade == 0 or below_limit is None:
            return Grade(lab.test, lab.value, unit, 0, f"{shown} ≥ LLN {lln:g}: grade 0", term)
        return Grade(
            lab.test,
            lab.value,
            unit,
            grade,
            f"{shown} < {below_limit:g} → grade {grade} ({term}, CTCAE v5.0)",
            term,
        )
    uln = lab.uln if lab.uln is not None else reference_limit(lab.test, "uln", sex)
    assert uln is not None
    baseline_abnormal = (
        lab.baseline is not None and lab.baseline > uln and "baseline_abnormal_multiples" in entry
    )
    if baseline_abnormal:
        assert lab.baseline is not None
        grade, limit = _grade_above(lab.value, lab.baseline, entry["baseline_abnormal_multiples"])
        basis = f"baseline {lab.baseline:g} (abnormal)"
        reference = lab.baseline
    else:
        grade, limit = _grade_above(lab.value, uln, entry["multiples"])
        basis, reference = f"ULN {uln:g}", uln
    if lab.baseline is not None and "baseline_multiples" in entry:
        g_base, m_base = _grade_above(lab.value, lab.baseline, entry["baseline_multiples"])
        if g_base > grade:
            grade, limit, basis, reference = g_base, m_base, f"baseline {lab.baseline:g}", lab.baseline
    if grade == 0 or limit is None:
        return Grade(lab.test, lab.value, unit, 0, f"{shown} ≤ {basis}: grade 0", term)
    return Grade(
        lab.test,
        lab.value,
        unit,
        grade,
        f"{shown} > {limit:g} × {basis} = {limit * reference:g} → grade {grade} ({term}, CTCAE v5.0)",
        term,
    )


def worst_grades_by_cycle(grades: Sequence[tuple[int, Grade]]) -> dict[int, dict[str, int]]:
    """Worst grade per test for each cycle from ``(cycle, grade)`` pairs."""
    out: dict[int, dict[str, int]] = {}
    for cycle, g in grades:
        per_test = out.setdefault(cycle, {})
        per_test[g.test] = max(per_test.get(g.test, 0), g.grade)
    return out
