"""Study pipeline wall time on a 128³ four-time-point SPECT/CT study, against reading its DICOM.

Figure: wall time of ``theradose run`` (all outputs: doses, NIfTI, RT Dose, SEG, HTML + PDF report) on a
128 × 128 × 128 synthetic study with 4 time points and 6 regions, cold (empty cache) and warm (re-run,
every step from the cache). Goal: ≤ 60 s cold on 2 cores.

Baseline: reading the same 4 SPECT + 4 CT series with :func:`theradose.io.dicom.read_series` in the same
process — the I/O any pipeline must pay. The ratio says how much the computation adds to it.

Run: ``PYTHONPATH=src python benchmarks/bench_pipeline.py``
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from theradose.imaging.volume import Volume

SHAPE = (128, 128, 128)
SPACING_MM = 4.8
TIMES_H = (4.0, 24.0, 96.0, 168.0)
INJECTION = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
#: label → (centre (k, j, i), radius in voxels, A0 MBq, effective half-life h)
REGIONS = {
    1: ((64, 60, 40), 22.0, 1200.0, 60.0),
    2: ((64, 70, 90), 9.0, 250.0, 40.0),
    3: ((64, 70, 100), 9.0, 250.0, 40.0),
    4: ((90, 50, 64), 6.0, 150.0, 80.0),
    5: ((40, 80, 60), 4.0, 100.0, 90.0),
    6: ((30, 60, 70), 3.0, 60.0, 100.0),
}


def write_study(root: Path) -> Path:
    from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, write_ct_series, write_nm_series
    from theradose.io.dicom.write import new_uid
    from theradose.io.nifti import write_nifti
    from theradose.units import mbq_to_bq

    affine = np.eye(4)
    affine[:3, :3] = np.diag([SPACING_MM] * 3)[::-1]
    affine[:3, 3] = (-300.0, -300.0, -300.0)
    k, j, i = np.indices(SHAPE)
    labels = np.zeros(SHAPE, dtype=np.int16)
    for label, (c, r, _a, _t) in REGIONS.items():
        labels[(k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= r * r] = label
    body = ((j - 64) / 60.0) ** 2 + ((i - 64) / 60.0) ** 2 <= 1.0
    hu = np.where(body, 40, -1000).astype(np.int16)
    voxel_ml = SPACING_MM**3 / 1000.0
    patient = PatientInfo(name="Bench^Patient", patient_id="BENCH")
    rp = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", 7400.0, INJECTION)
    frame = new_uid()
    rng = np.random.default_rng(1)
    for t in TIMES_H:
        when = INJECTION + timedelta(hours=t)
        conc = np.where(body, 2000.0, 0.0)
        for label, (_c, _r, a0, teff) in REGIONS.items():
            mask = labels == label
            conc[mask] = mbq_to_bq(a0 * math.exp(-math.log(2) / teff * t)) / (mask.sum() * voxel_ml)
        conc = conc * rng.normal(1.0, 0.05, SHAPE).clip(0.5, 1.5)
        uid = new_uid()
        write_ct_series(Volume(hu, affine, "HU", frame_uid=frame), root / f"tp{t:g}" / "ct", patient=patient,
                        study_uid=uid, frame_uid=frame, study_datetime=when)  # fmt: skip
        spect = Volume(conc.astype(np.float32), affine, "Bq/mL", frame_uid=frame, acquisition_datetime=when)
        write_nm_series(spect, root / f"tp{t:g}" / "spect", patient=patient, radiopharmaceutical=rp,
                        study_uid=uid, frame_uid=frame, study_datetime=when)  # fmt: skip
    write_nifti(Volume(labels, affine, "label"), root / "labels.nii.gz")
    tps = "\n".join(f'[[timepoints]]\nspect = "tp{t:g}/spect"\nct = "tp{t:g}/ct"\n' for t in TIMES_H)
    regions = "\n".join(f"region_{label} = {label}" for label in REGIONS)
    study = root / "study.toml"
    study.write_text(
        f'[patient]\nid = "BENCH"\n\n[administration]\nnuclide = "Lu-177"\nactivity_mbq = 7400\n'
        f'datetime = {INJECTION.isoformat()}\n\n{tps}\n[segmentation]\nsource = "nifti"\n'
        f'path = "labels.nii.gz"\n\n[segmentation.regions]\n{regions}\n',
        encoding="utf-8",
    )
    return study


def main() -> None:
    from theradose.io.dicom import read_series
    from theradose.pipeline.run import run_study

    root = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        study = write_study(root / "study")
        start = time.perf_counter()
        for t in TIMES_H:
            read_series(root / "study" / f"tp{t:g}" / "spect")
            read_series(root / "study" / f"tp{t:g}" / "ct")
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        run_study(study, root / "out")
        cold = time.perf_counter() - start
        start = time.perf_counter()
        warm_result = run_study(study, root / "out")
        warm = time.perf_counter() - start
        print(f"study: {SHAPE} voxels, {len(TIMES_H)} time points, {len(REGIONS)} regions")
        print(f"baseline (read 4 SPECT + 4 CT series): {baseline:.1f} s")
        print(f"pipeline cold (all outputs):           {cold:.1f} s  ratio {cold / baseline:.1f}x baseline")
        print(f"pipeline warm (cache hits: {len(warm_result.cache_hits)}):      {warm:.1f} s  "
              f"ratio {warm / baseline:.1f}x baseline")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
