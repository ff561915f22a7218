"""Rigid CT-CT registration recovers a known rigid motion; transforms apply to SPECT and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from theradose.errors import InputError
from theradose.imaging import Volume
from theradose.imaging.register import apply_transform, dice, read_transform, register_ct


def known_motion() -> sitk.Euler3DTransform:
    """Fixed -> moving point mapping: 4 degrees about z, then a (6, -4, 3) mm shift."""
    t = sitk.Euler3DTransform()
    t.SetRotation(0.0, 0.0, np.radians(4.0))
    t.SetTranslation((6.0, -4.0, 3.0))
    return t


def moved(volume: Volume, fill: float) -> Volume:
    """The image a patient moved by known_motion() gives: value at q = value of fixed at T^-1(q)."""
    out = apply_transform(volume, known_motion().GetInverse(), volume)
    inside = apply_transform(
        volume.with_array(np.ones(volume.shape, np.uint8), unit="label"), known_motion().GetInverse(), volume
    ).array
    return out.with_array(np.where(inside > 0, out.array, fill).astype(np.float32))


def test_dice_by_hand() -> None:
    a = np.array([1, 1, 1, 0], bool)
    b = np.array([0, 1, 1, 1], bool)
    assert dice(a, b) == pytest.approx(2 * 2 / 6)
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_rigid_registration_recovers_known_motion(
    ct_phantom: Volume, spect_phantom: Volume, tmp_path: Path
) -> None:
    moving_ct = moved(ct_phantom, -1000.0)
    result = register_ct(ct_phantom, moving_ct)
    assert result.rotation_deg[2] == pytest.approx(4.0, abs=0.3)
    assert result.rotation_deg[0] == pytest.approx(0.0, abs=0.3)
    np.testing.assert_allclose(result.translation_mm, (6.0, -4.0, 3.0), atol=1.0)
    q = result.quality
    assert q.dice_body_after > q.dice_body_before and q.dice_body_after > 0.97
    # A SPECT acquired with the moved patient is brought back: the hot sphere returns to its place.
    moving_spect = moved(spect_phantom, 0.0)
    back = result.apply(moving_spect, spect_phantom)
    hot_true = spect_phantom.array > 3e5
    hot_back = back.array > 3e5
    assert dice(hot_true, hot_back) > 0.8 > dice(hot_true, moving_spect.array > 3e5)
    # Masks move with nearest neighbour and keep their labels.
    mask = spect_phantom.with_array((spect_phantom.array > 1e5).astype(np.uint8) * 7, unit="label")
    mask_back = apply_transform(moved_mask(mask), result.transform, spect_phantom)
    assert set(np.unique(mask_back.array)) <= {0, 7}
    path = result.write(tmp_path / "t.tfm")
    reread = read_transform(path)
    p = (10.0, 20.0, -5.0)
    np.testing.assert_allclose(reread.TransformPoint(p), result.transform.TransformPoint(p), atol=1e-6)


def moved_mask(mask: Volume) -> Volume:
    return apply_transform(mask, known_motion().GetInverse(), mask)


def test_bspline_stage_runs_and_does_not_degrade(ct_phantom: Volume) -> None:
    result = register_ct(
        ct_phantom, moved(ct_phantom, -1000.0), deformable=True, iterations=10, bspline_mesh_size=3
    )
    assert result.deformable
    assert result.quality.dice_body_after > 0.95


def test_errors(ct_phantom: Volume, spect_phantom: Volume, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="CT Volume in HU"):
        register_ct(ct_phantom, spect_phantom)
    with pytest.raises(InputError, match="invents labels"):
        apply_transform(
            spect_phantom.with_array(np.zeros(spect_phantom.shape, np.uint8), unit="label"),
            sitk.Euler3DTransform(),
            spect_phantom,
            method="linear",
        )
    with pytest.raises(InputError, match="does not exist"):
        read_transform(tmp_path / "none.tfm")
    (tmp_path / "bad.tfm").write_text("not a transform")
    with pytest.raises(InputError, match="not an ITK transform"):
        read_transform(tmp_path / "bad.tfm")
