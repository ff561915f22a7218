"""Shipped tissue parameters are the cited values and can be overridden."""

from __future__ import annotations

import pytest

from theradose.errors import InputError
from theradose.radiobiology import tissue_names, tissue_parameters


def test_kidney_defaults_are_the_published_values() -> None:
    """Kidney α/β = 2.6 Gy, T_rep = 2.8 h (Barone et al. 2005; Wessels et al. 2008, MIRD Pamphlet 20)."""
    kidney = tissue_parameters("kidney")
    assert (kidney.alpha_beta_gy, kidney.repair_half_time_h) == (2.6, 2.8)
    assert "Barone" in kidney.source


def test_all_required_tissues_cited() -> None:
    for name in ("kidney", "red_marrow", "salivary_glands", "liver", "tumour"):
        assert name in tissue_names()
        params = tissue_parameters(name)
        assert params.alpha_beta_gy > 0 and params.repair_half_time_h > 0
        assert any(ch.isdigit() for ch in params.source)  # a year/page citation
    assert tissue_parameters("Tumor") == tissue_parameters("tumour")


def test_overrides() -> None:
    params = tissue_parameters("kidney", alpha_beta_gy=3.5)
    assert params.alpha_beta_gy == 3.5 and params.repair_half_time_h == 2.8
    assert params.source.startswith("user (alpha_beta_gy)")
    with pytest.raises(InputError, match="alpha_beta_gy"):
        tissue_parameters("kidney", alpha_beta_gy=-1.0)
    with pytest.raises(InputError, match="unknown tissue"):
        tissue_parameters("cartilage")
    # a registered tissue without LQ parameters needs both from the user
    with pytest.raises(InputError, match="no established alpha/beta"):
        tissue_parameters("brain")
