"""Load time of a 512x512x300 CT series and a 128^3 multi-frame SPECT, against plain pydicom.

Run: ``PYTHONPATH=src python benchmarks/bench_io.py``. The series are generated into a temporary folder
(about 160 MB). The baseline, in the same process, is what a script would do by hand: ``dcmread`` every
file, ``pixel_array`` with the rescale applied, sort by slice position and stack.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom

from theradose.imaging import Volume
from theradose.io.dicom import (
    PatientInfo,
    RadiopharmaceuticalInfo,
    read_series,
    write_ct_series,
    write_nm_series,
)


def baseline(folder: Path) -> np.ndarray:
    slices = []
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        values = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        if values.ndim == 2:
            values = values[np.newaxis]
        z = (
            float(ds.DetectorInformationSequence[0].ImagePositionPatient[2])
            if "DetectorInformationSequence" in ds
            else float(ds.ImagePositionPatient[2])
        )
        slices.append((z, values))
    slices.sort(key=lambda item: item[0])
    return np.concatenate([v for _, v in slices])


def best_of(function, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(1)
    when = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ct = Volume.from_spacing(
            rng.integers(-1024, 2000, size=(300, 512, 512), dtype=np.int16),
            (1.25, 0.98, 0.98),
            unit="HU",
            acquisition_datetime=when,
        )
        write_ct_series(ct, root / "ct", patient=PatientInfo())
        spect = Volume.from_spacing(
            rng.gamma(2.0, 1.0e4, size=(128, 128, 128)),
            (4.42, 4.42, 4.42),
            unit="Bq/mL",
            acquisition_datetime=when,
        )
        lu = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", 7400.0, when)
        write_nm_series(spect, root / "nm", patient=PatientInfo(), radiopharmaceutical=lu)
        for name, folder, repeats in (("CT 512x512x300", root / "ct", 3), ("SPECT 128^3", root / "nm", 5)):
            ours = best_of(lambda folder=folder: read_series(folder), repeats)
            base = best_of(lambda folder=folder: baseline(folder), repeats)
            check = read_series(folder).array
            assert np.allclose(check, baseline(folder), rtol=1e-6, atol=1e-3)
            print(f"{name}: theradose read_series {ours:.3f} s, plain pydicom loop {base:.3f} s, ", end="")
            print(f"ratio {ours / base:.2f}")


if __name__ == "__main__":
    main()
