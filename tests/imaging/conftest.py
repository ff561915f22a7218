"""Small analytic phantoms on purpose-made grids (a few 10^4 voxels, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from theradose.imaging import Volume


def grid_points(vol: Volume) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in vol.shape], indexing="ij"), axis=-1)
    return vol.world_coordinates_mm(idx)


def make_ct(shape: tuple[int, int, int] = (30, 40, 40), spacing_mm: float = 6.0) -> Volume:
    """Elliptic body (40 HU) with two lungs (-800 HU), a spine (700 HU) in air (-1000 HU), centred at 0."""
    origin = tuple(-(n - 1) * spacing_mm / 2 for n in (shape[2], shape[1], shape[0]))
    vol = Volume.from_spacing(np.zeros(shape), (spacing_mm,) * 3, origin, unit="HU", frame_uid="1.2.3.100")
    p = grid_points(vol)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    hu = np.full(shape, -1000.0)
    body = (x / 110.0) ** 2 + (y / 80.0) ** 2 <= 1.0
    hu[body] = 40.0
    for cx in (-50.0, 50.0):
        lung = ((x - cx) / 30.0) ** 2 + ((y + 5.0) / 40.0) ** 2 + ((z - 20.0) / 50.0) ** 2 <= 1.0
        hu[lung] = -800.0
    spine = (x**2 + (y - 50.0) ** 2 <= 15.0**2) & body
    hu[spine] = 700.0
    return vol.with_array(hu.astype(np.float32))


@pytest.fixture
def ct_phantom() -> Volume:
    return make_ct()


@pytest.fixture
def spect_phantom() -> Volume:
    """Two uniform spheres on a 4.8-mm grid: 'kidney' r = 25 mm, 2e5 Bq/mL; 'tumour' r = 15 mm, 5e5 Bq/mL;
    background 1e3 Bq/mL inside the body ellipse."""
    shape = (36, 48, 48)
    s = 4.8
    origin = tuple(-(n - 1) * s / 2 for n in (shape[2], shape[1], shape[0]))
    vol = Volume.from_spacing(np.zeros(shape), (s, s, s), origin, unit="Bq/mL", frame_uid="1.2.3.100")
    p = grid_points(vol)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    a = np.zeros(shape)
    a[(x / 110.0) ** 2 + (y / 80.0) ** 2 <= 1.0] = 1.0e3
    a[(x - 45.0) ** 2 + (y - 20.0) ** 2 + (z + 30.0) ** 2 <= 25.0**2] = 2.0e5
    a[(x + 40.0) ** 2 + (y - 10.0) ** 2 + (z + 20.0) ** 2 <= 15.0**2] = 5.0e5
    return vol.with_array(a.astype(np.float32))
