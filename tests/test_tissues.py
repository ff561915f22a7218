"""The tissue registry: one density and one set of LQ parameters per tissue, read by every consumer."""

from __future__ import annotations

import pytest

from theradose.errors import InputError
from theradose.organs import organs
from theradose.tissues import density_g_per_ml, get_tissue, tissue_names, tissues


def test_published_densities() -> None:
    """ICRU Report 46 (1992) adult tissues: soft tissue 1.03, kidney 1.05, liver 1.06, lung 0.26, cortical
    bone 1.92 g/cm³; dry air 1.205 mg/cm³ (ICRU 37)."""
    expected = {
        "soft_tissue": 1.03,
        "kidney": 1.05,
        "liver": 1.06,
        "spleen": 1.06,
        "lung": 0.26,
        "cortical_bone": 1.92,
        "red_marrow": 1.03,
        "air": 0.001205,
    }
    for name, value in expected.items():
        assert density_g_per_ml(name) == value, name
        assert get_tissue(name).density_source


def test_published_radiobiology() -> None:
    """Kidney α/β 2.6 Gy, T_rep 2.8 h (Barone 2005, MIRD 20); liver 2.5 Gy, 2.5 h (Strigari 2010); tumour
    10 Gy, 1.5 h (Dale 1985)."""
    assert (get_tissue("kidney").alpha_beta_gy, get_tissue("kidney").repair_half_time_h) == (2.6, 2.8)
    assert (get_tissue("liver").alpha_beta_gy, get_tissue("liver").repair_half_time_h) == (2.5, 2.5)
    assert (get_tissue("tumour").alpha_beta_gy, get_tissue("tumour").repair_half_time_h) == (10.0, 1.5)
    assert "Barone" in get_tissue("kidney").radiobiology_source
    assert not get_tissue("spleen").has_radiobiology


def test_every_organ_names_a_tissue_of_the_registry() -> None:
    names = set(tissue_names())
    for organ in organs():
        assert organ.tissue in names, organ.name


def test_lq_parameters_come_together() -> None:
    for tissue in tissues():
        assert (
            (tissue.alpha_beta_gy is None)
            == (tissue.repair_half_time_h is None)
            == (tissue.radiobiology_source == "")
        ), tissue.name


def test_spellings_and_unknown_tissue() -> None:
    assert get_tissue("Tumor").name == "tumour"
    assert get_tissue("bone marrow").name == "red_marrow"
    with pytest.raises(InputError, match=r"unknown tissue 'cartilage'.*choose one of air"):
        get_tissue("cartilage")


def test_every_reader_takes_the_registry_density() -> None:
    """The dose engines' soft-tissue medium, the phantom's soft tissue and the pipeline's density without
    CT are the registry's one value (they were 1.04, 1.03 and 1.03 before the registry)."""
    from theradose.dosimetry.materials import CORTICAL_BONE, LUNG, SOFT_TISSUE
    from theradose.phantoms.anatomy import load_tissues
    from theradose.pipeline.stages import density_map_g_per_ml

    soft = density_g_per_ml("soft_tissue")
    assert SOFT_TISSUE.density_g_per_ml == soft
    assert CORTICAL_BONE.density_g_per_ml == density_g_per_ml("cortical_bone")
    assert LUNG.density_g_per_ml == density_g_per_ml("lung")
    phantom = load_tissues()
    assert all(phantom[name].density_g_per_ml == density_g_per_ml(name) for name in phantom)

    class _Grid:
        shape = (2, 2, 2)

    assert density_map_g_per_ml(None, _Grid()).tolist() == [[[soft] * 2] * 2] * 2  # type: ignore[arg-type]
