"""``theradose read``: SUV scale factors, lesion scores, trial eligibility and response criteria."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from theradose.reading.lesions import LesionTable

app = typer.Typer(help="PET reading: SUV, PSMA-RADS/SSTR-RADS/Krenning/miPSMA, eligibility, response.")

FrameworkOpt = Literal["psma-rads", "sstr-rads", "krenning", "mipsma"]


def _table(path: Path, reference_options: dict[str, float | None]) -> LesionTable:
    from theradose.reading.lesions import read_lesion_csv

    table = read_lesion_csv(path)
    for name, value in reference_options.items():
        if value is not None:
            table = table.with_reference(name, value)
    return table


def _plain(text: str) -> str:
    """Escape rich markup so citation keys in [brackets] are printed."""
    from rich.markup import escape

    return escape(text)


LiverOpt = Annotated[float | None, typer.Option("--liver-suv", help="Liver SUVmean (overrides the table).")]
SpleenOpt = Annotated[
    float | None, typer.Option("--spleen-suv", help="Spleen SUVmean (overrides the table).")
]
ParotidOpt = Annotated[
    float | None, typer.Option("--parotid-suv", help="Parotid SUVmean (overrides the table).")
]
BloodOpt = Annotated[
    float | None, typer.Option("--blood-pool-suv", help="Blood-pool SUVmean (overrides the table).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


@app.command("suv")
def suv_command(
    path: Annotated[Path, typer.Argument(help="PET DICOM file or folder of one PET series.")],
    json: JsonOpt = False,
) -> None:
    """SUVbw and SUL scale factors (multiply Bq/mL by them) from the PET headers."""
    from theradose.cli._output import print_json, print_mapping
    from theradose.reading.suv import suv_scale

    result = suv_scale(path).to_dict()
    if json:
        print_json(result)
    else:
        print_mapping("SUV scale factors", {k: v for k, v in result.items() if k != "notes"})
        for note in result["notes"]:
            typer.echo(f"note: {note}")


@app.command("score")
def score_command(
    lesions: Annotated[Path, typer.Argument(help="Lesion table (CSV).")],
    framework: Annotated[
        str, typer.Option("--framework", "-f", help="psma-rads | sstr-rads | krenning | mipsma")
    ],
    tracer: Annotated[str, typer.Option(help="PSMA ligand (PSMA-1007 uses the spleen for miPSMA).")] = "",
    equal_tolerance: Annotated[
        float, typer.Option(help="Krenning: fraction of liver counted as 'equal to liver'.")
    ] = 0.0,
    liver: LiverOpt = None,
    spleen: SpleenOpt = None,
    parotid: ParotidOpt = None,
    blood_pool: BloodOpt = None,
    json: JsonOpt = False,
) -> None:
    """Category of every lesion and the rule that decided it."""
    from theradose.cli._output import print_json, print_table
    from theradose.errors import InputError
    from theradose.reading.criteria import score_lesions

    if framework not in ("psma-rads", "sstr-rads", "krenning", "mipsma"):
        raise InputError(f"--framework must be psma-rads, sstr-rads, krenning or mipsma; got {framework!r}")
    table = _table(lesions, {"liver": liver, "spleen": spleen, "parotid": parotid, "blood_pool": blood_pool})
    decisions = score_lesions(table, framework=framework, equal_tolerance=equal_tolerance, tracer=tracer)  # type: ignore[arg-type]
    if json:
        print_json({"framework": framework, "lesions": [d.to_dict() for d in decisions]})
    else:
        print_table(
            f"{framework} ({lesions.name})",
            ["lesion", "category", "rule"],
            [(d.lesion_id, d.category, _plain(d.rule)) for d in decisions],
        )


@app.command("eligibility")
def eligibility_command(
    lesions: Annotated[Path, typer.Argument(help="Lesion table (CSV).")],
    trial: Annotated[str, typer.Option("--trial", "-t", help="vision | therap | netter1")],
    equal_tolerance: Annotated[
        float, typer.Option(help="NETTER-1: fraction of liver counted as 'equal to liver'.")
    ] = 0.0,
    liver: LiverOpt = None,
    spleen: SpleenOpt = None,
    json: JsonOpt = False,
) -> None:
    """PET eligibility for VISION, TheraP or NETTER-1 with the reasons."""
    from theradose.cli._output import print_json, print_table
    from theradose.errors import InputError
    from theradose.reading.criteria import eligibility

    if trial not in ("vision", "therap", "netter1"):
        raise InputError(f"--trial must be vision, therap or netter1; got {trial!r}")
    table = _table(lesions, {"liver": liver, "spleen": spleen})
    result = eligibility(table, trial=trial, equal_tolerance=equal_tolerance)  # type: ignore[arg-type]
    if json:
        print_json(result.to_dict())
    else:
        print_table(
            f"{trial}: {'ELIGIBLE' if result.eligible else 'NOT ELIGIBLE'}",
            ["reason"],
            [(_plain(r),) for r in result.reasons],
        )


@app.command("response")
def response_command(
    baseline: Annotated[Path, typer.Argument(help="Baseline lesion table (CSV).")],
    followup: Annotated[Path, typer.Argument(help="Follow-up lesion table (CSV).")],
    criteria: Annotated[str, typer.Option("--criteria", "-c", help="recist | percist | recip | ppp")],
    match_by: Annotated[str, typer.Option(help="auto | id | position")] = "auto",
    max_distance_mm: Annotated[float, typer.Option(help="Position matching gate in mm.")] = 20.0,
    nadir_sum_mm: Annotated[
        float | None, typer.Option(help="RECIST: smallest sum of diameters so far (mm).")
    ] = None,
    clinical_progression: Annotated[
        bool, typer.Option(help="PPP: consistent clinical or laboratory progression data.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Response category between two lesion tables, with the details."""
    from theradose.cli._output import print_json, print_mapping
    from theradose.errors import InputError
    from theradose.reading.lesions import read_lesion_csv
    from theradose.reading.response import assess_response

    if criteria not in ("recist", "percist", "recip", "ppp"):
        raise InputError(f"--criteria must be recist, percist, recip or ppp; got {criteria!r}")
    if match_by not in ("auto", "id", "position"):
        raise InputError(f"--match-by must be auto, id or position; got {match_by!r}")
    result = assess_response(
        read_lesion_csv(baseline),
        read_lesion_csv(followup),
        criteria=criteria,  # type: ignore[arg-type]
        match_by=match_by,  # type: ignore[arg-type]
        max_distance_mm=max_distance_mm,
        nadir_sum_mm=nadir_sum_mm,
        clinical_progression=clinical_progression,
    )
    if json:
        print_json(result.to_dict())
    else:
        print_mapping(
            f"{result.criteria}: {result.category}",
            {
                "category": result.category,
                "rule": _plain(result.rule),
                "new lesions": result.details.get("new_lesions"),
            },
        )


@app.command("report")
def report_command(
    lesions: Annotated[Path, typer.Argument(help="Lesion table (CSV), the scan being read.")],
    followup: Annotated[
        Path | None, typer.Option(help="Follow-up lesion table: LESIONS is then the baseline.")
    ] = None,
    pet: Annotated[Path | None, typer.Option(help="PET DICOM file or series folder (SUV factors).")] = None,
    framework: Annotated[list[str] | None, typer.Option("--framework", "-f", help="Repeatable.")] = None,
    trial: Annotated[list[str] | None, typer.Option("--trial", "-t", help="Repeatable.")] = None,
    criteria: Annotated[list[str] | None, typer.Option("--criteria", "-c", help="Repeatable.")] = None,
    tracer: Annotated[str, typer.Option(help="PSMA ligand (PSMA-1007 uses the spleen for miPSMA).")] = "",
    sr: Annotated[
        Path | None, typer.Option(help="Also write a DICOM SR measurement report (TID 1500); needs --pet.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Everything at once: Markdown summary (default) or JSON for the pipeline report."""
    from theradose.cli._output import print_json
    from theradose.errors import InputError
    from theradose.reading.criteria import eligibility, score_lesions
    from theradose.reading.lesions import read_lesion_csv
    from theradose.reading.report import ReadingReport
    from theradose.reading.response import assess_response
    from theradose.reading.suv import suv_scale

    for value, allowed, name in (
        (framework, ("psma-rads", "sstr-rads", "krenning", "mipsma"), "--framework"),
        (trial, ("vision", "therap", "netter1"), "--trial"),
        (criteria, ("recist", "percist", "recip", "ppp"), "--criteria"),
    ):
        for v in value or []:
            if v not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}; got {v!r}")
    if sr is not None and pet is None:
        raise InputError("--sr needs --pet: the SR references the PET images that were read")
    if criteria and followup is None:
        raise InputError("--criteria needs --followup: response compares two lesion tables")
    table = read_lesion_csv(lesions)
    fu_table = read_lesion_csv(followup) if followup is not None else None
    report = ReadingReport(
        lesions=table,
        suv=suv_scale(pet) if pet is not None else None,
        scores={f: score_lesions(table, framework=f, tracer=tracer) for f in framework or []},  # type: ignore[arg-type]
        eligibility=[eligibility(table, trial=t) for t in trial or []],  # type: ignore[arg-type]
        responses=[
            assess_response(table, fu_table, criteria=c)  # type: ignore[arg-type]
            for c in criteria or []
            if fu_table is not None
        ],
    )
    if sr is not None and pet is not None:
        from theradose.reading.sr import measurement_report
        from theradose.reading.suv import read_pet_headers

        decisions = [d for ds in report.scores.values() for d in ds]
        dataset = measurement_report(table, read_pet_headers(pet), decisions=decisions)
        try:
            dataset.save_as(sr, enforce_file_format=True)
        except OSError as exc:
            raise InputError(f"cannot write SR to {str(sr)!r} ({exc}): give a writable path") from None
    if json:
        print_json(report.to_dict())
    else:
        typer.echo(report.to_markdown(), nl=False)


@app.command("measure")
def measure_command(
    pet: Annotated[Path, typer.Argument(help="PET DICOM series folder (or file).")],
    labels: Annotated[Path, typer.Argument(help="Label map on the PET grid (NIfTI .nii/.nii.gz).")],
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name", help="LABEL=NAME, repeatable; liver/spleen/parotid/blood_pool are references."
        ),
    ] = None,
    peak_diameter_mm: Annotated[float, typer.Option(help="SUVpeak sphere diameter (PERCIST: 12 mm).")] = 12.0,
    threshold_suv: Annotated[float | None, typer.Option(help="Keep region voxels with SUV >= this.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the lesion table (CSV) here.")] = None,
    json: JsonOpt = False,
) -> None:
    """SUVmax, SUVpeak, SUVmean, volume and total lesion uptake per labelled region."""
    from theradose.cli._output import print_json, print_table
    from theradose.errors import InputError
    from theradose.io.dicom import read_series
    from theradose.io.nifti import read_nifti
    from theradose.reading.lesions import write_lesion_csv
    from theradose.reading.measure import measure_regions, measurements_to_table
    from theradose.reading.suv import suv_scale

    names: dict[int, str] = {}
    for item in name or []:
        label_text, _, region = item.partition("=")
        if not label_text.strip().isdigit() or not region.strip():
            raise InputError(f"--name must be LABEL=NAME with an integer label; got {item!r}")
        names[int(label_text)] = region.strip()
    volume = read_series(pet)
    label_volume = read_nifti(labels, unit="label")
    scale = suv_scale(pet)
    suv_factor: float | None = None
    sul_factor: float | None = None
    if volume.unit == "Bq/mL":
        suv_factor, sul_factor = scale.suv_bw_scale, scale.sul_scale
        if scale.decay_correction == "ADMIN" and volume.acquisition_datetime is not None:
            # the series reader brings ADMIN-corrected values to the series time: use the dose at that time
            suv_factor, sul_factor = scale.scales_at(volume.acquisition_datetime)
    measurements = measure_regions(
        volume,
        label_volume,
        suv_scale=suv_factor,
        sul_scale=sul_factor,
        names=names,
        peak_diameter_mm=peak_diameter_mm,
        threshold_suv=threshold_suv,
    )
    if out is not None:
        write_lesion_csv(measurements_to_table(measurements, source=pet.name), out)
    if json:
        print_json({"suv": scale.to_dict(), "regions": [m.to_dict() for m in measurements]})
    else:
        print_table(
            f"PET measurements ({pet.name})",
            ["region", "SUVmax", "SUVpeak", "SUVmean", "volume mL", "TLU"],
            [
                (m.name, m.suv_max, m.suv_peak, m.suv_mean, m.volume_ml, m.total_lesion_uptake_ml)
                for m in measurements
            ],
        )
