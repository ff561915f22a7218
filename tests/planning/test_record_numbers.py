"""The planner shows a cycle's delivered dose and BED as the dose record states them (the same number as the
report, the review page and the registry), not Gy/GBq × activity recomputed from rounded digits."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from theradose.dosimetry.results import (
    Administration,
    Bed,
    EngineDose,
    Patient,
    RegionKind,
    RegionResult,
    StudyDoses,
    round_sig,
)
from theradose.planning import Cycle, TreatmentPlan, cycle_doses, load_protocol, plan_next_cycle
from theradose.planning.nextcycle import organ_history_gy

DOSE_GY = 2.63
T_EFF_H = 44.6
# kidney alpha/beta 2.6 Gy, repair half-time 2.8 h (tissue registry); Dale 1985 for a mono-exponential
# dose rate delivered to complete decay: BED = D (1 + D T_rep / ((alpha/beta)(T_rep + T_eff))), by hand:
# 2.63 x (1 + 2.63 x 2.8 / (2.6 x 47.4)) = 2.63 x 1.0597533 = 2.787151, 2.78715 to the record's 6 digits
BED_GY = round_sig(DOSE_GY * (1 + DOSE_GY * 2.8 / (2.6 * (2.8 + T_EFF_H))))


def _record() -> StudyDoses:
    kidneys = RegionResult(
        "kidneys",
        RegionKind.ORGAN,
        (EngineDose("local", DOSE_GY, 0.066),),
        effective_half_life_h=T_EFF_H,
        mass_g=338.0,
        organ="kidneys",
        tissue="kidney",
        bed=Bed(BED_GY or math.nan, DOSE_GY, "local", "kidney", 2.6, 2.8, T_EFF_H),
    )
    return StudyDoses(
        patient=Patient("PT-0123456789"),
        cycle=1,
        administration=Administration(
            "Lu-177", "[177Lu]Lu-PSMA-617", 7400.0, datetime(2030, 1, 7, tzinfo=UTC)
        ),
        reference_dose="local",
        engines=("local",),
        regions=(kidneys,),
    )


def test_delivered_dose_and_bed_are_the_records() -> None:
    assert BED_GY == 2.78715
    record = _record()
    activity_mbq, regions = cycle_doses(record)
    # the record's Gy/GBq has 6 digits: 0.355405 Gy/GBq x 7.4 GBq = 2.629997 Gy, not the record's 2.63 Gy
    assert regions[0].dose_gy_per_gbq == 0.355405
    assert regions[0].dose_gy_per_gbq * 7.4 != DOSE_GY
    plan = TreatmentPlan(protocol=load_protocol("psma"), cycles=(Cycle(activity_mbq, regions),))
    kidneys = next(o for o in plan_next_cycle(plan).organs if o.organ == "kidneys")
    assert kidneys.delivered_dose_gy == DOSE_GY
    assert kidneys.delivered_bed_gy == BED_GY
    history = organ_history_gy(plan, load_protocol("psma").organs[0])
    assert history is not None and history[0] == (DOSE_GY,) and history[1] == (BED_GY,)


def test_typed_doses_are_still_gy_per_gbq_times_activity() -> None:
    activity_mbq, regions = cycle_doses(_record())
    typed = tuple(
        type(r)(r.name, r.dose_gy_per_gbq, r.dose_sigma_gy_per_gbq, r.effective_half_life_h, r.kind, r.mass_g)
        for r in regions
    )
    plan = TreatmentPlan(protocol=load_protocol("psma"), cycles=(Cycle(activity_mbq, typed),))
    kidneys = next(o for o in plan_next_cycle(plan).organs if o.organ == "kidneys")
    assert math.isclose(kidneys.delivered_dose_gy, 0.355405 * 7.4, rel_tol=1e-12)


def test_draft_directive_from_the_plan() -> None:
    from datetime import date

    import pytest

    from theradose.errors import InputError
    from theradose.planning.draft import draft_directive

    record = _record()
    activity_mbq, regions = cycle_doses(record)
    protocol = load_protocol("psma")
    result = plan_next_cycle(TreatmentPlan(protocol=protocol, cycles=(Cycle(activity_mbq, regions),)))
    # injected 23:30 UTC on 7 January = 00:30 on 8 January in Berlin; + 6 weeks (psma interval) = 19 February
    draft = draft_directive(
        result,
        protocol,
        last_injection=datetime(2030, 1, 7, 23, 30, tzinfo=UTC),
        site_timezone="Europe/Berlin",
    )
    assert draft.cycle == 2 and draft.earliest_date == date(2030, 2, 19) and draft.interval_weeks == 6.0
    assert draft.activity_mbq == round(result.recommended_activity_mbq)
    kidneys = next(o for o in result.organs if o.organ == "kidneys")
    assert draft.organ == (result.limiting_organ or result.most_constrained_organ) == "kidneys"
    assert (draft.projected_bed_gy, draft.projected_bed_upper_gy) == (
        kidneys.projected_bed_gy,
        kidneys.projected_bed_upper_gy,
    )
    assert draft.confidence == 0.95 and "not before 2030-02-19" in draft.summary()
    stopped = type(result)(**{**result.__dict__, "stop": True, "reasons": ("kidneys: BED limit reached",)})
    with pytest.raises(InputError, match=r"the plan says stop.*kidneys: BED limit reached"):
        draft_directive(stopped, protocol, last_injection=datetime(2030, 1, 7, tzinfo=UTC))
