"""Acceptance of the QA methods on simulated phantoms with known truth (phantom package):
calibration factor within 2 %, recovery rising with sphere size, PVC of a 2 cm tumour within 10 %."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from theradose.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    try:
        main(list(args))
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def iec_curve(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A high-count IEC phantom acquisition (20 GBq, 60 views, OSEM 4 × 10 with AC and resolution
    modelling) and the RC curve fitted by ``theradose qa recovery``."""
    folder = tmp_path_factory.mktemp("iec") / "iec"
    main_args = [
        "phantom",
        "iec",
        "--out",
        str(folder),
        "--views",
        "60",
        "--activity-mbq",
        "20000",
        "--iterations",
        "4",
        "--subsets",
        "10",
        "--json",
    ]
    try:
        main(main_args)
    except SystemExit as exc:
        assert exc.code in (0, None)
    return folder


def test_calibration_factor_recovered_within_2_percent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "cyl"
    made = run_cli(capsys, "phantom", "cylinder", "--out", str(folder), "--views", "60", "--json")
    truth = json.loads((folder / "truth" / "truth.json").read_text())
    result = run_cli(
        capsys,
        "qa",
        "spect-calibration",
        str(folder / "spect"),
        "--activity-mbq",
        "500",
        "--reference-time",
        truth["acquisition_datetime"],
        "--phantom-volume-ml",
        str(made["phantom_volume_ml"]),
        "--json",
    )
    expected = truth["simulation"]["system_sensitivity_cps_per_mbq"]  # both heads, in air
    assert result["calibration_factor_cps_per_mbq"] == pytest.approx(expected, rel=0.02)
    assert result["sigma"] / result["calibration_factor_cps_per_mbq"] == pytest.approx(
        math.sqrt(1 / result["counts"] + 0.02**2), rel=1e-6
    )


def test_recovery_rises_with_sphere_size(iec_curve: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys, "qa", "recovery", str(iec_curve), "--out-curve", str(iec_curve / "rc.json"), "--json"
    )
    rcs = [s["recovery"] for s in result["spheres"]]
    assert [s["diameter_mm"] for s in result["spheres"]] == [10.0, 13.0, 17.0, 22.0, 28.0, 37.0]
    assert all(b > a for a, b in itertools.pairwise(rcs)), rcs
    assert 0.05 < rcs[0] < 0.4 and 0.6 < rcs[-1] < 1.05
    assert json.loads((iec_curve / "rc.json").read_text())["rc_inf"] == result["curve"]["rc_inf"]


def test_pvc_brings_2cm_tumour_within_10_percent(iec_curve: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 20 mm "tumour" — a size between the calibration spheres — at 10:1 in the IEC body background (the
    calibration spheres switched off), simulated with noise and reconstructed like the IEC acquisition: the
    mean in its true volume (fractional voxel weights, as the RC measurement) is far below the truth, and
    divided by RC(V) of the fitted IEC curve it is within 10 %."""
    from theradose.phantoms.osem import reconstruct
    from theradose.phantoms.physical import iec_body_phantom
    from theradose.phantoms.spect import default_system, mu_map_from_hu, simulate_spect
    from theradose.qa.spect import RecoveryCurve, partial_volume_correct, sphere_volume_ml

    curve_json = run_cli(capsys, "qa", "recovery", str(iec_curve), "--json")["curve"]
    curve = RecoveryCurve(
        curve_json["rc_inf"],
        curve_json["v50_ml"],
        curve_json["slope"],
        curve_json["v_min_ml"],
        curve_json["v_max_ml"],
    )
    phantom = iec_body_phantom(spacing_mm=4.8, sphere_to_background=10.0, activity_mbq=20000.0)
    background = phantom.background_concentration_bq_per_ml
    truth = json.loads((iec_curve / "truth" / "truth.json").read_text())
    centre = next(s["centre_mm"] for s in truth["spheres"] if s["diameter_mm"] == 22.0)
    x, y, z = phantom.grid.axes_mm()
    step = phantom.grid.spacing_mm[0]
    occupancy = np.zeros(phantom.grid.shape)
    for dz in (-1, 0, 1):  # fractional occupancy of the 20 mm sphere by 3 x 3 x 3 sub-sampling
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                zz = z[:, None, None] + dz * step / 3 - centre[2]
                yy = y[None, :, None] + dy * step / 3 - centre[1]
                xx = x[None, None, :] + dx * step / 3 - centre[0]
                occupancy += (zz**2 + yy**2 + xx**2) <= 10.0**2
    occupancy /= 27.0
    warm = np.where(phantom.labels > 0, background, 0.0)
    warm = np.where(phantom.concentration_bq_per_ml < 0.5 * background, phantom.concentration_bq_per_ml, warm)
    tumour = 10.0 * background
    concentration = warm * (1 - occupancy) + tumour * occupancy
    activity_mbq = concentration * (step**3 / 1000.0) / 1e6
    mu = mu_map_from_hu(phantom.hu)
    system = default_system().with_(n_views=60)
    acquisition = simulate_spect(activity_mbq, mu, phantom.grid.spacing_mm, system=system, seed=3)
    image = reconstruct(acquisition, mu, iterations=4, subsets=10).concentration_bq_per_ml
    measured = float(np.sum(occupancy * image) / np.sum(occupancy))
    corrected = partial_volume_correct(measured, sphere_volume_ml(20.0), curve)
    assert measured < 0.6 * tumour
    assert corrected == pytest.approx(tumour, rel=0.10)
