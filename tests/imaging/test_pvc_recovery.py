"""Partial-volume correction by recovery coefficients, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.imaging import pvc


def test_background_free_recovery_by_hand() -> None:
    # RC_mean 0.55 in a 10:1 phantom: 0.55 = RC + (1 − RC)·0.1 → RC = 0.45/0.9 = 0.5
    assert pvc.background_free_recovery([0.55, 1.0], sphere_to_background=10.0) == pytest.approx([0.5, 1.0])


def test_pvc_tac_removes_spill_in_and_divides_by_recovery() -> None:
    shape = (9, 9, 9)
    mask = np.zeros(shape, dtype=bool)
    mask[3:6, 3:6, 3:6] = True  # 27 voxels
    shell = np.zeros(shape, dtype=bool)
    shell[1:8, 1:8, 1:8] = True
    shell[2:7, 2:7, 2:7] = False
    true_mbq_per_voxel, background, rc = 2.0, 0.5, 0.6
    measured = np.where(mask, rc * true_mbq_per_voxel + (1 - rc) * background, 0.0)
    measured[shell] = background
    corrected = pvc.recovery_corrected_tac([measured, 0.5 * measured], mask, recovery=rc, shell=shell)
    assert corrected == pytest.approx([27 * 2.0, 27 * 1.0])
    # without the shell: measured / RC = 27·(1.2 + 0.2)/0.6
    assert pvc.recovery_corrected_tac([measured], mask, recovery=rc, shell=None) == pytest.approx(
        [27 * 1.4 / 0.6]
    )


def test_background_shell_is_a_ring_outside_the_mask() -> None:
    mask = np.zeros((15, 15, 15), dtype=bool)
    mask[7, 7, 7] = True
    exclude = np.zeros_like(mask)
    exclude[7, 7, 11] = True
    shell = pvc.background_shell(mask, exclude, spacing_mm=(2.0, 2.0, 2.0), width_mm=4.0)
    assert not shell[7, 7, 7] and not shell[7, 7, 8]  # the one-voxel gap
    assert shell[7, 7, 9] and shell[7, 7, 10]
    assert not shell[7, 7, 11]  # excluded
    assert not shell[7, 7, 13]


def test_label_tacs_divide_only_the_listed_labels_by_their_recovery() -> None:
    """Label 2 (8 voxels of 1 mL, 3 MBq each) corrected with RC(V) = V/(V + 8): RC(8 mL) = 0.5, so its TAC
    doubles to 48 MBq and its recovery is 0.5; label 1 and the remainder stay as measured."""
    labels = np.zeros((4, 4, 4), dtype=np.int32)
    labels[0, :, :] = 1
    labels[2:4, 2:4, 2:4] = 2
    activity = np.where(labels == 2, 3.0, np.where(labels == 1, 1.0, 0.1))
    tacs, recovery = pvc.recovery_label_tacs(
        [activity, activity / 2], labels, [2], lambda v: v / (v + 8.0),
        voxel_volume_ml=1.0, spacing_mm=(10.0, 10.0, 10.0), shell_mm=None,
    )  # fmt: skip
    assert tacs[2] == pytest.approx([48.0, 24.0])
    assert recovery[2] == pytest.approx(0.5)
    assert tacs[1] == pytest.approx([16.0, 8.0]) and recovery[1] == 1.0
    assert tacs[0] == pytest.approx([0.1 * 40, 0.05 * 40])
    with pytest.raises(InputError, match="a recovery curve is needed"):
        pvc.recovery_label_tacs(
            [activity], labels, [2], None, voxel_volume_ml=1.0, spacing_mm=(1, 1, 1), shell_mm=None
        )
