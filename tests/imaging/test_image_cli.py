"""``theradose image register`` and ``theradose image segment`` on NIfTI phantoms (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from theradose.cli import main
from theradose.imaging import Volume
from theradose.imaging.register import apply_transform
from theradose.io.nifti import read_nifti, write_nifti


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_register_cli(tmp_path: Path, ct_phantom: Volume, capsys: pytest.CaptureFixture[str]) -> None:
    shift = sitk.TranslationTransform(3, (0.0, 0.0, 0.0))
    shift.SetOffset((-5.0, 4.0, 0.0))  # moving image = fixed shifted by (+5, -4, 0) mm
    moving = apply_transform(ct_phantom, shift, ct_phantom)
    moving = moving.with_array(np.where(moving.array == 0, -1000.0, moving.array).astype(np.float32))
    write_nifti(ct_phantom, tmp_path / "ct0.nii.gz")
    write_nifti(moving, tmp_path / "ct1.nii.gz")
    code, out, err = run(
        capsys,
        "image",
        "register",
        "--fixed",
        str(tmp_path / "ct0.nii.gz"),
        "--moving",
        str(tmp_path / "ct1.nii.gz"),
        "--out",
        str(tmp_path / "t.tfm"),
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    np.testing.assert_allclose(result["translation_mm"], [5.0, -4.0, 0.0], atol=1.0)
    assert result["dice_body_after"] > result["dice_body_before"]
    assert (tmp_path / "t.tfm").is_file()


def test_segment_cli(
    tmp_path: Path, ct_phantom: Volume, spect_phantom: Volume, capsys: pytest.CaptureFixture[str]
) -> None:
    write_nifti(ct_phantom, tmp_path / "ct.nii.gz")
    write_nifti(spect_phantom, tmp_path / "spect.nii.gz")
    code, out, err = run(
        capsys,
        "image",
        "segment",
        "--ct",
        str(tmp_path / "ct.nii.gz"),
        "--spect",
        str(tmp_path / "spect.nii.gz"),
        "--out",
        str(tmp_path / "labels.nii.gz"),
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    names = {r["label"]: r["name"] for r in result["regions"]}
    assert names[1] == "body" and names[10] == "uptake 1"
    labels = read_nifti(tmp_path / "labels.nii.gz")
    assert labels.unit == "label" and labels.same_grid(ct_phantom)
    code, _, err = run(
        capsys,
        "image",
        "segment",
        "--ct",
        str(tmp_path / "ct.nii.gz"),
        "--out",
        str(tmp_path / "x.nii.gz"),
        "--method",
        "magic",
    )
    assert code == 2 and err.startswith("error: --method")
    code, _, err = run(
        capsys, "image", "segment", "--ct", str(tmp_path / "none"), "--out", str(tmp_path / "x.nii")
    )
    assert code == 2 and "does not exist" in err
