"""``theradose dose kernel | voxel | dvh`` through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["THERADOSE_CACHE_DIR"] = str(tmp_path / "cache")
    return subprocess.run(
        [sys.executable, "-m", "theradose", "dose", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_kernel_json(tmp_path: Path) -> None:
    result = run(tmp_path, "kernel", "--nuclide", "Lu-177", "--voxel-mm", "4.42", "--size", "7", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["shape"] == [7, 7, 7]
    # Lanconelli et al. 2012 177Lu soft-tissue 4.42 mm: centre 0.226, face 3.39e-3 (see kernel tests), in
    # soft tissue of 1.04 g/cm³; the CLI's medium is the registry's 1.03 g/cm³: the self-dose per decay
    # scales with 1/voxel mass, so the published centre becomes 0.226 · 1.04/1.03.
    assert data["center_mgy_per_mbq_s"] == pytest.approx(0.226 * 1.04 / 1.03, rel=0.06)
    assert data["face_neighbour_mgy_per_mbq_s"] == pytest.approx(3.39e-3, rel=0.2)
    assert data["sum_mgy_per_mbq_s"] > data["center_mgy_per_mbq_s"]


def test_voxel_then_dvh(tmp_path: Path) -> None:
    n = 16
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    tia = np.zeros((n, n, n), dtype=np.float32)
    tia[4:12, 4:12, 4:12] = 5.0
    labels = np.zeros((n, n, n), dtype=np.int16)
    labels[4:12, 4:12, 4:12] = 1
    labels[0:2] = 2
    nib.save(nib.Nifti1Image(tia, affine), str(tmp_path / "tia.nii.gz"))
    nib.save(nib.Nifti1Image(labels, affine), str(tmp_path / "labels.nii.gz"))
    out = tmp_path / "dose.nii.gz"
    result = run(
        tmp_path, "voxel", "--tia", str(tmp_path / "tia.nii.gz"), "--nuclide", "Lu-177",
        "--engine", "local", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    # local: 5 MBq·h · 3.6e9 · 0.14792 MeV · 1.602e-13 J / 65.92e-6 kg (64 mm³ of 1.03 g/mL soft tissue)
    assert summary["dmax_gy"] == pytest.approx(5 * 3.6e9 * 0.14792 * 1.602176634e-13 / 65.92e-6, rel=3e-3)
    assert np.asarray(nib.load(str(out)).dataobj).shape == (n, n, n)
    result = run(tmp_path, "dvh", "--dose", str(out), "--labels", str(tmp_path / "labels.nii.gz"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["labels"]
    assert set(data) == {"1", "2"}
    assert data["1"]["dmean_gy"] == pytest.approx(summary["dmax_gy"], rel=1e-5)
    assert data["1"]["volume_ml"] == pytest.approx(512 * 0.064, rel=1e-6)
    assert data["2"]["dmax_gy"] == 0.0
    assert data["1"]["dvh"]["cumulative_fraction"][0] == 1.0


def test_voxel_mc_reports_uncertainty(tmp_path: Path) -> None:
    n = 12
    tia = np.zeros((n, n, n), dtype=np.float32)
    tia[3:9, 3:9, 3:9] = 2.0
    nib.save(nib.Nifti1Image(tia, np.diag([4.0, 4.0, 4.0, 1.0])), str(tmp_path / "tia.nii.gz"))
    args = ["voxel", "--tia", str(tmp_path / "tia.nii.gz"), "--nuclide", "Lu-177", "--engine", "mc"]
    result = run(tmp_path, *args, "--out", str(tmp_path / "d.nii.gz"), "--n-photons", "20000", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n_photons"] == 20000
    # photons are ~2 % of the dose here and carry all of its statistical uncertainty
    assert 0 < data["median_relative_uncertainty_source"] < 0.05


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    result = run(
        tmp_path, "voxel", "--tia", str(tmp_path / "missing.nii.gz"), "--nuclide", "Lu-177",
        "--out", str(tmp_path / "d.nii.gz"), "--json",
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: --tia file")
    result = run(tmp_path, "kernel", "--nuclide", "Lu-177", "--voxel-mm", "3", "--tissue", "lung")
    assert result.returncode == 2
    assert "--tissue" in result.stderr
