"""The pipeline with the model-based partial-volume correction and red marrow dosimetry.

A small serial SPECT/CT study written as DICOM: uniform organs and background with mono-exponential
kinetics, each time point blurred by a known Gaussian (the "reconstruction"), so the true time-integrated
activities are A0/λ per region, known here independently of the pipeline.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from theradose.imaging.pvc.resolution import EffectiveResolution, blur
from theradose.imaging.volume import Volume
from theradose.pipeline.run import run_study

from .conftest import INJECTION

SHAPE = (40, 48, 48)
SPACING_MM = 6.0
FWHM_MM = 15.0
TIMES_H = (4.0, 24.0, 96.0, 168.0)
LU177_ELECTRON_MEV = 0.1479
#: region → (label, centre (k, j, i), semi-axes (voxels), A0 MBq, effective half-life h)
ORGANS = {
    "kidney_left": (1, (20, 30, 31), (5.0, 3.0, 2.6), 150.0, 45.0),
    "kidney_right": (2, (20, 30, 16), (5.0, 3.0, 2.6), 140.0, 50.0),
    "spleen": (3, (23, 28, 37), (4.0, 3.2, 2.4), 25.0, 60.0),
    "liver": (4, (22, 21, 16), (6.0, 6.0, 7.0), 200.0, 70.0),
    "lesion": (5, (22, 21, 15), (2.2, 2.2, 2.2), 40.0, 150.0),
    "marrow_voi": (6, (16, 33, 24), (4.0, 1.8, 2.2), 3.0, 30.0),
}
BACKGROUND_BQ_PER_ML = (6000.0, 40.0)  # concentration at t = 0 and effective half-life (h)
BLOOD_BQ_PER_ML = (15000.0, 35.0)


def _ellipsoid(centre: tuple[int, int, int], semi: tuple[float, float, float]) -> np.ndarray:
    k, j, i = np.indices(SHAPE).astype(float)
    return ((k - centre[0]) / semi[0]) ** 2 + ((j - centre[1]) / semi[1]) ** 2 + (
        (i - centre[2]) / semi[2]
    ) ** 2 <= 1


@dataclass(frozen=True)
class PvcStudy:
    root: Path
    labels: np.ndarray
    tia_mbq_h: dict[str, float]


def _affine() -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.diag([SPACING_MM] * 3)[::-1]
    affine[:3, 3] = (-141.0, -141.0, -117.0)
    return affine


def _write(root: Path) -> PvcStudy:
    from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, write_ct_series, write_nm_series
    from theradose.io.dicom.write import new_uid
    from theradose.io.nifti import write_nifti

    root.mkdir(parents=True)
    body = _ellipsoid((20, 24, 24), (25, 15, 20))
    hu = np.where(body, 40.0, -1000.0)
    hu[body & ~_ellipsoid((20, 24, 24), (25, 14, 19))] = -100.0
    spine = _ellipsoid((16, 33, 24), (14, 2.6, 3.0))
    hu[spine] = 1300.0
    labels = np.zeros(SHAPE, dtype=np.int16)
    masks = {}
    for name, (_label, centre, semi, _a0, _t) in ORGANS.items():
        masks[name] = _ellipsoid(centre, semi)
    masks["liver"] &= ~masks["lesion"]
    masks["spleen"] &= ~masks["kidney_left"]
    masks["marrow_voi"] &= spine
    for name, (label, *_rest) in ORGANS.items():
        labels[masks[name]] = label
    hu[masks["marrow_voi"]] = 280.0
    voxel_ml = SPACING_MM**3 / 1000.0
    affine = _affine()
    patient = PatientInfo(name="Pvc^Patient", patient_id="PVC-001", sex="M", weight_kg=73.0)
    rp = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", 7400.0, INJECTION)
    frame = new_uid()
    for t in TIMES_H:
        conc = np.where(
            body & (labels == 0),
            BACKGROUND_BQ_PER_ML[0] * math.exp(-math.log(2) / BACKGROUND_BQ_PER_ML[1] * t),
            0.0,
        )
        for name, (_label, _c, _s, a0, teff) in ORGANS.items():
            n = int(masks[name].sum())
            conc[masks[name]] = a0 * 1e6 * math.exp(-math.log(2) / teff * t) / (n * voxel_ml)
        image = blur(conc, FWHM_MM, (SPACING_MM,) * 3)
        acquired = INJECTION + timedelta(hours=t)
        study_uid = new_uid()
        ct = Volume(hu.astype(np.int16), affine, "HU", frame_uid=frame, acquisition_datetime=acquired)
        write_ct_series(ct, root / f"tp_{t:g}h" / "ct", patient=patient, study_uid=study_uid, frame_uid=frame)
        spect = Volume(
            image.astype(np.float32), affine, "Bq/mL", frame_uid=frame, acquisition_datetime=acquired
        )
        write_nm_series(
            spect,
            root / f"tp_{t:g}h" / "spect",
            patient=patient,
            radiopharmaceutical=rp,
            study_uid=study_uid,
            frame_uid=frame,
        )
    write_nifti(Volume(labels, affine, "label"), root / "labels.nii.gz")
    resolution = EffectiveResolution((10.0,), ((10.0, 100.0),), ((FWHM_MM, FWHM_MM),), 0.05, "test")
    (root / "resolution.json").write_text(json.dumps(resolution.as_dict()), encoding="utf-8")
    tia = {name: a0 * teff / math.log(2) for name, (_l, _c, _s, a0, teff) in ORGANS.items()}
    return PvcStudy(root, labels, tia)


def _study_text(root: Path, *, regions: dict[str, list[int]], pvc: str, marrow: bool) -> str:
    tps = "\n".join(f'[[timepoints]]\nspect = "tp_{t:g}h/spect"\nct = "tp_{t:g}h/ct"\n' for t in TIMES_H)
    region_lines = "\n".join(f"{name} = {json.dumps(v)}" for name, v in regions.items())
    text = f"""seed = 1
[patient]
id = "PVC-001"
sex = "M"
weight_kg = 73.0

[administration]
nuclide = "Lu-177"
radiopharmaceutical = "177Lu-PSMA-617"
activity_mbq = 7400
datetime = {INJECTION.isoformat()}

{tps}
[segmentation]
source = "nifti"
path = "labels.nii.gz"
tumours = ["lesion"]

[segmentation.regions]
{region_lines}

[kinetics]
model = "mono"

[dose]
engines = ["local"]
organ = false

[output]
formats = ["json"]

{pvc}
"""
    if marrow:
        samples = "\n".join(
            f"[[marrow.samples]]\ntime_h = {t}\nconcentration_bq_per_ml = "
            f"{BLOOD_BQ_PER_ML[0] * math.exp(-math.log(2) / BLOOD_BQ_PER_ML[1] * t)!r}\n"
            for t in (1.0, 4.0, 24.0, 48.0, 96.0, 168.0)
        )
        text += (
            '\n[marrow]\nregion = "marrow_voi"\nvertebrae = ["L2", "L3", "L4"]\nsample_relative_sd = 0.02\n\n'
            + samples
        )
    return text


ALL_REGIONS = {name: [label] for name, (label, *_r) in ORGANS.items()} | {"kidneys": [1, 2]}
GTM = '[pvc]\nmethod = "gtm"\nresolution = "resolution.json"\n'


@pytest.fixture(scope="module")
def pvc_study(tmp_path_factory: pytest.TempPathFactory) -> PvcStudy:
    return _write(tmp_path_factory.mktemp("pvc") / "study")


@pytest.fixture(scope="module")
def gtm_run(pvc_study: PvcStudy, tmp_path_factory: pytest.TempPathFactory) -> dict:
    study = pvc_study.root / "gtm.toml"
    study.write_text(_study_text(pvc_study.root, regions=ALL_REGIONS, pvc=GTM, marrow=True), encoding="utf-8")
    return run_study(study, tmp_path_factory.mktemp("out") / "gtm", use_cache=False).doses.to_dict()


def _region(doses: dict, name: str) -> dict:
    return next(r for r in doses["regions"] if r["name"] == name)


def test_gtm_recovers_the_true_tia(pvc_study: PvcStudy, gtm_run: dict) -> None:
    for name in ("kidney_left", "kidney_right", "spleen", "liver", "lesion"):
        assert _region(gtm_run, name)["tia_mbq_h"] == pytest.approx(pvc_study.tia_mbq_h[name], rel=0.03), name
    kidneys = pvc_study.tia_mbq_h["kidney_left"] + pvc_study.tia_mbq_h["kidney_right"]
    assert _region(gtm_run, "kidneys")["tia_mbq_h"] == pytest.approx(kidneys, rel=0.03)
    block = _region(gtm_run, "kidneys")["partial_volume"]
    assert block["method"] == "gtm" and block["below_resolvable_size"] is False
    assert gtm_run["partial_volume_model"]["method"] == "gtm"


def test_every_region_has_a_budget_whose_recovery_term_is_the_models(gtm_run: dict) -> None:
    """With the model-based correction each region's dose has an uncertainty budget; its recovery term is
    the model's relative σ of the corrected activity (the region's ``partial_volume`` block), not a
    recovery curve's, and the region is flagged below the resolution exactly when the model says so."""
    sigma = {}
    for region in gtm_run["regions"]:
        block, budget = region["partial_volume"], region["uncertainty"]
        assert budget is not None, region["name"]
        recovery = {c["name"]: c for c in budget["components"]}["recovery"]
        sigma[region["name"]] = recovery["relative_sigma"]
        if len(ALL_REGIONS[region["name"]]) == 1:
            assert sigma[region["name"]] == pytest.approx(block["activity_relative_sigma"], rel=0.01)
        assert recovery["source"].startswith("gtm correction")
        assert ("below_resolution" in region["flags"]) == block["below_resolvable_size"], region["name"]
        if block["below_resolvable_size"]:  # widened to half the correction, 0.5·(1/ω − 1)
            assert block["activity_relative_sigma"] >= 0.5 * (1 / block["self_recovery"] - 1) * 0.999
    # both kidneys, fully correlated (one resolution): between the two kidneys' terms
    low, high = sorted((sigma["kidney_left"], sigma["kidney_right"]))
    assert low * 0.999 <= sigma["kidneys"] <= high * 1.001


def test_the_model_based_record_round_trips_and_validates_against_the_schema(gtm_run: dict) -> None:
    import jsonschema_rs

    from theradose.dosimetry.results import StudyDoses, doses_schema

    jsonschema_rs.validate(doses_schema(), gtm_run)
    again = StudyDoses.from_json(json.dumps(gtm_run))
    assert again.to_dict() == gtm_run


def test_adding_or_removing_a_listed_organ_changes_no_other_dose(
    pvc_study: PvcStudy, gtm_run: dict, tmp_path: Path
) -> None:
    regions = {k: v for k, v in ALL_REGIONS.items() if k != "spleen"}
    study = pvc_study.root / "no_spleen.toml"
    study.write_text(_study_text(pvc_study.root, regions=regions, pvc=GTM, marrow=False), encoding="utf-8")
    without = run_study(study, tmp_path / "out", use_cache=False).doses.to_dict()
    for name in ("kidney_left", "kidney_right", "kidneys", "liver", "lesion"):
        a = _region(gtm_run, name)["doses"]["local"]["dose_gy"]
        b = _region(without, name)["doses"]["local"]["dose_gy"]
        assert abs(b / a - 1.0) < 0.01, (name, a, b)


def test_red_marrow_by_blood_and_by_image(pvc_study: PvcStudy, gtm_run: dict) -> None:
    marrow = gtm_run["red_marrow"]
    joule_per_mbq_h = 3600.0 * 1e6 * LU177_ELECTRON_MEV * 1.602176634e-13
    # blood: RMBLR 1 (177Lu-PSMA-617), ∫c dt = C0·T½/ln2 per mL, per gram of blood / 1.06
    blood_tia_per_g = BLOOD_BQ_PER_ML[0] * BLOOD_BQ_PER_ML[1] / math.log(2) / 1e6 / 1.06
    assert marrow["blood"]["self_dose_gy"] == pytest.approx(
        blood_tia_per_g * joule_per_mbq_h * 1000.0, rel=0.01
    )
    # image: VOI TIA / (3/5 of the lumbar fraction 0.123) over the 73-kg male reference 1170 g
    voi = pvc_study.tia_mbq_h["marrow_voi"] / (0.6 * 0.123)
    assert marrow["image"]["self_dose_gy"] == pytest.approx(voi * joule_per_mbq_h / 1.170, rel=0.05)
    expected = 100 * (marrow["image"]["self_dose_gy"] / marrow["blood"]["self_dose_gy"] - 1)
    assert marrow["disagreement_percent"] == pytest.approx(expected, rel=1e-3)
    assert marrow["blood"]["parameters"]["rmblr"] == 1.0


def test_gtm_needs_the_resolution_file(pvc_study: PvcStudy, tmp_path: Path) -> None:
    from theradose.errors import InputError
    from theradose.pipeline.spec import load_study

    study = pvc_study.root / "bad.toml"
    study.write_text(
        _study_text(pvc_study.root, regions=ALL_REGIONS, pvc='[pvc]\nmethod = "gtm"\n', marrow=False)
    )
    with pytest.raises(InputError, match=r"pvc\.resolution"):
        load_study(study)
    study.write_text(
        _study_text(pvc_study.root, regions=ALL_REGIONS, pvc=GTM, marrow=False)
        + '\n[marrow]\nregion = "marrow_voi"\nvertebrae = ["L2", "L9"]\n'
    )
    with pytest.raises(InputError, match="L9"):
        load_study(study)
