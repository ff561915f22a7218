"""PACS end to end against the real Orthanc fixture: query a patient's series, retrieve them, write a
study file, run the pipeline, store the RT Dose and SEG back, and find them in Orthanc (REST)."""

from __future__ import annotations

import io
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from theradose.imaging.volume import Volume
from theradose.io.dicom import RadiopharmaceuticalInfo
from theradose.io.nifti import write_nifti
from theradose.io.pacs import find_series, retrieve_patient_timepoints, store, timepoints_toml
from theradose.pipeline.run import run_study
from theradose.units import mbq_to_bq

pytestmark = pytest.mark.orthanc

INJECTION = datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
TIMES_H = (4.0, 28.0, 100.0)
SHAPE = (16, 20, 20)
SPACING_MM = 6.0
#: One uniform sphere: (centre voxel, radius in voxels, A0 MBq, effective half-life h).
KIDNEY = ((8, 10, 10), 4.0, 400.0, 50.0)
PATIENT_ID = "TD-E2E"


def _study_header() -> str:
    return f"""seed = 3
cycle = 1

[patient]
id = "{PATIENT_ID}"
name = "Test^{PATIENT_ID}"

[administration]
nuclide = "Lu-177"
radiopharmaceutical = "177Lu-PSMA-617"
activity_mbq = 7400
datetime = {INJECTION.isoformat()}

[calibration]
mode = "bqml"

[segmentation]
source = "nifti"
path = "labels.nii.gz"

[segmentation.regions]
kidneys = 1

[kinetics]
model = "mono"                 # three points: AICc cannot rank multi-parameter models

[dose]
engines = ["local"]

[output]
formats = ["json", "dicom"]

"""


def _phantom(tmp_path: Path) -> tuple[list[tuple[Volume, Volume]], np.ndarray, float]:
    """Three time points of one sphere with mono-exponential washout on a soft-tissue body; the labels
    are written as NIfTI on the same grid. Returns the volumes, labels and the exact TIA (MBq·h)."""
    (centre, radius, a0_mbq, teff_h) = KIDNEY
    k, j, i = np.indices(SHAPE)
    inside = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius**2
    voxel_ml = SPACING_MM**3 / 1000.0
    origin = (-60.0, -60.0, -48.0)
    volumes = []
    frame = None
    for t in TIMES_H:
        acquired = INJECTION + timedelta(hours=t)
        conc = np.zeros(SHAPE)
        conc[inside] = mbq_to_bq(a0_mbq * math.exp(-math.log(2) / teff_h * t)) / (inside.sum() * voxel_ml)
        ct = Volume.from_spacing(
            np.full(SHAPE, 0.0), spacing_mm=(SPACING_MM,) * 3, origin_mm=origin, unit="HU",
            acquisition_datetime=acquired,
        )  # fmt: skip
        nm = Volume.from_spacing(
            conc.astype(np.float32), spacing_mm=(SPACING_MM,) * 3, origin_mm=origin, unit="Bq/mL",
            acquisition_datetime=acquired,
        )  # fmt: skip
        volumes.append((ct, nm))
        frame = nm
    assert frame is not None
    labels = inside.astype(np.int16)
    write_nifti(frame.with_array(labels, unit="label"), tmp_path / "labels.nii.gz")
    return volumes, labels, a0_mbq * teff_h / math.log(2)


def test_query_retrieve_run_store_find(orthanc, seed_patient, tmp_path: Path) -> None:
    volumes, labels, tia_mbq_h = _phantom(tmp_path)
    rp = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", 7400.0, INJECTION)
    seeded = seed_patient(PATIENT_ID, volumes=volumes, radiopharmaceutical=rp)

    # query: one NM and one CT series per time point
    series = find_series(orthanc.node, patient_id=PATIENT_ID)
    assert sorted(s.modality for s in series) == ["CT"] * 3 + ["NM"] * 3
    assert {s.study_uid for s in series} == {tp.study_uid for tp in seeded.timepoints}

    # retrieve and write the study file
    timepoints = retrieve_patient_timepoints(orthanc.node, PATIENT_ID, tmp_path / "in")
    assert len(timepoints) == 3
    study = tmp_path / "study.toml"
    study.write_text(_study_header() + timepoints_toml(timepoints, base_dir=tmp_path), encoding="utf-8")

    # run the pipeline on the retrieved series
    result = run_study(study, tmp_path / "out", use_cache=False)
    record = result.doses.to_dict()
    (kidneys,) = record["regions"]
    assert record["timepoints_h"] == list(TIMES_H)
    assert kidneys["tia_mbq_h"] == pytest.approx(tia_mbq_h, rel=5e-3)  # A0·T_eff/ln2, exact washout
    outputs = [tmp_path / "out" / "dose_local.dcm", tmp_path / "out" / "segmentation.dcm"]
    assert all(p.is_file() for p in outputs)

    # store the output folder back as it is, with a README and a DICOMDIR beside the results: the DICOM
    # instances (RT Dose and SEG) are sent, the rest is left out; find them in Orthanc (REST API)
    (tmp_path / "out" / "README.txt").write_text("results of the cycle 1 dosimetry\n", encoding="utf-8")
    from pydicom.data import get_testdata_file

    dicomdir = get_testdata_file("DICOMDIR", download=False)
    assert dicomdir is not None
    (tmp_path / "out" / "DICOMDIR").write_bytes(Path(str(dicomdir)).read_bytes())
    sent = store(orthanc.node, [tmp_path / "out"])
    assert sorted(p.name for p in (i.path for i in sent.instances)) == ["dose_local.dcm", "segmentation.dcm"]
    assert {p.name for p, _ in sent.skipped} >= {"README.txt", "DICOMDIR", "doses.json"}
    sop_uids = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in outputs}
    assert sop_uids <= orthanc.sop_instance_uids(PATIENT_ID)
    found = {
        item["MainDicomTags"]["Modality"]
        for item in orthanc.find_instances({"PatientID": PATIENT_ID}, level="Series")
    }
    assert {"RTDOSE", "SEG", "NM", "CT"} <= found
    # one study per patient and time point: the RT Dose and the SEG join the study of the reference time
    # point (its SPECT and CT), no study of their own
    studies = orthanc.find_instances({"PatientID": PATIENT_ID}, level="Study")
    assert len(studies) == len(TIMES_H)
    for path in outputs:
        header = dcmread(path, stop_before_pixels=True)
        assert header.StudyInstanceUID == seeded.timepoints[0].study_uid
        assert header.PatientID == PATIENT_ID
    # the RT Dose read back from Orthanc holds the pipeline's dose grid: its mean over the kidney voxels
    # equals the doses.json kidney dose (mass-weighted mean with uniform density)
    import httpx

    rtdose_uid = str(dcmread(outputs[0], stop_before_pixels=True).SOPInstanceUID)
    (instance,) = orthanc.find_instances({"SOPInstanceUID": rtdose_uid})
    response = httpx.get(f"{orthanc.http_url}/instances/{instance['ID']}/file", timeout=30.0)
    response.raise_for_status()
    back = dcmread(io.BytesIO(response.content))
    dose_gy = back.pixel_array.astype(np.float64) * float(back.DoseGridScaling)
    assert dose_gy.shape == SHAPE
    assert float(dose_gy[labels == 1].mean()) == pytest.approx(kidneys["doses"]["local"]["dose_gy"], rel=1e-3)
    assert json.loads((tmp_path / "out" / "doses.json").read_text())["patient"]["id"] == PATIENT_ID
