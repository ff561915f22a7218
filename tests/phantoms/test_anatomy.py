"""Stylised anatomy: reference masses, stability of labels, seeded size variation, tumour placement."""

from __future__ import annotations

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.phantoms.anatomy import (
    ORGAN_LABELS,
    Anatomy,
    make_anatomy,
    make_grid,
    slices_to_cover_anatomy,
)

# ICRP Publication 89 (2002), Table 2.8, adult male reference masses (g). Lungs include blood.
ICRP89_MALE_MASS_G = {
    "liver": 1800.0,
    "kidneys": 310.0,
    "spleen": 150.0,
    "lungs": 1200.0,
    "parotids": 50.0,  # 25 g each
    "submandibulars": 25.0,  # 12.5 g each
}


@pytest.mark.parametrize("region", sorted(ICRP89_MALE_MASS_G))
def test_organ_masses_are_plausible_against_icrp89(anatomy: Anatomy, region: str) -> None:
    """Voxelised masses within 30 % of ICRP 89 (stylised shapes, 6 mm voxels: loose tolerance)."""
    assert anatomy.mass_g(region) == pytest.approx(ICRP89_MALE_MASS_G[region], rel=0.30)


def test_all_organs_and_small_glands_are_present(anatomy: Anatomy) -> None:
    present = set(np.unique(anatomy.labels).tolist())
    for name, value in ORGAN_LABELS.items():
        assert value in present, name
    # lacrimal glands (~0.7 g each) survive 6 mm voxels
    assert 0.2 < anatomy.mass_g("lacrimal_glands") < 3.0


def test_label_table_is_stable() -> None:
    """Label values are part of the file format: changing them breaks older phantoms' truth files."""
    assert ORGAN_LABELS["kidney_left_cortex"] == 5
    assert ORGAN_LABELS["red_marrow"] == 17
    assert len(set(ORGAN_LABELS.values())) == len(ORGAN_LABELS)


def test_tissue_densities_follow_icru44(anatomy: Anatomy) -> None:
    """ICRU Report 44 densities: liver 1.06, lung 0.26 g/mL (mass/volume of the region)."""
    assert anatomy.mass_g("liver") / anatomy.volume_ml("liver") == pytest.approx(1.06)
    assert anatomy.mass_g("lungs") / anatomy.volume_ml("lungs") == pytest.approx(0.26)
    assert float(anatomy.hu[anatomy.mask("lungs")].mean()) < -500.0
    assert float(anatomy.hu[anatomy.mask("bone")].mean()) > 700.0


def test_organs_are_where_anatomy_puts_them(anatomy: Anatomy) -> None:
    """Liver on the patient's right (−x in LPS), spleen on the left, kidneys posterior (+y)."""
    x_mm, y_mm, _ = anatomy.grid.axes_mm()

    def centroid(region: str) -> tuple[float, float]:
        _, j, i = np.nonzero(anatomy.mask(region))
        return float(x_mm[i].mean()), float(y_mm[j].mean())

    assert centroid("liver")[0] < -20.0
    assert centroid("spleen")[0] > 60.0
    assert centroid("kidney_left")[0] > 30.0 > -30.0 > centroid("kidney_right")[0]
    assert centroid("kidneys")[1] > 30.0


def test_affine_maps_indices_to_lps(anatomy: Anatomy) -> None:
    grid = anatomy.grid
    affine = grid.affine()
    x_mm, y_mm, z_mm = grid.axes_mm()
    k, j, i = 10, 20, 30
    world = affine @ np.array([k, j, i, 1.0])
    assert world[:3] == pytest.approx([x_mm[i], y_mm[j], z_mm[k]])


def test_tumours_sit_in_their_sites(anatomy: Anatomy) -> None:
    sites = {t.site: t for t in anatomy.tumours}
    assert set(sites) == {"liver", "bone", "lymph_node"}
    reference = make_anatomy(anatomy.grid, seed=None, tumours=0)
    liver_tumour = anatomy.labels == sites["liver"].label
    # every voxel of the liver tumour replaced liver tissue of the tumour-free phantom
    assert np.all(reference.labels[liver_tumour] == ORGAN_LABELS["liver"])
    bone_tumour = anatomy.labels == sites["bone"].label
    assert np.mean(np.isin(reference.labels[bone_tumour], [16, 17])) > 0.5
    # 25 mm sphere = 8.2 mL
    assert anatomy.volume_ml(sites["liver"].name) == pytest.approx(4 / 3 * np.pi * 12.5**3 / 1000, rel=0.3)


def test_seed_varies_size_reproducibly() -> None:
    grid = make_grid((slices_to_cover_anatomy(9.6), 48, 48), 9.6)
    a1 = make_anatomy(grid, seed=1, tumours=2)
    a1_again = make_anatomy(grid, seed=1, tumours=2)
    a2 = make_anatomy(grid, seed=2, tumours=2)
    assert np.array_equal(a1.labels, a1_again.labels)
    assert a1.scales == a1_again.scales
    assert not np.array_equal(a1.labels, a2.labels)
    assert a1.mass_g("liver") != a2.mass_g("liver")


def test_bad_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match="shape"):
        make_grid((10, 10), 4.0)
    grid = make_grid((20, 20, 20), 4.0)
    with pytest.raises(InputError, match="tumour site"):
        make_anatomy(grid, tumours=[("lung", 20.0)])  # type: ignore[list-item]
    with pytest.raises(InputError, match="diameter"):
        make_anatomy(grid, tumours=[("liver", 500.0)])


def test_field_of_view_keeps_only_what_it_covers() -> None:
    """A head-only grid has the salivary glands but no kidneys and none of the trunk tumours."""
    head = make_grid((20, 40, 40), 6.0, centre_mm=(0.0, 0.0, 840.0))
    a = make_anatomy(head, tumours=3)
    names = set(a.region_names())
    assert {"parotids", "submandibulars"} <= names
    assert "kidneys" not in names
    assert a.tumours == ()
    assert not any(n.startswith("tumour_") for n in a.label_table)


def test_ct_of_bone_converts_back_to_the_truth_density(anatomy: Anatomy) -> None:
    """theradose.imaging.density.density_map (Schneider 1996 calibration) on the phantom CT gives the
    ICRU 44 cortical bone density 1.92 g/mL where the truth is cortical bone, and water-like soft tissue."""
    from theradose.imaging.density import density_map
    from theradose.imaging.volume import Volume

    ct = Volume(array=anatomy.hu, affine=anatomy.grid.affine(), unit="HU")
    rho = np.asarray(density_map(ct).array)
    bone = anatomy.mask("bone")
    assert float(rho[bone].mean()) == pytest.approx(1.92, rel=0.01)
    liver = anatomy.mask("liver")
    assert float(rho[liver].mean()) == pytest.approx(1.06, rel=0.05)
