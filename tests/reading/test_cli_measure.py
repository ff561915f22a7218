"""``theradose read measure``: a PET series (BQML, per-slice rescale) + a NIfTI label map -> lesion table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from theradose.cli import main
from theradose.io.dicom import read_series
from theradose.io.nifti import write_nifti
from theradose.reading.lesions import read_lesion_csv

from .conftest import write_pet_series

SCALE = 2.763367e-4  # 70 kg, 3.7e8 Bq F-18, 3600 s (hand calculation in test_suv.py)


def _phantom(tmp_path: Path, **header: object) -> tuple[Path, Path]:
    n0, n1, n2 = 8, 16, 16
    k, j, i = np.indices((n0, n1, n2))
    lesion = (k - 4) ** 2 + (j - 5) ** 2 + (i - 5) ** 2 <= 4  # 4 mm voxels, radius 8 mm
    liver = (k >= 2) & (k < 6) & (j >= 9) & (j < 14) & (i >= 9) & (i < 14)
    activity = np.full((n0, n1, n2), 2000.0)
    activity[lesion] = 20000.0
    activity[liver] = 5000.0
    folder = tmp_path / "pet"
    write_pet_series(folder, activity, **header)  # type: ignore[arg-type]
    pet = read_series(folder)
    labels = np.zeros(activity.shape, dtype=np.int16)
    labels[lesion] = 1
    labels[liver] = 2
    nifti = write_nifti(pet.with_array(labels, unit="label"), tmp_path / "labels.nii.gz")
    return folder, nifti


def test_measure_json_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, nifti = _phantom(tmp_path)
    out = tmp_path / "lesions.csv"
    args = ["read", "measure", str(folder), str(nifti), "--name", "1=L1", "--name", "2=liver"]
    main([*args, "--out", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    lesion, liver = data["regions"]
    # 20000 Bq/mL x 2.763367e-4 g/Bq = 5.52673; 5000 Bq/mL -> 1.381684 (uint16 rounding < 1e-4 relative)
    assert lesion["name"] == "L1"
    assert lesion["suv_max"] == pytest.approx(20000 * SCALE, rel=1e-4)
    assert liver["suv_mean"] == pytest.approx(5000 * SCALE, rel=1e-4)
    assert liver["volume_ml"] == pytest.approx(4 * 5 * 5 * 0.064)  # 100 voxels of 4x4x4 mm
    table = read_lesion_csv(out)
    assert table.lesions[0].lesion_id == "L1"
    assert table.reference_suv("liver", needed_for="test") == pytest.approx(5000 * SCALE, rel=1e-4)


def test_measure_admin_series_uses_matching_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # ADMIN-corrected pixels are activity at injection; the series reader brings them to the series time
    # (x 2^(-3600/6586.2)) and the SUV scale must then use the dose at that time: SUV is unchanged, 20000 x
    # 70000 / 3.7e8 = 3.78378
    folder, nifti = _phantom(tmp_path, decay_correction="ADMIN")
    main(["read", "measure", str(folder), str(nifti), "--name", "1=L1", "--name", "2=liver", "--json"])
    lesion = json.loads(capsys.readouterr().out)["regions"][0]
    assert lesion["suv_max"] == pytest.approx(20000 * 70000 / 3.7e8, rel=1e-4)


def test_measure_bad_name_option_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, nifti = _phantom(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["read", "measure", str(folder), str(nifti), "--name", "one=L1"])
    assert info.value.code == 2
    assert "--name" in capsys.readouterr().err
