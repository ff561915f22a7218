"""``theradose qa``: dose-calibrator QA, SPECT calibration, recovery, multi-site harmonisation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from theradose.cli._output import print_json, print_table

app = typer.Typer(help="Calibration and QA: dose calibrator, SPECT calibration, recovery, harmonisation.")

TestName = Literal["constancy", "linearity", "accuracy", "geometry"]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "test": result.test,
        "tolerance_set": result.tolerance_set,
        "tolerance_percent": result.tolerance_percent,
        "passed": result.passed,
        "rows": [
            {
                "row": r.index + 1,
                "label": r.label,
                "measured_mbq": r.measured_mbq,
                "expected_mbq": r.expected_mbq,
                "deviation_percent": r.deviation_percent,
                "pass": r.passed,
            }
            for r in result.readings
        ],
        "trend": [{"rule": w.rule, "row": w.index + 1, "message": w.message} for w in result.trend],
    }


@app.command("dose-calibrator")
def dose_calibrator(
    log: Annotated[Path, typer.Argument(help="CSV log of readings (columns depend on --test; see docs).")],
    test: Annotated[str, typer.Option("--test", help="constancy | linearity | accuracy | geometry")],
    tolerance: Annotated[
        str, typer.Option(help="Tolerance set: regulatory (±10 %) or professional (±5 %).")
    ] = ("regulatory"),
    tolerance_file: Annotated[Path | None, typer.Option(help="Your own tolerance TOML file.")] = None,
    json: JsonFlag = False,
) -> None:
    """Grade a dose-calibrator QA log: per row pass/fail and deviation; trend warnings for constancy.

    Columns: constancy and accuracy — datetime, nuclide, reference_activity_mbq, reference_datetime,
    measured_mbq; linearity — datetime, nuclide, measured_mbq (decay method) or measured_mbq,
    shield_factor (shield method); geometry — container, measured_mbq[, reference (1 marks the reference)].
    Datetimes are ISO 8601 with a UTC offset.
    """
    from theradose.errors import InputError
    from theradose.io.tables import column, parse_aware_datetime, parse_float, read_rows
    from theradose.qa import dose_calibrator as dc
    from theradose.qa.tolerances import load_tolerance_set

    if test not in ("constancy", "linearity", "accuracy", "geometry"):
        raise InputError(f"--test must be constancy, linearity, accuracy or geometry; got {test!r}")
    tol = load_tolerance_set(tolerance, path=tolerance_file)
    result: dc.QaResult
    if test in ("constancy", "accuracy"):
        rows = read_rows(
            log,
            required={
                "datetime": parse_aware_datetime,
                "nuclide": str,
                "reference_activity_mbq": parse_float,
                "reference_datetime": parse_aware_datetime,
                "measured_mbq": parse_float,
            },
        )
        first = rows[0]
        for i, row in enumerate(rows, start=1):
            same = (row["nuclide"], row["reference_activity_mbq"], row["reference_datetime"])
            if same != (first["nuclide"], first["reference_activity_mbq"], first["reference_datetime"]):
                raise InputError(f"{log.name} row {i}: a log must use one reference source; split the file")
        kwargs = {"nuclide": first["nuclide"], "tolerance": tol}
        if test == "constancy":
            result = dc.constancy(
                column(rows, "measured_mbq"),
                column(rows, "datetime"),
                reference_activity_mbq=first["reference_activity_mbq"],
                reference_time=first["reference_datetime"],
                **kwargs,
            )
        else:
            result = dc.accuracy(
                column(rows, "measured_mbq"),
                column(rows, "datetime"),
                certified_activity_mbq=first["reference_activity_mbq"],
                certificate_time=first["reference_datetime"],
                **kwargs,
            )
    elif test == "linearity":
        rows = read_rows(
            log,
            required={"measured_mbq": parse_float},
            optional={"datetime": parse_aware_datetime, "nuclide": str, "shield_factor": parse_float},
        )
        if all(r["shield_factor"] is not None for r in rows):
            result = dc.linearity_shield(
                column(rows, "measured_mbq"), column(rows, "shield_factor"), tolerance=tol
            )
        elif all(r["datetime"] is not None and r["nuclide"] for r in rows):
            result = dc.linearity_decay(
                column(rows, "measured_mbq"),
                column(rows, "datetime"),
                nuclide=rows[0]["nuclide"],
                tolerance=tol,
            )
        else:
            raise InputError(
                f"{log.name}: linearity needs datetime and nuclide on every row (decay method) "
                "or shield_factor on every row (shield method)"
            )
    else:
        rows = read_rows(
            log, required={"container": str, "measured_mbq": parse_float}, optional={"reference": parse_float}
        )
        flagged = [i for i, r in enumerate(rows) if r["reference"] == 1]
        if len(flagged) > 1:
            raise InputError(f"{log.name}: mark exactly one reference row (reference = 1)")
        result = dc.geometry(
            column(rows, "measured_mbq"),
            column(rows, "container"),
            reference_index=flagged[0] if flagged else 0,
            tolerance=tol,
        )
    data = _result_json(result)
    if json:
        print_json(data)
        return
    print_table(
        f"{test} — {tol.name} (±{data['tolerance_percent']:g} %)",
        ["row", "label", "measured_mbq", "expected_mbq", "deviation_%", "pass"],
        [
            (r["row"], r["label"], r["measured_mbq"], r["expected_mbq"], r["deviation_percent"], r["pass"])
            for r in data["rows"]
        ],
    )
    for warning in data["trend"]:
        print(f"trend: row {warning['row']}: {warning['message']}")


@app.command("harmonise")
def harmonise(
    sites: Annotated[
        Path, typer.Argument(help="CSV: site, dose_calibrator_deviation_percent, ... (see docs).")
    ],
    tolerance_percent: Annotated[float, typer.Option(help="Maximum |quantification bias| (%).")] = 5.0,
    tumour_volume_ml: Annotated[
        float, typer.Option(help="Volume at which recovery is compared (mL).")
    ] = 10.0,
    json: JsonFlag = False,
) -> None:
    """Compare sites with the traceable reference: deviation, outlier flag and the dose change that
    harmonised calibration would bring."""
    from theradose.io.tables import parse_float, read_rows
    from theradose.qa.harmonisation import SiteSubmission, compare_sites

    optional = {
        name: parse_float
        for name in (
            "calibration_factor_cps_per_mbq",
            "measured_concentration_bq_per_ml",
            "true_concentration_bq_per_ml",
            "rc_inf",
            "rc_v50_ml",
            "rc_slope",
        )
    }
    rows = read_rows(
        sites, required={"site": str, "dose_calibrator_deviation_percent": parse_float}, optional=optional
    )
    results = compare_sites(
        [SiteSubmission(**row) for row in rows],
        tolerance_percent=tolerance_percent,
        tumour_volume_ml=tumour_volume_ml,
    )
    data = {
        "tolerance_percent": tolerance_percent,
        "sites": [
            {
                "site": r.site,
                "deviation_percent": r.quantification_bias_percent,
                "bias_source": r.bias_source,
                "robust_z": r.robust_z,
                "flag": r.flagged,
                "reasons": list(r.reasons),
                "organ_dose_change_percent": r.organ_dose_change_percent,
                "tumour_dose_change_percent": r.tumour_dose_change_percent,
            }
            for r in results
        ],
    }
    if json:
        print_json(data)
        return
    print_table(
        "multi-site harmonisation",
        ["site", "deviation_%", "source", "robust_z", "flag", "organ_dose_change_%", "tumour_dose_change_%"],
        [
            (
                s["site"],
                s["deviation_percent"],
                s["bias_source"],
                s["robust_z"],
                "; ".join(s["reasons"]) or "ok",
                s["organ_dose_change_percent"],
                s["tumour_dose_change_percent"],
            )
            for s in data["sites"]
        ],
    )
