"""``theradose safety``: CTCAE grading of laboratory values, pre-cycle checks, PSA response."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from theradose.cli._output import print_json, print_table

app = typer.Typer(
    help="Side-effect monitoring: CTCAE grading, pre-cycle checks, PSA response.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
SexOption = Annotated[str | None, typer.Option(help="male | female (reference limits, eGFR, clearance).")]
AgeOption = Annotated[float | None, typer.Option("--age", help="Age in years (eGFR, clearance).")]


def _sex(value: str | None) -> Any:
    from theradose.errors import InputError

    if value is None:
        return None
    if value.lower() not in ("male", "female"):
        raise InputError(f"--sex must be male or female; got {value!r}")
    return value.lower()


@app.command()
def grade(
    labs: Annotated[Path, typer.Argument(help="CSV: date,test,value,unit[,baseline,lln,uln,cycle].")],
    sex: SexOption = None,
    age: AgeOption = None,
    json: JsonFlag = False,
) -> None:
    """CTCAE v5.0 grade of every laboratory value, with the rule that decided it."""
    from theradose.safety.ctcae import grade_lab, worst_grades_by_cycle
    from theradose.safety.records import read_labs_csv
    from theradose.safety.renal import egfr_ckd_epi_2021

    values, cycles = read_labs_csv(labs)
    sex_value = _sex(sex)
    rows = []
    graded = []
    for number, (lab, cycle) in enumerate(zip(values, cycles, strict=True), start=1):
        g = grade_lab(lab, sex=sex_value)
        row: dict[str, Any] = {
            "row": number,
            "date": lab.on.isoformat(),
            "test": lab.test,
            "value": lab.value,
            "unit": g.unit,
            "grade": g.grade,
            "rule": g.rule,
            "cycle": cycle,
        }
        if lab.test == "creatinine" and age is not None and sex_value is not None:
            row["egfr_ckd_epi_2021"] = egfr_ckd_epi_2021(lab.value, age_y=age, sex=sex_value)
        rows.append(row)
        if cycle is not None:
            graded.append((cycle, g))
    data = {"rows": rows, "worst_by_cycle": {str(k): v for k, v in worst_grades_by_cycle(graded).items()}}
    if json:
        print_json(data)
        return
    print_table(
        "CTCAE v5.0 grades",
        ["row", "date", "test", "value", "unit", "grade", "rule"],
        [(r["row"], r["date"], r["test"], r["value"], r["unit"], r["grade"], r["rule"]) for r in rows],
    )


@app.command("check-cycle")
def check_cycle_command(
    labs: Annotated[Path, typer.Argument(help="CSV: date,test,value,unit[,baseline,lln,uln].")],
    protocol: Annotated[
        str | None, typer.Option(help="Protocol whose pre-cycle rules apply (theradose plan protocols).")
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Your own pre-cycle rule TOML file.")] = None,
    sex: SexOption = None,
    age: AgeOption = None,
    weight_kg: Annotated[float | None, typer.Option(help="Body weight (kg) for Cockcroft-Gault.")] = None,
    previously_reduced: Annotated[
        list[str] | None, typer.Option(help="Rule id for which the dose was already reduced (repeatable).")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Go, delay, reduce (or stop) the next cycle from the latest laboratory values."""
    from theradose.errors import InputError
    from theradose.planning.protocols import available_protocols, load_protocol
    from theradose.safety.precycle import check_cycle
    from theradose.safety.records import read_labs_csv

    if (protocol is None) == (rules is None):
        raise InputError(
            f"give --protocol (one of {', '.join(available_protocols())}) or --rules (your rule file), not "
            "both and not neither"
        )
    rules_path = rules
    if protocol is not None:
        rules_path = load_protocol(protocol).precycle_rules
        if rules_path is None:
            raise InputError(f"--protocol {protocol!r} has no pre-cycle rules: give --rules")
    assert rules_path is not None
    values, _ = read_labs_csv(labs)
    result = check_cycle(
        values,
        rules_path=rules_path,
        sex=_sex(sex),
        age_y=age,
        weight_kg=weight_kg,
        previously_reduced_for=previously_reduced or (),
    )
    data = {
        "decision": result.decision,
        "reasons": list(result.reasons),
        "activity_factor": result.activity_factor,
        "recommended_activity_mbq": result.recommended_activity_mbq,
        "rules_fired": list(result.rules_fired),
        "alerts": list(result.alerts),
        "grades": [
            {"test": g.test, "value": g.value, "unit": g.unit, "grade": g.grade, "rule": g.rule}
            for g in result.grades
        ],
        "source": result.source,
    }
    if json:
        print_json(data)
        return
    print(f"decision: {result.decision.upper()}  (activity factor {result.activity_factor:g})")
    for reason in result.reasons:
        print(f"  - {reason}")
    for alert in result.alerts:
        print(f"  ! {alert}")


@app.command()
def psa(
    labs: Annotated[Path, typer.Argument(help="CSV with PSA rows: date,test,value,unit[,cycle].")],
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of PSA change per cycle.")] = None,
    json: JsonFlag = False,
) -> None:
    """PSA response by PCWG3 (≥ 50 % decline, confirmed ≥ 3 weeks later)."""
    from theradose.errors import InputError
    from theradose.safety.markers import psa_response
    from theradose.safety.plots import plot_psa
    from theradose.safety.records import read_labs_csv

    values, cycles = read_labs_csv(labs)
    rows = [(lab, c) for lab, c in zip(values, cycles, strict=True) if lab.test == "psa"]
    if not rows:
        raise InputError(f"{labs.name} has no PSA rows (test = psa)")
    result = psa_response([lab.on for lab, _ in rows], [lab.value for lab, _ in rows])
    if plot is not None:
        plot_psa([lab.on for lab, _ in rows], [lab.value for lab, _ in rows], [c for _, c in rows], plot)
    data = {
        "category": result.category,
        "baseline_ng_ml": result.baseline_ng_ml,
        "nadir_ng_ml": result.nadir_ng_ml,
        "best_change_percent": result.best_change_percent,
        "rule": result.rule,
        "changes_percent": list(result.changes_percent),
        "plot": str(plot) if plot else None,
    }
    if json:
        print_json(data)
    else:
        print(f"PSA: {result.category} — {result.rule}")
