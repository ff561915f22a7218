"""NIfTI round trips (RAS/LPS and axis order) and the ``theradose dicom`` command line."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from cli_runner import run_cli
from theradose.errors import InputError
from theradose.imaging import Volume
from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, write_ct_series, write_nm_series
from theradose.io.nifti import read_nifti, write_nifti

T_ACQ = datetime(2026, 11, 20, 10, 30, tzinfo=timezone(timedelta(hours=1)))


def test_nifti_round_trip_and_ras_convention(tmp_path: Path) -> None:
    values = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    vol = Volume.from_spacing(values, (3.0, 2.0, 1.0), (10.0, 20.0, 30.0), unit="Bq/mL")
    path = write_nifti(vol, tmp_path / "a.nii.gz")
    image = nib.load(str(path))
    # NIfTI voxel (i=column 3, j=row 2, k=slice 1) -> RAS (-(10+3), -(20+4), 30+3) by hand.
    np.testing.assert_allclose(image.affine @ [3, 2, 1, 1], [-13.0, -24.0, 33.0, 1.0])
    assert np.asarray(image.dataobj)[3, 2, 1] == values[1, 2, 3]
    back = read_nifti(path)
    assert back.unit == "Bq/mL"
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)
    np.testing.assert_array_equal(back.array, values)
    labels = vol.with_array((values > 10).astype(np.uint8), unit="label")
    assert read_nifti(write_nifti(labels, tmp_path / "l.nii")).array.dtype == np.uint8


def test_nifti_errors(tmp_path: Path) -> None:
    vol = Volume.from_spacing(np.zeros((2, 2, 2)), (1, 1, 1), unit="HU")
    with pytest.raises(InputError, match=r"\.nii"):
        write_nifti(vol, tmp_path / "a.img")
    with pytest.raises(InputError, match="does not exist"):
        read_nifti(tmp_path / "missing.nii")
    plain = tmp_path / "plain.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), dtype=np.float32), np.eye(4)), str(plain))
    with pytest.raises(InputError, match="does not record a unit"):
        read_nifti(plain)
    assert read_nifti(plain, unit="HU").unit == "HU"


def test_cli_inspect_and_convert(tmp_path: Path) -> None:
    patient = PatientInfo()
    ct = Volume.from_spacing(np.full((3, 4, 5), 40.0), (2.0, 1.0, 1.0), unit="HU", acquisition_datetime=T_ACQ)
    write_ct_series(
        ct, tmp_path / "dicom" / "ct", patient=patient, series_uid="1.2.826.0.1.3680043.8.498.101"
    )
    lu = RadiopharmaceuticalInfo("Lu-177", "177Lu-DOTATATE", 7400.0, T_ACQ - timedelta(hours=24))
    counts = Volume.from_spacing(
        np.full((2, 4, 4), 1200.0), (4.0, 4.0, 4.0), unit="counts", acquisition_datetime=T_ACQ
    )
    write_nm_series(
        counts,
        tmp_path / "dicom" / "nm",
        patient=patient,
        radiopharmaceutical=lu,
        series_uid="1.2.826.0.1.3680043.8.498.102",
        frame_duration_s=20.0,
        n_projections=60,
    )
    result = run_cli("dicom", "inspect", str(tmp_path / "dicom"), "--json")
    assert result.returncode == 0, result.stderr
    listing = {s["series_uid"]: s for s in json.loads(result.stdout)}
    required = {
        "series_uid",
        "modality",
        "units",
        "shape",
        "spacing_mm",
        "acquisition_datetime",
        "nuclide",
        "injected_activity_mbq",
        "n_files",
    }
    assert all(required <= set(s) for s in listing.values())
    nm = listing["1.2.826.0.1.3680043.8.498.102"]
    assert (nm["modality"], nm["units"], nm["shape"], nm["nuclide"]) == ("NM", "counts", [2, 4, 4], "Lu-177")
    assert nm["injected_activity_mbq"] == 7400.0 and nm["n_files"] == 1
    assert listing["1.2.826.0.1.3680043.8.498.101"]["n_files"] == 3

    out = tmp_path / "spect.nii.gz"
    result = run_cli(
        "dicom",
        "convert",
        str(tmp_path / "dicom"),
        "--series",
        "1.2.826.0.1.3680043.8.498.102",
        "--out",
        str(out),
    )
    assert result.returncode == 2
    assert "calibration" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(
        "dicom",
        "convert",
        str(tmp_path / "dicom"),
        "--series",
        "1.2.826.0.1.3680043.8.498.102",
        "--out",
        str(out),
        "--calibration-cps-per-mbq",
        "10",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["unit"] == "Bq/mL"
    # 1200 counts / (1200 s * 10 cps/MBq) = 0.1 MBq in 0.064 mL -> 1.5625e6 Bq/mL (hand calculation).
    np.testing.assert_allclose(read_nifti(out).array, 1.5625e6, rtol=1e-6)


@pytest.mark.parametrize(
    "args", [("dicom", "inspect", "/no/such/folder"), ("dicom", "convert", "/no/such", "--out", "x.nii")]
)
def test_cli_bad_input_is_one_line(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_cli_damaged_and_non_image_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real damaged/non-image files from pydicom through the CLI: exit 2, one 'error:' line, no traceback."""
    import shutil

    from pydicom.data import get_testdata_file

    from theradose.cli import main

    cases = {
        "MR_truncated.dcm": "truncated",
        "rtstruct.dcm": "no image series",
        "rtplan.dcm": "no image series",
    }
    for name, expected in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(str(get_testdata_file(name, download=False)), folder / name)
        with pytest.raises(SystemExit) as info:
            main(["dicom", "convert", str(folder), "--out", str(tmp_path / "x.nii.gz")])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert expected in err and err.startswith("error: ") and "Traceback" not in err
