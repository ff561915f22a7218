"""A small synthetic serial SPECT/CT study written as DICOM, with its analytic truth.

Three regions with uniform activity and mono-exponential washout, A_r(t) = A_r0·exp(−λ_r t), so the
time-integrated activity of each region is A_r0/λ_r exactly (no blur, no noise).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from theradose.imaging.volume import Volume

INJECTION = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
SHAPE = (20, 32, 32)
SPACING_MM = 8.0
TIMES_H = (4.0, 24.0, 72.0, 168.0)
#: Region name → (label, centre (k, j, i) in voxels, radius in voxels, A0 MBq, effective half-life h).
REGIONS = {
    "liver": (1, (10, 14, 10), 5.5, 900.0, 60.0),
    "kidney_left": (2, (10, 16, 23), 3.0, 300.0, 40.0),
    "tumour_1": (3, (6, 22, 18), 2.5, 200.0, 90.0),
}
SOFT_TISSUE_HU = 40.0


@dataclass(frozen=True)
class SyntheticStudy:
    root: Path
    study_toml: Path
    labels: np.ndarray
    tia_mbq_h: dict[str, float]
    n_voxels: dict[str, int]


def _affine() -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.diag([SPACING_MM] * 3)[::-1]  # axis 0 (slice) → z, axis 1 (row) → y, axis 2 (col) → x
    affine[:3, 3] = (-128.0, -128.0, -80.0)
    return affine


def make_labels() -> np.ndarray:
    k, j, i = np.indices(SHAPE)
    labels = np.zeros(SHAPE, dtype=np.int16)
    for label, centre, radius, _a0, _t in REGIONS.values():
        inside = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius**2
        labels[inside] = label
    return labels


def study_toml_text(root: Path, *, extra: str = "", engines: str = '["local"]', times=TIMES_H) -> str:
    tps = "\n".join(f'[[timepoints]]\nspect = "tp_{t:g}h/spect"\nct = "tp_{t:g}h/ct"\n' for t in times)
    return f"""seed = 7
cycle = 1

[patient]
id = "SYN-001"
name = "Synthetic^Patient"

[administration]
nuclide = "Lu-177"
radiopharmaceutical = "177Lu-PSMA-617"
activity_mbq = 7400
datetime = {INJECTION.isoformat()}

{tps}
[calibration]
mode = "bqml"

[segmentation]
source = "nifti"
path = "labels.nii.gz"
tumours = ["tumour_1"]

[segmentation.regions]
liver = 1
kidney_left = 2
tumour_1 = 3
kidneys = [2]

[kinetics]
model = "auto"

[dose]
engines = {engines}
{extra}"""


def write_study(root: Path, *, times: tuple[float, ...] = TIMES_H) -> SyntheticStudy:
    from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, write_ct_series, write_nm_series
    from theradose.io.dicom.write import new_uid
    from theradose.io.nifti import write_nifti
    from theradose.units import mbq_to_bq

    root.mkdir(parents=True, exist_ok=True)
    labels = make_labels()
    affine = _affine()
    _k, j, i = np.indices(SHAPE)
    body = ((j - 16) / 14.5) ** 2 + ((i - 16) / 14.5) ** 2 <= 1.0
    hu = np.where(body, SOFT_TISSUE_HU, -1000.0).astype(np.int16)
    voxel_ml = SPACING_MM**3 / 1000.0
    patient = PatientInfo(name="Synthetic^Patient", patient_id="SYN-001")
    rp = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", 7400.0, INJECTION)
    frame = new_uid()
    n_voxels = {name: int(np.count_nonzero(labels == spec[0])) for name, spec in REGIONS.items()}
    for t in times:
        acquired = INJECTION + timedelta(hours=t)
        conc = np.zeros(SHAPE, dtype=np.float64)
        for name, (label, _c, _r, a0, teff) in REGIONS.items():
            region_mbq = a0 * math.exp(-math.log(2) / teff * t)
            conc[labels == label] = mbq_to_bq(region_mbq) / (n_voxels[name] * voxel_ml)
        study_uid = new_uid()
        ct = Volume(hu, affine, "HU", frame_uid=frame, acquisition_datetime=acquired)
        write_ct_series(ct, root / f"tp_{t:g}h" / "ct", patient=patient, study_uid=study_uid, frame_uid=frame)
        spect = Volume(
            conc.astype(np.float32), affine, "Bq/mL", frame_uid=frame, acquisition_datetime=acquired
        )
        write_nm_series(
            spect, root / f"tp_{t:g}h" / "spect", patient=patient, radiopharmaceutical=rp,
            study_uid=study_uid, frame_uid=frame,
        )  # fmt: skip
    write_nifti(Volume(labels, affine, "label"), root / "labels.nii.gz")
    study = root / "study.toml"
    study.write_text(study_toml_text(root, times=times), encoding="utf-8")
    tia = {name: a0 * teff / math.log(2) for name, (_l, _c, _r, a0, teff) in REGIONS.items()}
    (root / "truth.json").write_text(json.dumps(tia), encoding="utf-8")
    return SyntheticStudy(root, study, labels, tia, n_voxels)


@pytest.fixture(scope="session")
def synthetic_study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    """The synthetic study, written once per session (tests copy it if they modify it)."""
    return write_study(tmp_path_factory.mktemp("study") / "study")


@pytest.fixture(scope="session")
def json_only_run(synthetic_study: SyntheticStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output folder of one pipeline run of the synthetic study with only the JSON outputs."""
    from theradose.pipeline.run import run_study

    study = synthetic_study.root / "study_json_outputs.toml"
    study.write_text(
        study_toml_text(synthetic_study.root, extra='\n[output]\nformats = ["json"]\n'), encoding="utf-8"
    )
    out = tmp_path_factory.mktemp("json_only") / "out"
    run_study(study, out, use_cache=False)
    return out
