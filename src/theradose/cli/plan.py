"""``theradose plan``: next-cycle activity, dosage check before administration, patient release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from theradose.cli._output import print_json, print_mapping, print_table

app = typer.Typer(
    help="Treatment planning: next-cycle activity, dosage check, patient release.", no_args_is_help=True
)


@app.command("next-cycle")
def next_cycle(
    plan_file: Annotated[Path, typer.Argument(help="PLAN.toml: protocol, patient, cycles with doses.")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Recommended activity for the next cycle, limiting organ, projections and stop rules."""
    from theradose.planning import load_plan, plan_next_cycle

    result = plan_next_cycle(load_plan(plan_file))
    data = result.as_dict()
    if json:
        print_json(data)
        return
    print_mapping(
        f"cycle {result.cycle_number}",
        {
            "recommended_activity_mbq": result.recommended_activity_mbq,
            "limiting_organ": result.limiting_organ,
            "stop": result.stop,
        },
    )
    print_table(
        "organs at risk (cumulative after the recommended cycle)",
        ["organ", "dose_gy", "limit_dose_gy", "bed_gy", "limit_bed_gy", "allowed_mbq"],
        [
            (
                o.organ,
                o.projected_dose_gy,
                o.limit_dose_gy,
                o.projected_bed_gy,
                o.limit_bed_gy,
                o.allowed_activity_mbq,
            )
            for o in result.organs
        ],
    )
    if result.tumours:
        print_table(
            "tumours",
            ["tumour", "next_cycle_bed_gy", "cumulative_bed_gy", "cumulative_dose_gy"],
            [(t.name, t.next_cycle_bed_gy, t.projected_bed_gy, t.projected_dose_gy) for t in result.tumours],
        )
    for line in (*result.reasons, *result.notes):
        typer.echo(line)


@app.command("check-dosage")
def check_dosage(
    prescribed_mbq: Annotated[float, typer.Option("--prescribed-mbq", help="Prescribed dosage (MBq).")],
    measured_mbq: Annotated[float, typer.Option("--measured-mbq", help="Measured dosage (MBq).")],
    jurisdiction: Annotated[str, typer.Option(help="Rules: us_nrc or a rules TOML path.")] = "us_nrc",
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Dosage check before administration (US: within 20 % of prescribed, 10 CFR 35.63(d))."""
    from theradose.planning.regulatory import check_dosage as check
    from theradose.planning.regulatory import load_rules

    result = check(prescribed_mbq, measured_mbq, rules=load_rules(jurisdiction))
    data = {
        "ok": result.ok,
        "deviation_percent": result.deviation_percent,
        "rule": result.rule,
        "message": result.message,
    }
    if json:
        print_json(data)
        return
    print_mapping("dosage check", data)


@app.command("release")
def release(
    nuclide: Annotated[str, typer.Option("--nuclide", help="Nuclide, e.g. Lu-177.")],
    activity_mbq: Annotated[
        float, typer.Option("--activity-mbq", help="Activity in the patient at release (MBq).")
    ],
    dose_rate_usv_h_at_1m: Annotated[
        float | None, typer.Option("--dose-rate-usv-h-at-1m", help="Measured dose rate at 1 m (µSv/h).")
    ] = None,
    effective_half_life_h: Annotated[
        float | None,
        typer.Option("--effective-half-life-h", help="Effective half-life (h); default physical."),
    ] = None,
    occupancy_factor: Annotated[
        float | None, typer.Option("--occupancy-factor", help="Occupancy at 1 m (default 0.25).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Patient release by NUREG-1556 Vol. 9 Rev. 3 Appendix U, with close-contact restrictions."""
    from theradose.planning.release import assess_release

    result = assess_release(
        nuclide,
        activity_mbq,
        dose_rate_usv_h_at_1m=dose_rate_usv_h_at_1m,
        effective_half_life_h=effective_half_life_h,
        occupancy_factor=occupancy_factor,
    )
    data = {
        "releasable": result.releasable,
        "dose_to_others_msv": result.dose_to_others_msv,
        "instructions_required": result.instructions_required,
        "restrictions": [
            {
                "scenario": r.scenario,
                "description": r.description,
                "days": r.days,
                "dose_without_restriction_msv": r.dose_without_restriction_msv,
                "dose_constraint_msv": r.dose_constraint_msv,
                "text": r.as_sentence(),
                "citation": r.citation,
            }
            for r in result.restrictions
        ],
        "dose_rate_at_1m_usv_h": result.dose_rate_at_1m_usv_h,
        "half_life_h": result.half_life_h,
        "half_life_kind": result.half_life_kind,
        "occupancy_factor": result.occupancy_factor,
        "method": result.method,
    }
    if json:
        print_json(data)
        return
    print_mapping("patient release", {k: v for k, v in data.items() if k != "restrictions"})
    for r in result.restrictions:
        typer.echo(r.as_sentence())
