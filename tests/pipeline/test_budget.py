"""Where each component of a region's uncertainty budget comes from in the pipeline (by hand), and a fit
that fails goodness of fit flagged in the record and the report rather than silently used."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from theradose.dosimetry.results import Administration, EngineDose, Patient, RegionKind, StudyDoses
from theradose.pipeline import stages
from theradose.pipeline.budget import (
    BudgetContext,
    LabelRecovery,
    ModelRecovery,
    RecoveryUncertainty,
    dose_factor_spread,
    recovery_curve_sigma,
    region_budget,
)
from theradose.pipeline.spec import KineticsSpec


def _context(recovery: RecoveryUncertainty, **changes: object) -> BudgetContext:
    fields: dict[str, object] = {
        "nuclide": "Lu-177",
        "reference": "local",
        "calibration_rel_sigma": 0.02,
        "calibration_source": "QA record",
        "boundary_sigma_voxels": 0.0,
        "boundary_source": "exact",
        "registration_dice": None,
        "registration_source": "not run",
        "body_mask": None,
        "recovery": recovery,
        "label_weight": {1: 300.0, 2: 100.0},
    }
    fields.update(changes)
    return BudgetContext(**fields)  # type: ignore[arg-type]


def test_recovery_of_an_enlarged_voi_organ_from_its_margin_and_background() -> None:
    """Margin − 1 voxel gives 90, as used 100, + 1 voxel 110 (MBq summed over time points); the background's
    non-uniformity 6: σ = sqrt((110 − 90)²/4 + 6²)/100 = sqrt(100 + 36)/100 = 11.66 %."""
    recovery = RecoveryUncertainty(
        margin_sums={1: (90.0, 100.0, 110.0)}, margin_step_mm=4.8, background_sums={1: 6.0}
    )
    sigma, beta, source = _context(recovery).region_recovery([1])
    assert sigma == pytest.approx(math.sqrt(136.0) / 100.0) and beta == 0.0
    assert "margin ±4.8 mm" in source
    assert _context(recovery).region_recovery([3]) == (None, 0.0, "no partial-volume correction")


def test_recovery_of_curve_corrected_labels_is_activity_weighted() -> None:
    """Two curve-corrected labels, RC 0.5 and 0.8, weights 300 and 100, curve residual SD 0.04:
    σ = (300·0.04/0.5 + 100·0.04/0.8)/400 = (24 + 5)/400 = 7.25 %; β likewise
    (300·1.2 + 100·0.4)/400 = 1.0."""
    recovery = RecoveryUncertainty(
        curve_sigma=0.04,
        curve_spheres=6,
        curve_labels={1: LabelRecovery(0.5, 1.2, False), 2: LabelRecovery(0.8, 0.4, False)},
    )
    sigma, beta, _source = _context(recovery).region_recovery([1, 2])
    assert sigma == pytest.approx(0.0725) and beta == pytest.approx(1.0)
    without_points = RecoveryUncertainty(curve_labels={1: LabelRecovery(0.5, 1.2, False)})
    assert _context(without_points).region_recovery([1])[0] is None  # not assessable: not assessed


def test_recovery_of_model_corrected_labels_is_the_models_sigma_activity_weighted() -> None:
    """Two labels corrected by the GTM, relative σ 0.03 and 0.25 (the second widened below the resolvable
    size), weights 300 and 100: σ = (300·0.03 + 100·0.25)/400 = (9 + 25)/400 = 8.5 %; β = 0 (the model's
    correction does not follow the VOI volume as a recovery curve does)."""
    recovery = RecoveryUncertainty(
        model_labels={1: ModelRecovery(0.03, False), 2: ModelRecovery(0.25, True)}, model_method="gtm"
    )
    sigma, beta, source = _context(recovery).region_recovery([1, 2])
    assert sigma == pytest.approx(0.085) and beta == 0.0
    assert source.startswith("gtm correction") and "below the resolvable size" in source
    assert _context(recovery).region_recovery([1])[0] == pytest.approx(0.03)
    assert _context(recovery).region_recovery([3]) == (None, 0.0, "no partial-volume correction")


def test_a_region_below_the_resolvable_size_of_the_model_is_flagged() -> None:
    from theradose.dosimetry.results import PartialVolume
    from theradose.pipeline.run import region_flags

    recovery = RecoveryUncertainty(model_labels={1: ModelRecovery(0.25, True)}, model_method="gtm")
    below = PartialVolume("gtm", self_recovery=0.4, activity_relative_sigma=0.75, below_resolvable_size=True)
    resolved = PartialVolume("gtm", self_recovery=0.8, activity_relative_sigma=0.02)
    context = _context(recovery)
    assert region_flags("lesion", [1], context, 1.0, 3, partial_volume=below) == ("below_resolution",)
    assert region_flags("liver", [1], context, 1.0, 3000, partial_volume=resolved) == ()


def test_recovery_curve_sigma_pools_the_curves(tmp_path: Path) -> None:
    """Two curves, five spheres each (2 degrees of freedom each) with residuals ±0.01 and ±0.03:
    pooled s = sqrt((4·0.01² + 4·0.03²)/(2 + 2)) = sqrt(0.001) = 0.0316."""
    from theradose.qa.spect import RecoveryCurve

    curve = RecoveryCurve(0.9, 4.0, 1.6, 0.6, 27.0)
    volumes = [0.6, 1.5, 4.0, 11.0, 27.0]
    entries = []
    for ratio, r in ((10.0, 0.01), (40.0, 0.03)):
        residuals = [r, -r, r, -r, 0.0]
        entries.append(
            {
                "sphere_to_background": ratio,
                "rc_inf": 0.9, "v50_ml": 4.0, "slope": 1.6, "v_min_ml": 0.6, "v_max_ml": 27.0,
                "measured": {
                    "volume_ml": volumes,
                    "recovery": [float(curve(v)) + e for v, e in zip(volumes, residuals, strict=True)],
                },
            }
        )  # fmt: skip
    path = tmp_path / "curves.json"
    path.write_text(json.dumps({"curves": entries}))
    sigma, spheres = recovery_curve_sigma(path)
    assert sigma == pytest.approx(math.sqrt(0.001)) and spheres == 10
    bare = tmp_path / "bare.json"
    bare.write_text(
        json.dumps({"rc_inf": 0.9, "v50_ml": 4.0, "slope": 1.6, "v_min_ml": 0.6, "v_max_ml": 27.0})
    )
    assert recovery_curve_sigma(bare) == (None, 0)


def test_dose_factor_spread_by_hand() -> None:
    """Reference 4.0 Gy, others 4.2 and 3.9: sqrt(((0.05)² + (−0.025)²)/2) = 3.95 %."""
    reference = EngineDose("local", 4.0, None)
    spread, source = dose_factor_spread(
        reference, [reference, EngineDose("vsv", 4.2, None), EngineDose("organ", 3.9, None)]
    )
    assert spread == pytest.approx(math.sqrt((0.05**2 + 0.025**2) / 2)) and "vsv, organ" in source
    assert dose_factor_spread(reference, [reference]) == (None, "one dose method only")


def _inconsistent_fit() -> stages.RegionKinetics:
    # rises, falls, rises again: no sum of exponentials describes it within 5 % per point
    return stages.fit_region(
        [4.0, 24.0, 96.0, 168.0],
        [100.0, 40.0, 60.0, 5.0],
        kinetics=KineticsSpec(),
        nuclide="Lu-177",
        region="kidneys",
        relative_sigma=0.05,
    )


def test_a_failed_goodness_of_fit_is_flagged_and_its_sigma_scaled() -> None:
    fit = _inconsistent_fit()
    assert fit.record is not None and "goodness_of_fit_failed" in fit.record.flags
    assert fit.record.p_value is not None and fit.record.p_value < 0.05
    chi2, dof = fit.record.chi_square, fit.record.dof
    assert chi2 is not None and dof
    # the TIA σ carried is the fit's σ × sqrt(χ²/ν) (the record keeps it next to the flag)
    assert fit.tia_sigma_mbq_h == pytest.approx(fit.record.tia_sigma_scaled_mbq_h)
    unscaled = fit.tia_sigma_mbq_h / math.sqrt(chi2 / dof)
    assert fit.fit_tia_rel_sigma == pytest.approx(fit.tia_sigma_mbq_h / fit.tia_mbq_h, rel=1e-6)
    assert fit.tia_sigma_mbq_h > unscaled


def test_a_failed_fit_reaches_the_record_budget_and_report_warnings() -> None:
    from theradose.report.data import warnings_of

    fit = _inconsistent_fit()
    mask = np.zeros((6, 6, 6), dtype=bool)
    mask[1:5, 1:5, 1:5] = True
    dose = stages.Volume(np.where(mask, 3.0, 0.0), np.eye(4), "Gy")
    context = _context(RecoveryUncertainty())

    def budget(name: str, chosen: EngineDose, estimates: object, bed: object) -> object:
        return region_budget(
            name, chosen, estimates, bed, context=context, labels=[1], mask=mask, kinetics=fit
        )  # type: ignore[arg-type]

    region = stages.region_result(
        "kidneys", kind=RegionKind.ORGAN, mask=mask, kinetics=fit, dose_maps={"local": dose},
        voxel_mass_g=np.ones(mask.shape), voxel_volume_ml=1.0, organ_dose=None, tissue=None,
        reference="local", budget=budget, dvh_bins=10,  # type: ignore[arg-type]
    )  # fmt: skip
    assert region.kinetics is not None and region.kinetics.goodness_of_fit_failed
    assert region.uncertainty is not None
    fit_line = region.uncertainty.component("fit_tia")
    assert "goodness of fit failed" in fit_line.source and fit_line.relative_sigma == pytest.approx(
        fit.fit_tia_rel_sigma, rel=1e-5
    )
    record = StudyDoses(
        patient=Patient("P"),
        cycle=1,
        administration=Administration("Lu-177", "x", 7400.0, datetime(2030, 1, 1, tzinfo=UTC)),
        reference_dose="local",
        engines=("local",),
        regions=(region,),
    )
    again = StudyDoses.from_json(record.to_json())
    assert again.region("kidneys").kinetics == region.kinetics
    assert any(w.startswith("kidneys: the ") and "failed the chi-square" in w for w in warnings_of(again))
