"""Demo and benchmark plumbing without the SPECT simulator: study file from a truth.json, scoring, tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from theradose.pipeline.demo import harmonisation_table, score_regions, write_study_file
from theradose.pipeline.run import run_study

from .conftest import INJECTION, REGIONS, SPACING_MM, TIMES_H, SyntheticStudy

#: Lu-177 electrons per decay (ICRP 107), MeV, and the CT soft-tissue density of the synthetic study.
LU177_ELECTRON_MEV = 0.1479
#: 40 HU on the water (0 HU, 1.00) – ICRU-44 muscle (43 HU, 1.05 g/mL) segment of the default calibration.
DENSITY = 1.0 + 40.0 * (1.05 - 1.0) / 43.0


def _truth(study: SyntheticStudy) -> dict[str, object]:
    """A truth.json in the phantom package's format for the synthetic study, with analytic doses."""
    voxel_ml = SPACING_MM**3 / 1000.0
    regions = {}
    for name, (label, _c, _radius, a0, teff) in REGIONS.items():
        mass_g = study.n_voxels[name] * voxel_ml * DENSITY
        tia = a0 * teff / math.log(2)
        dose = tia * 3600.0 * 1e6 * LU177_ELECTRON_MEV * 1.602176634e-13 / (mass_g / 1000.0)
        regions[name] = {"labels": [label], "mass_g": mass_g, "tia_mbq_h": tia, "dose_gy": dose}
    return {
        "seed": 3,
        "tracer": "psma",
        "nuclide": "Lu-177",
        "radiopharmaceutical": "177Lu-PSMA-617",
        "injected_activity_mbq": 7400.0,
        "injection_datetime": INJECTION.isoformat(),
        "tumours": [{"name": "tumour_1", "label": 3, "diameter_mm": 2 * 2.5 * SPACING_MM}],
        "regions": regions,
        "files": {
            "labels": "labels.nii.gz",
            "timepoints": {
                f"tp_{t:g}h": {"ct": f"tp_{t:g}h/ct", "spect": f"tp_{t:g}h/spect"} for t in TIMES_H
            },
        },
    }


def test_study_file_from_truth_runs_and_scores_near_zero_error(
    synthetic_study: SyntheticStudy, tmp_path: Path
) -> None:
    truth = _truth(synthetic_study)
    (synthetic_study.root / "truth").mkdir(exist_ok=True)
    (synthetic_study.root / "truth" / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    study = write_study_file(synthetic_study.root, tmp_path / "study.toml", recovery_curve=None)
    text = study.read_text(encoding="utf-8")
    assert 'tumours = ["tumour_1"]' in text  # no "tumours" group region in this truth
    result = run_study(study.with_name("study.toml"), tmp_path / "out", use_cache=False)
    scores = {s.name: s for s in score_regions(result.doses, truth, engine="local")}
    assert set(scores) == set(REGIONS)
    for s in scores.values():
        assert abs(s.error_percent) < 0.5, s
    assert scores["tumour_1"].diameter_mm == pytest.approx(40.0)
    liver = scores["liver"].as_dict()
    assert liver.keys() == {
        "name", "dose_gy", "sigma_gy", "dominant", "truth_dose_gy", "error_percent", "covered_95",
    }  # fmt: skip
    region = result.doses.region("liver")
    assert region.uncertainty is not None and liver["sigma_gy"] == region.uncertainty.dose_sigma_gy
    assert liver["dominant"] == list(region.uncertainty.dominant)


def test_harmonisation_table_by_hand() -> None:
    rows = [
        {"patient": 1, "method": "a", "region": "liver", "dose_gy": 1.0, "error_percent": 0.0},
        {"patient": 1, "method": "b", "region": "liver", "dose_gy": 3.0, "error_percent": 200.0},
        {"patient": 2, "method": "a", "region": "liver", "dose_gy": 2.0, "error_percent": 10.0},
        {"patient": 2, "method": "b", "region": "liver", "dose_gy": 2.0, "error_percent": 10.0},
    ]
    (entry,) = harmonisation_table(rows, ["a", "b"])
    assert entry["methods"]["a"] == {
        "mean_error_percent": 5.0,
        "sd_error_percent": pytest.approx(7.071, abs=1e-3),
        "n": 2,
    }
    assert entry["methods"]["b"]["mean_error_percent"] == 105.0
    # patient 1: sd(1, 3)/mean = 1.41421/2 = 70.71 %; patient 2: 0 % → mean 35.355 %
    assert entry["spread_between_methods_percent"] == pytest.approx(35.355, abs=1e-3)


def test_study_file_with_a_resolution_uses_the_model_based_correction(
    synthetic_study: SyntheticStudy, tmp_path: Path
) -> None:
    import tomllib

    truth = _truth(synthetic_study)
    (synthetic_study.root / "truth").mkdir(exist_ok=True)
    (synthetic_study.root / "truth" / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    resolution = tmp_path / "resolution.json"
    study = write_study_file(
        synthetic_study.root, tmp_path / "gtm.toml", recovery_curve=None, resolution=resolution
    )
    pvc = tomllib.loads(study.read_text(encoding="utf-8"))["pvc"]
    assert pvc == {"method": "gtm", "resolution": str(resolution)}
