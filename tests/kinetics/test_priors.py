"""Half-life priors: the registry's numbers against their sources, and the log-normal conversions."""

from __future__ import annotations

import math

import pytest

from theradose.errors import InputError
from theradose.kinetics import HalfLifePrior, available_priors, get_prior
from theradose.kinetics.priors import expected_normal_range


def test_expected_normal_range_against_tables() -> None:
    """d_n of Tippett 1925 (tabulated in control-chart tables, e.g. ASTM E2587): d2 = 1.128, d5 = 2.326,
    d10 = 3.078."""
    assert expected_normal_range(2) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-9)
    assert expected_normal_range(5) == pytest.approx(2.326, abs=5e-4)
    assert expected_normal_range(10) == pytest.approx(3.078, abs=5e-4)


def test_psma_kidney_prior_is_the_published_median_and_range() -> None:
    """AAPM 2026 abstract 2620: kidneys median 35.5 h, range 8.5–152.0 h, n = 37."""
    prior = get_prior("psma", "kidneys")
    assert prior.median_h == 35.5
    assert prior.log_sigma == pytest.approx(math.log(152.0 / 8.5) / expected_normal_range(37))
    assert "35.5" in prior.source and prior.tracer == "psma" and prior.region == "kidneys"
    assert get_prior("PSMA", "Kidney_Left") == prior  # alias and case


def test_mean_sd_conversion_by_hand() -> None:
    """Kurth et al. 2018: whole body 40.5 ± 9.6 h. CV = 0.237037;
    s = sqrt(ln(1.056187)) = sqrt(0.0546653) = 0.233806; median = 40.5 / sqrt(1.056187) = 39.408 h."""
    prior = get_prior("psma", "whole_body")
    assert prior.median_h == pytest.approx(39.408, abs=1e-3)
    assert prior.log_sigma == pytest.approx(0.233806, abs=2e-6)


def test_individual_prior_from_an_earlier_fit() -> None:
    prior = HalfLifePrior.from_estimate(42.0, 4.2, source="cycle 1")
    assert prior.median_h == 42.0 and prior.log_sigma == pytest.approx(0.1)
    assert prior.rate_per_h == pytest.approx(math.log(2) / 42.0)


def test_unknown_prior_is_an_error_never_a_fallback() -> None:
    assert ("psma", "kidneys") in available_priors()
    with pytest.raises(InputError, match="no population half-life prior for tracer 'dotatate'"):
        get_prior("dotatate", "kidneys")
    with pytest.raises(InputError, match="available: psma/kidneys"):
        get_prior("psma", "tumour")
    with pytest.raises(InputError, match="log_sigma must be positive"):
        HalfLifePrior(40.0, 0.0, source="x")
