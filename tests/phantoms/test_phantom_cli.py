"""CLI and files: a small study and an IEC phantom written as DICOM + truth, read back by the readers."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_runner import run_cli as run
from theradose.cli import main
from theradose.io.dicom import discover_series, read_series
from theradose.io.nifti import read_nifti


def run_here(*args: str) -> dict[str, object]:
    """The CLI in this process (reuses compiled projector kernels); returns the parsed --json output."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main([*args, "--json"])
    result: dict[str, object] = json.loads(buffer.getvalue())
    return result


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("cli") / "patient"
    summary = run_here(
        "phantom",
        "create",
        "--out",
        str(out),
        "--grid",
        "40",
        "--voxel-mm",
        "12",
        "--slices",
        "40",
        "--timepoints-h",
        "4,48",
        "--tumours",
        "2",
        "--views",
        "24",
        "--subsets",
        "4",
        "--iterations",
        "2",
        "--seed",
        "3",
        "--scatter",
    )
    return out, summary


def test_create_writes_the_clinic_layout_and_truth(study_dir: tuple[Path, dict[str, object]]) -> None:
    out, summary = study_dir
    assert sorted(p.name for p in out.iterdir()) == ["tp_48h", "tp_4h", "truth"]
    for tp in ("tp_4h", "tp_48h"):
        assert len(list((out / tp / "ct").glob("*.dcm"))) == 40
        assert len(list((out / tp / "spect").glob("*.dcm"))) == 1
    truth = json.loads((out / "truth" / "truth.json").read_text())
    assert truth["seed"] == 3 and truth["tracer"] == "psma"
    assert truth["spect"]["scatter"] == "convolution"
    assert truth["dose_engine"]["name"] == "vsv"
    assert truth["spect"]["reconstruction"]["scatter_correction"] == "convolution"
    kidneys = truth["regions"]["kidneys"]
    assert kidneys["mass_g"] > 0 and kidneys["tia_mbq_h"] > 0 and kidneys["dose_gy"] > 0
    assert truth["label_table"]["kidney_left_cortex"] == 5
    assert summary["regions"]["kidneys"]["dose_gy"] == pytest.approx(kidneys["dose_gy"])  # type: ignore[index]
    # no temporary folder left next to the result
    assert [p.name for p in out.parent.iterdir()] == ["patient"]


def test_written_series_are_quantitative_and_on_the_grid(study_dir: tuple[Path, dict[str, object]]) -> None:
    out, _ = study_dir
    series = discover_series(out / "tp_4h")
    assert {s.modality for s in series} == {"CT", "NM"}
    nm = next(s for s in series if s.modality == "NM")
    assert nm.units == "Bq/mL" and nm.injected_activity_mbq == pytest.approx(7400.0)
    assert nm.nuclide == "Lu-177"
    spect = read_series(out / "tp_4h" / "spect")
    labels = read_nifti(out / "truth" / "labels.nii.gz")
    assert spect.shape == labels.shape
    assert np.allclose(spect.affine, labels.affine, atol=1e-3)
    truth = json.loads((out / "truth" / "truth.json").read_text())
    # total reconstructed activity ≈ true activity in the body at 4 h (OSEM preserves counts; 15 %)
    total_true_mbq = sum(
        truth["regions"][n]["activity_mbq_at_timepoints"][0]
        for n in truth["label_table"]
        if n in truth["regions"] and n != "background"
    )
    total_rec_mbq = float(spect.array.sum()) * spect.voxel_volume_ml / 1e6
    assert total_rec_mbq == pytest.approx(total_true_mbq, rel=0.15)


def test_refuses_to_overwrite_and_reports_bad_input(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    result = run("phantom", "create", "--out", str(tmp_path / "full"), "--grid", "16", "--json")
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr
    result = run("phantom", "create", "--out", str(tmp_path / "new"), "--tracer", "fdg", "--json")
    assert result.returncode == 2 and "--tracer" in result.stderr
    result = run("phantom", "create", "--out", str(tmp_path / "new"), "--timepoints-h", "4,x", "--json")
    assert result.returncode == 2 and "--timepoints-h" in result.stderr
    assert not (tmp_path / "new").exists()


def test_iec_cli_writes_a_phantom_the_qa_package_can_measure(tmp_path: Path) -> None:
    """The written IEC SPECT is found and measured by theradose.qa (an independent sphere locator)."""
    from theradose.qa.spect import iec_recovery, locate_iec_spheres

    out = tmp_path / "iec"
    summary: dict[str, Any] = run_here(
        "phantom",
        "iec",
        "--out",
        str(out),
        "--views",
        "60",
        "--subsets",
        "6",
        "--iterations",
        "4",
        "--activity-mbq",
        "500",
        "--seed",
        "4",
    )
    assert summary["total_activity_mbq"] == pytest.approx(500.0, rel=1e-6)
    assert summary["sphere_bq_per_ml"] == pytest.approx(10.0 * summary["background_bq_per_ml"])
    truth = json.loads((out / "truth" / "truth.json").read_text())
    assert [s["diameter_mm"] for s in truth["spheres"]] == [10.0, 13.0, 17.0, 22.0, 28.0, 37.0]
    # 37 mm sphere: 4/3·π·1.85³ = 26.52 mL
    assert truth["spheres"][-1]["volume_ml"] == pytest.approx(26.52, rel=1e-3)
    image = read_series(out / "spect")
    assert image.unit == "Bq/mL"
    centres = locate_iec_spheres(image)
    for sphere, found in list(zip(truth["spheres"], centres, strict=True))[2:]:
        assert np.linalg.norm(np.asarray(sphere["centre_mm"]) - found) < 4.8, sphere["diameter_mm"]
    qa = iec_recovery(image, sphere_concentration_bq_per_ml=truth["sphere_concentration_bq_per_ml"])
    ours = summary["recovery_coefficients"]
    for r in qa[2:]:
        assert r.recovery == pytest.approx(ours[f"sphere_{int(r.diameter_mm)}mm"], abs=0.06)


def test_interrupted_write_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while writing removes the temporary folder; the target never appears half-written."""
    import theradose.io.dicom as dicom
    from theradose.io.phantoms import write_patient_study
    from theradose.phantoms.spect import default_system
    from theradose.phantoms.study import simulate_patient_study

    study = simulate_patient_study(
        grid=16,
        voxel_mm=30.0,
        slices=10,
        timepoints_h=(4.0, 24.0),
        tumours=0,
        system=default_system().with_(n_views=8),
        iterations=1,
        subsets=2,
        seed=2,
    )

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(dicom, "write_nm_series", broken)
    with pytest.raises(OSError, match="disk full"):
        write_patient_study(study, tmp_path / "study")
    assert list(tmp_path.iterdir()) == []
