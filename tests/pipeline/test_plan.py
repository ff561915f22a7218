"""The pipeline's doses.json read by planning, and the next-cycle plan in the pipeline's outputs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from theradose.errors import InputError
from theradose.pipeline.run import run_study
from theradose.planning import read_doses_json

from .conftest import REGIONS, SOFT_TISSUE_HU, SPACING_MM, SyntheticStudy, study_toml_text

#: Lu-177 mean electron energy per decay (β⁻ + conversion + Auger), MeV, ICRP 107.
LU177_ELECTRON_MEV = 0.1479
#: Lu-177 photon (γ + X) energy per decay, MeV, ICRP 107 (upper bound).
LU177_PHOTON_MEV = 0.036
MEV_TO_J = 1.602176634e-13
#: 40 HU on the default calibration's water (0 HU, 1.00) – ICRU-44 muscle (43 HU, 1.05 g/mL) segment.
SOFT_TISSUE_DENSITY = 1.0 + SOFT_TISSUE_HU * (1.05 - 1.0) / 43.0


def analytic_dose_gy(study: SyntheticStudy, name: str) -> float:
    """Electron self-dose of a uniform region: (A0·T_eff/ln2)·3600 s/h·10⁶ Bq/MBq·E_e / m."""
    _label, _c, _r, a0, teff = REGIONS[name]
    tia_mbq_h = a0 * teff / math.log(2)
    mass_kg = study.n_voxels[name] * SPACING_MM**3 / 1000.0 * SOFT_TISSUE_DENSITY / 1000.0
    return tia_mbq_h * 3600.0 * 1e6 * LU177_ELECTRON_MEV * MEV_TO_J / mass_kg


def test_planning_reads_the_pipeline_doses_json(synthetic_study: SyntheticStudy, json_only_run: Path) -> None:
    activity_mbq, regions = read_doses_json(json_only_run / "doses.json", dose_source="local")
    assert activity_mbq == 7400.0
    by_name = {r.name: r for r in regions}
    assert set(REGIONS) <= set(by_name)
    for name in REGIONS:
        # the local engine's mean dose per administered GBq (7.4 GBq)
        assert by_name[name].dose_gy_per_gbq == pytest.approx(
            analytic_dose_gy(synthetic_study, name) / 7.4, rel=4e-3
        )
        assert by_name[name].source == "local"
        assert by_name[name].effective_half_life_h == pytest.approx(REGIONS[name][4], rel=1e-3)
        assert by_name[name].mass_g == pytest.approx(
            synthetic_study.n_voxels[name] * SPACING_MM**3 / 1000.0 * SOFT_TISSUE_DENSITY, rel=1e-3
        )
    assert by_name["tumour_1"].kind == "tumour" and by_name["liver"].kind == "organ"
    # TIA σ is 5 % per point propagated through the fit: the dose σ is positive and well below the dose
    assert 0 < by_name["liver"].dose_sigma_gy_per_gbq < 0.2 * by_name["liver"].dose_gy_per_gbq


def test_default_dose_source_is_the_organ_level_mird_dose(
    synthetic_study: SyntheticStudy, json_only_run: Path
) -> None:
    _activity, regions = read_doses_json(json_only_run / "doses.json")
    liver = next(r for r in regions if r.name == "liver")
    assert liver.source == "organ"
    # MIRD self-dose: all electron energy (≥ 97 % absorbed in the organ) plus part of the photons
    electron = analytic_dose_gy(synthetic_study, "liver") / 7.4
    assert 0.97 * electron <= liver.dose_gy_per_gbq <= electron * (1 + LU177_PHOTON_MEV / LU177_ELECTRON_MEV)
    with pytest.raises(InputError, match="dose_source 'mc'"):
        read_doses_json(json_only_run / "doses.json", dose_source="mc")


def test_the_hand_written_shape_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "doses.json"
    path.write_text(
        json.dumps(
            {
                "administered_activity_mbq": 7400.0,
                "regions": [
                    {"name": "kidneys", "dose_gy": 3.7, "dose_sigma_gy": 0.37, "effective_half_life_h": 40}
                ],
            }
        ),
        encoding="utf-8",
    )
    activity, (kidneys,) = read_doses_json(path)
    assert activity == 7400.0
    assert kidneys.dose_gy_per_gbq == pytest.approx(0.5)  # 3.7 Gy / 7.4 GBq
    assert kidneys.dose_sigma_gy_per_gbq == pytest.approx(0.05)


PLAN = """protocol = "psma"

[[cycles]]
label = "C1"
administered_activity_mbq = 7400
regions = [
  { name = "kidneys", dose_gy_per_gbq = 1.0, dose_sigma_gy_per_gbq = 0.1, effective_half_life_h = 40 },
  { name = "liver", dose_gy_per_gbq = 0.5, dose_sigma_gy_per_gbq = 0.05 },
]
"""


def _plan_study(study: SyntheticStudy, name: str, plan_text: str, formats: str) -> Path:
    (study.root / f"{name}_plan.toml").write_text(plan_text, encoding="utf-8")
    path = study.root / f"{name}.toml"
    plan = f'\n[plan]\nfile = "{name}_plan.toml"\ndose_source = "local"\n'
    text = study_toml_text(study.root, extra=f"\n[output]\nformats = {formats}\n{plan}")
    path.write_text(text.replace("cycle = 1\n", "cycle = 2\n", 1), encoding="utf-8")
    return path


def test_the_plan_joins_doses_json_and_the_report(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    study = _plan_study(synthetic_study, "study_with_plan", PLAN, '["json", "html", "pdf"]')
    out = tmp_path / "out"
    result = run_study(study, out, use_cache=False)
    doses = json.loads((out / "doses.json").read_text(encoding="utf-8"))
    plan = doses["plan"]
    assert plan == result.doses.to_dict()["plan"]
    assert plan["protocol"] == "psma"
    assert plan["cycles_planned_from"] == ["C1", "2"]
    assert plan["cycle_number"] == 3
    kidneys = plan["projected"]["kidneys"]
    # study cycle 2 has a "kidneys" region (exact name) next to "kidney_left": the exact one is used
    assert kidneys["regions_used"] == [["kidneys"], ["kidneys"]]
    # delivered = 1.0 Gy/GBq × 7.4 GBq (C1) + this study's kidney dose (local engine, analytic)
    delivered = 7.4 + analytic_dose_gy(synthetic_study, "kidney_left")
    assert kidneys["delivered_dose_gy"] == pytest.approx(delivered, rel=4e-3)
    assert delivered > 23.0  # above the PSMA protocol's 23 Gy kidney limit (Emami 1991): treatment stops
    assert plan["stop"] is True and plan["recommended_activity_mbq"] == 0.0
    assert any(r.startswith("kidneys: cumulative absorbed dose") and "23 Gy" in r for r in plan["reasons"])
    liver = plan["projected"]["liver"]
    assert liver["delivered_dose_gy"] == pytest.approx(
        3.7 + analytic_dose_gy(synthetic_study, "liver"), rel=4e-3
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    for text in (
        "Next-cycle plan",
        "STOP treatment",
        "Cumulative BED per organ across cycles",
        "kidneys: cumulative",
    ):
        assert text in html
    # the plan's one-sided confidence uses the σ of the kidney dose it plans with (the local engine's,
    # [plan] dose_source): that dose times the relative σ of the region's uncertainty budget, per GBq
    region = result.doses.region("kidneys")
    local = region.dose("local")
    assert region.uncertainty is not None and local is not None and local.dose_gy is not None
    budget_sigma_per_gbq = local.dose_gy * region.uncertainty.dose_relative_sigma / 7.4
    assert kidneys["expected_sigma_gy_per_gbq"] == pytest.approx(budget_sigma_per_gbq, rel=1e-5)
    assert "Expected Gy/GBq ± σ" in html and "with σ from its dose&#x27;s uncertainty budget" in html
    pdf = (out / "report.pdf").read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert len(boxes) >= 6 and {(round(float(w), 2), round(float(h), 2)) for w, h in boxes} == {
        (595.28, 841.89)
    }


def test_a_plan_with_the_wrong_number_of_cycles_is_refused_before_computing(
    synthetic_study: SyntheticStudy, tmp_path: Path
) -> None:
    study = _plan_study(synthetic_study, "study_bad_plan", 'protocol = "psma"\n', '["json"]')
    with pytest.raises(InputError, match="lists 0 cycle"):
        run_study(study, tmp_path / "out", use_cache=False)
    assert not (tmp_path / "out").exists()
