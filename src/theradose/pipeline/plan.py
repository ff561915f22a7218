"""The next-cycle plan of a study: the plan file's previous cycles plus this study's doses.

A study file may name a treatment plan (``[plan] file = "PLAN.toml"``, format in
:func:`theradose.planning.cycles.load_plan`). The plan file lists the cycles given **before** this study
(``cycle - 1`` of them); the pipeline appends this study's cycle, with the administered activity and the
region doses of its dose record (dose source ``[plan] dose_source``, default ``"auto"``: the study's
reference dose), and plans the next cycle with
:func:`theradose.planning.plan_next_cycle`. The result goes into ``doses.json`` as ``plan``
(:meth:`~theradose.planning.NextCycleResult.as_dict`, infinities written as ``null``) and into the report
with the cumulative BED figure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from theradose.dosimetry.results import StudyDoses
from theradose.errors import InputError
from theradose.jsonsafe import finite_or_null
from theradose.pipeline.spec import StudySpec
from theradose.planning.cycles import Cycle, RegionDose, TreatmentPlan, cycle_doses, load_plan
from theradose.planning.nextcycle import NextCycleResult, plan_next_cycle


@dataclass(frozen=True)
class StudyPlan:
    """The plan including this study's cycle, and its next-cycle recommendation."""

    plan: TreatmentPlan
    result: NextCycleResult

    def as_dict(self) -> dict[str, Any]:
        """``NextCycleResult.as_dict()`` with non-finite numbers as None (valid JSON) and the protocol."""
        out = finite_or_null(self.result.as_dict())
        assert isinstance(out, dict)
        out["protocol"] = self.plan.protocol.name
        out["cycles_planned_from"] = [c.label for c in self.plan.cycles]
        return out


def load_study_plan(spec: StudySpec) -> TreatmentPlan | None:
    """Read and check the study's plan file before any computation (None without ``[plan]``)."""
    if spec.plan_file is None:
        return None
    plan = load_plan(spec.plan_file)
    if len(plan.cycles) != spec.cycle - 1:
        raise InputError(
            f"plan file {str(spec.plan_file)!r} lists {len(plan.cycles)} cycle(s) but this study is cycle "
            f"{spec.cycle}: list the {spec.cycle - 1} cycle(s) given before it (this one is added from its "
            "doses)"
        )
    organ = _marrow_organ(plan)
    if organ is not None and spec.marrow.enabled:
        if organ.dose_method == "blood" and not spec.marrow.samples:
            raise InputError(
                f"protocol {plan.protocol.name} plans with the blood-based red marrow dose but [marrow] "
                "has no samples: add [[marrow.samples]]"
            )
        if organ.dose_method == "image" and spec.marrow.region is None:
            raise InputError(
                f"protocol {plan.protocol.name} plans with the image-based red marrow dose but [marrow] "
                "has no region: add marrow.region and marrow.vertebrae"
            )
    return plan


def _marrow_organ(plan: TreatmentPlan) -> Any:
    """The protocol's organ whose dose comes from a named marrow method (None when none is named)."""
    return next((o for o in plan.protocol.organs if o.dose_method is not None), None)


def _marrow_region(plan: TreatmentPlan, doses: StudyDoses, activity_mbq: float) -> RegionDose | None:
    """The red marrow dose of the method the protocol names, from the record's ``red_marrow``."""
    from theradose.units import mbq_to_gbq

    organ = _marrow_organ(plan)
    block = doses.red_marrow
    if organ is None or block is None:
        return None
    chosen = block.get(organ.dose_method)
    if not isinstance(chosen, dict) or chosen.get("self_dose_gy") is None:
        raise InputError(
            f"protocol {plan.protocol.name} plans with the {organ.dose_method}-based red marrow dose, which "
            "this study did not compute: add its inputs to [marrow]"
        )
    gbq = float(mbq_to_gbq(activity_mbq))
    total = chosen.get("total_dose_gy")
    dose = float(total if total is not None else chosen["self_dose_gy"])
    sigma = chosen.get("self_dose_sigma_gy")
    return RegionDose(
        name=organ.name,
        dose_gy_per_gbq=dose / gbq,
        dose_sigma_gy_per_gbq=(float(sigma) if sigma is not None else 0.0) / gbq,
        kind="organ",
        source=f"red marrow, {organ.dose_method}-based",
    )


def plan_with_study(plan: TreatmentPlan, spec: StudySpec, doses: StudyDoses) -> StudyPlan:
    """Append this study's cycle (from its dose record) and plan the next one; the red marrow's dose is
    the one of the method the protocol names (``[organs.red_marrow] dose_method``) when the study has
    ``[marrow]``."""
    activity_mbq, regions = cycle_doses(doses, dose_source=spec.plan_dose_source)
    marrow = _marrow_region(plan, doses, activity_mbq)
    if marrow is not None:
        organ = _marrow_organ(plan)
        regions = (*(r for r in regions if not organ.matches(r.name)), marrow)
    current = Cycle(administered_activity_mbq=activity_mbq, regions=regions, label=str(spec.cycle))
    full = dataclasses.replace(plan, cycles=(*plan.cycles, current))
    return StudyPlan(full, plan_next_cycle(full))
