"""Small phantoms shared by the phantom tests (built once per session)."""

from __future__ import annotations

import pytest

from theradose.phantoms.anatomy import Anatomy, make_anatomy, make_grid, slices_to_cover_anatomy

#: 6 mm voxels: whole anatomy (pelvis → vertex) in 172 slices of 64 × 64 (384 mm wide).
SPACING_MM = 6.0


@pytest.fixture(scope="session")
def anatomy() -> Anatomy:
    """Reference-size anatomy (seed None) with three 25 mm tumours (liver, bone, lymph node)."""
    grid = make_grid((slices_to_cover_anatomy(SPACING_MM), 64, 64), SPACING_MM)
    return make_anatomy(grid, seed=None, tumours=3)
