"""Segmentation fallbacks on analytic phantoms: volumes compared with the geometric (hand) values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.imaging import Volume
from theradose.imaging.segment import (
    BODY_LABEL,
    BONE_LABEL,
    LUNG_LABEL,
    segment_auto,
    segment_ct,
    segment_uptake,
)


def sphere_ml(radius_mm: float) -> float:
    return 4.0 / 3.0 * math.pi * radius_mm**3 / 1000.0


def test_ct_classes(ct_phantom: Volume) -> None:
    seg = segment_ct(ct_phantom)
    labels = seg.labels.array
    assert seg.labels.unit == "label" and labels.dtype == np.uint8
    hu = ct_phantom.array
    assert np.all(labels[hu == -800.0] == LUNG_LABEL)
    assert np.all(labels[hu == 700.0] == BONE_LABEL)
    assert np.all(labels[hu == 40.0] == BODY_LABEL)
    assert np.all(labels[hu == -1000.0] == 0)
    volumes = {r.name: r.volume_ml for r in seg.regions}
    # two lung ellipsoids of semi-axes 30, 40, 50 mm: 2 * 4/3 pi 30*40*50 mm^3 = 502.65 mL
    assert volumes["lungs"] == pytest.approx(2 * 4 / 3 * math.pi * 30 * 40 * 50 / 1000, rel=0.1)


def test_fixed_threshold_uptake(spect_phantom: Volume) -> None:
    seg = segment_uptake(spect_phantom, method="fixed", threshold_bqml=1.0e5, min_volume_ml=1.0)
    assert len(seg.regions) == 2
    kidney, tumour = sorted(seg.regions, key=lambda r: -r.volume_ml)
    assert kidney.volume_ml == pytest.approx(sphere_ml(25.0), rel=0.1)
    assert tumour.volume_ml == pytest.approx(sphere_ml(15.0), rel=0.15)
    assert tumour.max_value == pytest.approx(5.0e5)
    # sorted by total activity: kidney 65.4 mL x 2e5 > tumour 14.1 mL x 5e5
    assert seg.regions[0].volume_ml == kidney.volume_ml


def test_percent_of_local_max_and_min_volume(spect_phantom: Volume) -> None:
    seg = segment_uptake(spect_phantom, percent_of_max=40.0, min_volume_ml=20.0)
    assert [r.name for r in seg.regions] == ["uptake 1"]  # the 14-mL tumour is below 20 mL
    assert seg.regions[0].volume_ml == pytest.approx(sphere_ml(25.0), rel=0.1)
    with pytest.raises(InputError, match="percent_of_max"):
        segment_uptake(spect_phantom, percent_of_max=140.0)
    with pytest.raises(InputError, match="positive threshold_bqml"):
        segment_uptake(spect_phantom, method="fixed")
    with pytest.raises(InputError, match="Bq/mL or SUV"):
        segment_uptake(spect_phantom.with_array(spect_phantom.array, unit="counts"))


def test_auto_combines_ct_and_spect(ct_phantom: Volume, spect_phantom: Volume) -> None:
    seg = segment_auto(ct_phantom, spect_phantom)
    names = seg.names()
    assert names[1] == "body" and names[10] == "uptake 1" and names[11] == "uptake 2"
    assert seg.labels.same_grid(ct_phantom)
    assert np.count_nonzero(seg.labels.array == 10) > 0
