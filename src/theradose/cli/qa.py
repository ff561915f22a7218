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
    from theradose.qa import dose_calibrator as dc
    from theradose.qa.tolerances import load_tolerance_set
    from theradose.tables import column, parse_aware_datetime, parse_float, read_rows

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
    from theradose.qa.harmonisation import SiteSubmission, compare_sites
    from theradose.tables import parse_float, read_rows

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


def _aware(text: str, option: str) -> Any:
    from theradose.errors import InputError
    from theradose.tables import parse_aware_datetime

    try:
        return parse_aware_datetime(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r} is not an ISO 8601 time with a UTC offset ({exc})") from None


def _check_elapsed(reference: Any, acquisition: Any, nuclide: str) -> None:
    """Refuse a reference time more than five half-lives from the acquisition (almost surely a typo)."""
    from theradose.errors import InputError
    from theradose.nuclides import elapsed_hours, get_nuclide

    elapsed_h = elapsed_hours(reference, acquisition)
    half_life_h = get_nuclide(nuclide).half_life_h
    if abs(elapsed_h) > 5 * half_life_h:
        raise InputError(
            f"--reference-time {reference.isoformat()} is {elapsed_h / 24:.0f} days from the acquisition "
            f"({acquisition.isoformat()}), more than five {nuclide} half-lives: check the date"
        )


@app.command("spect-calibration")
def spect_calibration(
    folder: Annotated[
        Path, typer.Argument(help="Folder with the uncalibrated (counts) SPECT reconstruction.")
    ],
    activity_mbq: Annotated[float, typer.Option("--activity-mbq", help="Activity in the phantom (MBq).")],
    reference_time: Annotated[
        str, typer.Option("--reference-time", help="When the activity was measured (ISO 8601 with offset).")
    ],
    nuclide: Annotated[str, typer.Option(help="Nuclide.")] = "Lu-177",
    series: Annotated[
        str | None, typer.Option(help="Series Instance UID if the folder holds several.")
    ] = None,
    phantom_volume_ml: Annotated[
        float | None, typer.Option(help="Fill volume (mL) for the volumetric factor (Bq/mL per cps/voxel).")
    ] = None,
    activity_sigma_percent: Annotated[
        float, typer.Option(help="Standard uncertainty of the activity measurement (%).")
    ] = 2.0,
    json: JsonFlag = False,
) -> None:
    """Calibration factor (cps/MBq) from a uniform phantom: counts in the phantom plus a 3 cm margin, per
    second, per MBq averaged over the acquisition."""
    from theradose.errors import InputError
    from theradose.io.dicom import read_counts
    from theradose.nuclides import decay_correct_mbq
    from theradose.qa.spect import calibration_factor_from_image

    if not activity_mbq > 0:
        raise InputError(f"--activity-mbq must be > 0; got {activity_mbq}")
    measured_at = _aware(reference_time, "--reference-time")
    counts, duration_s = read_counts(folder, series_uid=series)
    if counts.acquisition_datetime is None:
        raise InputError(
            f"the series in {folder} has no acquisition time: the activity cannot be decayed to it"
        )
    _check_elapsed(measured_at, counts.acquisition_datetime, nuclide)
    at_start = decay_correct_mbq(
        activity_mbq, nuclide, from_time=measured_at, to_time=counts.acquisition_datetime
    )
    cf = calibration_factor_from_image(
        counts,
        duration_s=duration_s,
        activity_at_start_mbq=at_start,
        nuclide=nuclide,
        activity_relative_sigma=activity_sigma_percent / 100.0,
        phantom_volume_ml=phantom_volume_ml,
    )
    data = {
        "calibration_factor_cps_per_mbq": cf.calibration_factor_cps_per_mbq,
        "sigma": cf.sigma_cps_per_mbq,
        "volume_ml": cf.voi_volume_ml,
        "counts": cf.counts,
        "duration_s": cf.duration_s,
        "activity_at_start_mbq": at_start,
        "mean_activity_mbq": cf.mean_activity_mbq,
        "acquisition_datetime": counts.acquisition_datetime.isoformat(),
        "bqml_per_cps_per_voxel": cf.bqml_per_cps_per_voxel,
    }
    if json:
        print_json(data)
    else:
        print_table("SPECT calibration", ["quantity", "value"], list(data.items()))


@app.command("recovery")
def recovery(
    folder: Annotated[Path, typer.Argument(help="Folder with the quantitative (Bq/mL) IEC phantom SPECT.")],
    sphere_concentration_bq_per_ml: Annotated[
        float | None,
        typer.Option(
            help="True sphere concentration (Bq/mL); default: truth/truth.json of a simulated phantom."
        ),
    ] = None,
    reference_time: Annotated[
        str | None, typer.Option(help="Time the sphere concentration refers to (decayed to the acquisition).")
    ] = None,
    nuclide: Annotated[str, typer.Option(help="Nuclide.")] = "Lu-177",
    series: Annotated[
        str | None, typer.Option(help="Series Instance UID if the folder holds several.")
    ] = None,
    out_curve: Annotated[
        Path | None, typer.Option(help="Write the fitted RC curve as JSON (for PVC).")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Recovery coefficients of the six IEC spheres (found automatically) and the fitted RC-volume curve."""
    import json as json_module

    from theradose.errors import InputError
    from theradose.io.dicom import discover_series, read_series
    from theradose.nuclides import decay_correct_mbq
    from theradose.qa.spect import fit_recovery_curve, iec_recovery

    if series is None:
        candidates = [s for s in discover_series(folder) if s.modality == "NM" and s.units == "Bq/mL"]
        if not candidates:
            raise InputError(f"no quantitative NM (SPECT) series in {folder}")
        series = candidates[0].series_uid
    image = read_series(folder, series_uid=series)
    concentration = sphere_concentration_bq_per_ml
    source = "--sphere-concentration-bq-per-ml"
    if concentration is None:
        truth = folder / "truth" / "truth.json"
        if not truth.is_file():
            raise InputError(
                f"give --sphere-concentration-bq-per-ml (no truth/truth.json in {folder}): "
                "the sphere filling concentration is needed"
            )
        concentration = float(json_module.loads(truth.read_text())["sphere_concentration_bq_per_ml"])
        source = "truth/truth.json"
    elif reference_time is not None:
        if image.acquisition_datetime is None:
            raise InputError("the series has no acquisition time: the concentration cannot be decayed to it")
        concentration = decay_correct_mbq(
            concentration,
            nuclide,
            from_time=_aware(reference_time, "--reference-time"),
            to_time=image.acquisition_datetime,
        )
    spheres = iec_recovery(image, sphere_concentration_bq_per_ml=concentration)
    curve = fit_recovery_curve([s.volume_ml for s in spheres], [s.recovery for s in spheres])
    curve_json = {
        "model": "rc_inf / (1 + (v50_ml / V)^slope)",
        "rc_inf": curve.rc_inf,
        "v50_ml": curve.v50_ml,
        "slope": curve.slope,
        "v_min_ml": curve.v_min_ml,
        "v_max_ml": curve.v_max_ml,
    }
    data = {
        "sphere_concentration_bq_per_ml": concentration,
        "concentration_source": source,
        "spheres": [
            {
                "diameter_mm": s.diameter_mm,
                "volume_ml": s.volume_ml,
                "recovery": s.recovery,
                "recovery_max": s.recovery_max,
                "centre_mm": list(s.centre_mm),
            }
            for s in spheres
        ],
        "curve": curve_json,
    }
    if out_curve is not None:
        tmp = out_curve.with_name(out_curve.name + ".tmp")
        tmp.write_text(json_module.dumps(curve_json, indent=2))
        tmp.replace(out_curve)
        data["curve_file"] = str(out_curve)
    if json:
        print_json(data)
        return
    print_table(
        "IEC recovery coefficients",
        ["diameter_mm", "volume_ml", "recovery (mean)", "recovery (max)"],
        [(s["diameter_mm"], s["volume_ml"], s["recovery"], s["recovery_max"]) for s in data["spheres"]],
    )
    print(f"curve: RC(V) = {curve.rc_inf:.3f} / (1 + ({curve.v50_ml:.3g} mL / V)^{curve.slope:.2f})")


@app.command("resolution")
def resolution(
    folders: Annotated[
        list[Path],
        typer.Argument(help="IEC phantom folders (quantitative SPECT), one per fill (e.g. 10:1 and 40:1)."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Write the effective resolution here (JSON).")],
    sphere_concentration_bq_per_ml: Annotated[
        list[float] | None,
        typer.Option(
            help="Sphere concentration per folder (Bq/mL, at the acquisition); default truth/truth.json."
        ),
    ] = None,
    background_concentration_bq_per_ml: Annotated[
        list[float] | None,
        typer.Option(help="Background concentration per folder (Bq/mL); default truth/truth.json."),
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Effective (recovery-matched) resolution of the reconstruction by sphere size and contrast, for the
    model-based partial-volume correction (``[pvc] method = "gtm"``, ``resolution = OUT``)."""
    import json as json_module

    from theradose.errors import InputError
    from theradose.io.dicom import discover_series, read_series
    from theradose.qa.resolution import IecFill, resolution_from_iec

    spheres = list(sphere_concentration_bq_per_ml or [])
    backgrounds = list(background_concentration_bq_per_ml or [])
    if (spheres or backgrounds) and (len(spheres) != len(folders) or len(backgrounds) != len(folders)):
        raise InputError(
            "give --sphere-concentration-bq-per-ml and --background-concentration-bq-per-ml once per folder, "
            "or neither (simulated phantoms: truth/truth.json)"
        )
    fills = []
    for i, folder in enumerate(folders):
        candidates = [s for s in discover_series(folder) if s.modality == "NM" and s.units == "Bq/mL"]
        if len(candidates) != 1:
            raise InputError(
                f"{folder} must hold exactly one quantitative (Bq/mL) NM series; found {len(candidates)}"
            )
        image = read_series(folder, series_uid=candidates[0].series_uid)
        centres = None
        if spheres:
            sphere, background = spheres[i], backgrounds[i]
        else:
            truth_file = folder / "truth" / "truth.json"
            if not truth_file.is_file():
                raise InputError(
                    f"no truth/truth.json in {folder}: give --sphere-concentration-bq-per-ml and "
                    "--background-concentration-bq-per-ml"
                )
            truth = json_module.loads(truth_file.read_text(encoding="utf-8"))
            sphere = float(truth["sphere_concentration_bq_per_ml"])
            background = float(truth["background_concentration_bq_per_ml"])
            centres = [s["centre_mm"] for s in truth["spheres"]]
        fills.append(IecFill(image, sphere, background, centres))
    result = resolution_from_iec(fills, source=", ".join(str(f) for f in folders))
    data = result.as_dict()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json_module.dumps(data, indent=2) + "\n", encoding="utf-8")
    if json:
        print_json(data)
    else:
        print_table(
            "recovery-matched FWHM (mm) by sphere diameter",
            ["contrast", *(f"{d:g} mm" for d in result.diameters_mm[-1])],
            [
                (f"{c:g}:1", *(f"{v:.1f}" for v in f))
                for c, f in zip(result.contrasts, result.fwhm_mm, strict=True)
            ],
        )
