"""Stage adapters with hand-computed cases: label partitions, voxel TIA, DVH, recovery-curve files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.imaging.pvc import ContrastRecovery, recovery_corrected_tac
from theradose.pipeline import stages


def test_partition_from_overlapping_masks() -> None:
    a = np.array([[[True, True, False, False]]])
    b = np.array([[[False, True, True, False]]])
    regions = stages.partition_from_masks({"a": a, "b": b})
    np.testing.assert_array_equal(regions.mask("a"), a)
    np.testing.assert_array_equal(regions.mask("b"), b)
    assert regions.labels[0, 0, 3] == stages.REMAINDER_LABEL
    assert set(regions.regions["a"]) & set(regions.regions["b"])  # the shared voxel's label


def test_voxel_tia_shares_the_label_tia_by_activity() -> None:
    """Two voxels holding 1/4 and 3/4 of the label's activity at every time get 1/4 and 3/4 of its TIA."""
    labels = np.array([[[1, 1, 0]]], dtype=np.int32)
    activity = [np.array([[[1.0, 3.0, 5.0]]]), np.array([[[0.5, 1.5, 5.0]]])]
    tia = stages.voxel_tia_map([1.0, 2.0], activity, labels, {1: 100.0})
    np.testing.assert_allclose(tia, [[[25.0, 75.0, 0.0]]])


def test_region_dvh_by_hand() -> None:
    dose = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    dvh = stages.region_dvh(dose, np.ones_like(dose, dtype=bool), n_bins=4)
    assert dvh.dose_gy == pytest.approx((0.0, 1.0, 2.0, 3.0, 4.0))
    assert dvh.cumulative_fraction == pytest.approx((1.0, 1.0, 0.75, 0.5, 0.25))


def test_read_recovery_curve_formats(tmp_path: Path) -> None:
    fitted = tmp_path / "fitted.json"
    fitted.write_text(
        json.dumps({"rc_inf": 0.9, "v50_ml": 2.0, "slope": 1.0, "v_min_ml": 0.5, "v_max_ml": 26.0})
    )
    curve = stages.read_recovery_curve(fitted)
    assert float(curve(2.0)) == pytest.approx(0.45)  # rc_inf / (1 + 1)
    measured = tmp_path / "measured.csv"
    volumes = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    rcs = [0.9 / (1 + 2.0 / v) for v in volumes]
    measured.write_text(
        "volume_ml,recovery\n" + "".join(f"{v},{r}\n" for v, r in zip(volumes, rcs, strict=True))
    )
    assert float(stages.read_recovery_curve(measured)(2.0)) == pytest.approx(0.45, rel=1e-3)


def test_contrast_dependent_recovery_by_hand(tmp_path: Path) -> None:
    """Curves flat in volume (v50 → 0): RC 0.5 at 10:1 and 0.7 at 40:1. Linear in log(contrast):
    RC(20) = 0.5 + 0.2·ln 2 / ln 4 = 0.6; held at the end values outside [10, 40]. A structure of true
    contrast 20 over a background of 1 reads C_m = 0.6·20 + 0.4·1 = 12.4; the fixed-point correction
    must return C = 20 per voxel."""
    import functools

    flat = {"v50_ml": 1e-9, "slope": 1.0, "v_min_ml": 0.1, "v_max_ml": 100.0}
    path = tmp_path / "curves.json"
    path.write_text(
        json.dumps(
            {
                "curves": [
                    {"sphere_to_background": 40, "rc_inf": 0.7, **flat},
                    {"sphere_to_background": 10, "rc_inf": 0.5, **flat},
                ]
            }
        ),
        encoding="utf-8",
    )
    curves = stages.read_recovery_curve(path)
    assert isinstance(curves, ContrastRecovery)
    assert curves.sphere_to_background == (10.0, 40.0)
    assert curves.recovery(5.0, 20.0) == pytest.approx(0.6)
    assert curves.recovery(5.0, 100.0) == pytest.approx(0.7)
    assert curves.recovery(5.0, 3.0) == pytest.approx(0.5)

    shape = (9, 9, 9)
    mask = np.zeros(shape, dtype=bool)
    mask[3:6, 3:6, 3:6] = True
    shell = np.zeros(shape, dtype=bool)
    shell[1:8, 1:8, 1:8] = True
    shell[2:7, 2:7, 2:7] = False
    image = np.zeros(shape)
    image[mask] = 12.4
    image[shell] = 1.0
    corrected = recovery_corrected_tac(
        [image],
        mask,
        recovery=0.5,
        shell=shell,
        recovery_at_contrast=functools.partial(curves.recovery, 5.0),
    )
    assert corrected == pytest.approx([27 * 20.0], rel=1e-5)
    # a single curve at 10:1 (RC 0.5) over-corrects this structure: (12.4 − 0.5)/0.5 = 23.8 per voxel
    assert recovery_corrected_tac([image], mask, recovery=0.5, shell=shell) == pytest.approx([27 * 23.8])


def test_recovery_curves_need_their_ratio(tmp_path: Path) -> None:
    path = tmp_path / "curves.json"
    path.write_text(json.dumps({"curves": [{"rc_inf": 0.7, "v50_ml": 1, "slope": 1}]}), encoding="utf-8")
    with pytest.raises(InputError, match="sphere_to_background"):
        stages.read_recovery_curve(path)
