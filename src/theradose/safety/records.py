"""Laboratory records from tables: parse, convert to canonical units, add computed eGFR."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from theradose.errors import InputError
from theradose.safety.labs import SYMPTOMS, LabValue, Sex, canonical_test_name, lab_catalogue, to_canonical
from theradose.safety.renal import egfr_ckd_epi_2021


def lab_values_from_rows(rows: Sequence[dict[str, Any]]) -> list[LabValue]:
    """Typed rows (date, test, value, unit[, baseline, lln, uln]) → canonical :class:`LabValue` list.

    ``baseline``, ``lln`` and ``uln`` are given in the row's unit and converted with it.
    """
    out = []
    for number, row in enumerate(rows, start=1):
        try:
            test = canonical_test_name(row["test"])
            unit = row.get("unit") or ""
            value = to_canonical(test, row["value"], unit)
            extra = {}
            for key in ("baseline", "lln", "uln"):
                extra[key] = None if row.get(key) is None else to_canonical(test, row[key], unit)
        except InputError as exc:
            raise InputError(f"row {number}: {exc}") from None
        canonical_unit = "grade" if test in SYMPTOMS else lab_catalogue()[test].unit
        out.append(LabValue(test, value, canonical_unit, row["date"], **extra))
    return out


def with_computed_egfr(labs: Sequence[LabValue], *, age_y: float | None, sex: Sex | None) -> list[LabValue]:
    """Add an eGFR (CKD-EPI 2021) for each creatinine value that has no measured eGFR on the same date."""
    out = list(labs)
    if age_y is None or sex is None:
        return out
    measured = {lab.on for lab in labs if lab.test == "egfr"}
    for lab in labs:
        if lab.test == "creatinine" and lab.on not in measured:
            egfr = egfr_ckd_epi_2021(lab.value, age_y=age_y, sex=sex)
            out.append(
                replace(lab, test="egfr", value=egfr, unit="mL/min/1.73m2", baseline=None, lln=None, uln=None)
            )
    return sorted(out, key=lambda v: (v.on, v.test))


def read_labs_csv(path: str | Path) -> tuple[list[LabValue], list[int | None]]:
    """Read ``date,test,value,unit[,baseline,lln,uln,cycle]``; returns values and their cycle numbers."""
    from theradose.tables import parse_float, read_rows

    def parse_date(text: str) -> date:
        return date.fromisoformat(text.strip()[:10])

    rows = read_rows(
        path,
        required={"date": parse_date, "test": str, "value": parse_float},
        optional={"unit": str, "baseline": parse_float, "lln": parse_float, "uln": parse_float, "cycle": int},
    )
    labs = lab_values_from_rows(rows)
    return labs, [row["cycle"] for row in rows]
