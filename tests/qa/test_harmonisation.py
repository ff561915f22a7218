"""Multi-site harmonisation: bias propagation and outlier flags (hand calculations)."""

import pytest

from theradose.errors import InputError
from theradose.qa.harmonisation import SiteSubmission, compare_sites, modified_z_scores


def test_dose_change_from_calibrator_bias() -> None:
    """A calibrator reading +8 % makes images (and doses) 8 % high: harmonised doses change by
    1/1.08 − 1 = −7.41 %."""
    sites = [SiteSubmission("A", 0.5), SiteSubmission("B", 8.0), SiteSubmission("C", -1.0)]
    result = {r.site: r for r in compare_sites(sites, tolerance_percent=5.0)}
    assert result["B"].organ_dose_change_percent == pytest.approx(100 * (1 / 1.08 - 1))
    assert result["B"].flagged and not result["A"].flagged
    assert "exceeds ±5 %" in result["B"].reasons[0]


def test_common_phantom_bias_takes_precedence() -> None:
    site = SiteSubmission(
        "A", 1.0, measured_concentration_bq_per_ml=95000.0, true_concentration_bq_per_ml=100000.0
    )
    (r,) = compare_sites([site])
    assert r.quantification_bias_percent == pytest.approx(-5.0)
    assert r.bias_source == "common phantom"
    assert not r.flagged  # exactly at the edge passes


def test_tumour_change_includes_recovery_ratio() -> None:
    """Site RC(10 mL) = 0.8/(1+(1/10)^1) = 0.7273; reference 0.9/(1+(1/10)) = 0.8182; no calibration bias:
    tumour doses change by 0.8182/0.7273 − 1 = +12.5 %."""
    site = SiteSubmission("A", 0.0, rc_inf=0.8, rc_v50_ml=1.0, rc_slope=1.0)
    (r,) = compare_sites([site], reference_recovery_curve=(0.9, 1.0, 1.0), tumour_volume_ml=10.0)
    assert r.tumour_dose_change_percent == pytest.approx(12.5)


def test_robust_z_flags_outlier() -> None:
    z = modified_z_scores([0.0, 1.0, -1.0, 0.5, -0.5, 9.0])
    assert z[-1] > 3.5 and abs(z[0]) < 1


def test_duplicate_site_rejected() -> None:
    with pytest.raises(InputError, match="unique"):
        compare_sites([SiteSubmission("A", 0.0), SiteSubmission("A", 1.0)])
