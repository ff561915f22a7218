"""Multi-site harmonisation of quantitative SPECT and activity measurement.

Each site submits its phantom results: dose-calibrator accuracy against a traceable reference source
(deviation in %), its SPECT calibration factor, the concentration it measured in a common phantom
against the known value (optional), and its recovery curve parameters (optional). theradose compares
each site with the reference, flags outliers, and estimates how much the site's dosimetry would change
with harmonised calibration.

Propagation (cf. the three-pillar harmonisation in seed 004 and Sjögreen Gleisner et al. 2022,
EJNMMI Phys 9:30): a site whose dose calibrator reads (1 + b) times the true activity calibrates its
camera against that reading, so its calibration factor is too small by 1/(1 + b) and every activity
quantified from its images — hence every absorbed dose — is too large by (1 + b). Harmonised calibration
therefore changes that site's doses by 1/(1 + b) − 1. If the site also measured a common phantom, its
total quantification bias q (measured/true − 1) replaces b. For tumours without partial-volume
correction, the ratio of the site's recovery to the reference recovery at a chosen volume multiplies in.

Outliers: |bias| beyond the tolerance, or a robust z-score |0.6745 (x − median) / MAD| > 3.5
(Iglewicz & Hoaglin 1993, *How to Detect and Handle Outliers*).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from theradose.errors import InputError

#: Robust z-score above which a site is an outlier (Iglewicz & Hoaglin 1993).
MODIFIED_Z_LIMIT = 3.5
#: Consistency constant of the MAD for normal data (Φ⁻¹(0.75)).
MAD_NORMAL_CONSTANT = 0.6745


@dataclass(frozen=True)
class SiteSubmission:
    """One site's phantom results."""

    site: str
    dose_calibrator_deviation_percent: float
    calibration_factor_cps_per_mbq: float | None = None
    measured_concentration_bq_per_ml: float | None = None
    true_concentration_bq_per_ml: float | None = None
    rc_inf: float | None = None
    rc_v50_ml: float | None = None
    rc_slope: float | None = None

    def recovery(self, volume_ml: float) -> float | None:
        """RC(V) of the site's curve, if submitted."""
        if self.rc_inf is None or self.rc_v50_ml is None or self.rc_slope is None:
            return None
        return float(self.rc_inf / (1.0 + (self.rc_v50_ml / volume_ml) ** self.rc_slope))


@dataclass(frozen=True)
class SiteComparison:
    """A site compared with the reference."""

    site: str
    quantification_bias_percent: float
    bias_source: str
    robust_z: float
    flagged: bool
    reasons: tuple[str, ...]
    organ_dose_change_percent: float
    tumour_dose_change_percent: float | None


def modified_z_scores(values: Sequence[float]) -> np.ndarray:
    """Robust z-scores 0.6745 (x − median) / MAD; zeros when MAD is 0."""
    x = np.asarray(values, dtype=np.float64)
    median = float(np.median(x))
    mad = float(np.median(np.abs(x - median)))
    if mad == 0.0:
        return np.zeros_like(x)
    return MAD_NORMAL_CONSTANT * (x - median) / mad


def compare_sites(
    sites: Sequence[SiteSubmission],
    *,
    tolerance_percent: float = 5.0,
    reference_recovery_curve: tuple[float, float, float] | None = None,
    tumour_volume_ml: float = 10.0,
) -> list[SiteComparison]:
    """Compare each site with the reference (traceable activity; optional reference RC curve).

    Parameters
    ----------
    sites
        Submissions; site names must be unique.
    tolerance_percent
        Maximum acceptable |quantification bias|.
    reference_recovery_curve
        (rc_inf, v50_ml, slope) of the reference RC curve; default: the median of the sites' curves.
    tumour_volume_ml
        Volume at which recovery differences are evaluated for tumour doses.
    """
    if not sites:
        raise InputError("no sites submitted: give at least one site")
    names = [s.site for s in sites]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise InputError(f"site names must be unique; repeated: {', '.join(sorted(duplicates))}")
    biases: list[float] = []
    sources: list[str] = []
    for s in sites:
        if s.measured_concentration_bq_per_ml is not None and s.true_concentration_bq_per_ml is not None:
            if s.true_concentration_bq_per_ml <= 0:
                raise InputError(f"site {s.site}: true_concentration_bq_per_ml must be > 0")
            biases.append(100.0 * (s.measured_concentration_bq_per_ml / s.true_concentration_bq_per_ml - 1.0))
            sources.append("common phantom")
        else:
            if not math.isfinite(s.dose_calibrator_deviation_percent):
                raise InputError(f"site {s.site}: dose_calibrator_deviation_percent is missing")
            biases.append(s.dose_calibrator_deviation_percent)
            sources.append("dose calibrator")
        if s.dose_calibrator_deviation_percent <= -100.0:
            raise InputError(f"site {s.site}: dose_calibrator_deviation_percent must be > -100")
    z = modified_z_scores(biases)
    if reference_recovery_curve is None:
        curves = np.array(
            [(s.rc_inf, s.rc_v50_ml, s.rc_slope) for s in sites if s.recovery(1.0) is not None], dtype=float
        )
        if curves.size:
            median = np.median(curves, axis=0)
            reference_recovery_curve = (float(median[0]), float(median[1]), float(median[2]))
    ref_rc = None
    if reference_recovery_curve is not None:
        rc_inf, v50, slope = reference_recovery_curve
        ref_rc = rc_inf / (1.0 + (v50 / tumour_volume_ml) ** slope)
    out = []
    for s, bias, source, zi in zip(sites, biases, sources, z, strict=True):
        reasons = []
        if round(abs(bias), 9) > tolerance_percent:
            reasons.append(f"quantification bias {bias:+.1f} % exceeds ±{tolerance_percent:g} %")
        if abs(zi) > MODIFIED_Z_LIMIT:
            reasons.append(f"robust z-score {zi:+.1f} beyond ±{MODIFIED_Z_LIMIT}")
        organ_change = 100.0 * (1.0 / (1.0 + bias / 100.0) - 1.0)
        tumour_change = None
        site_rc = s.recovery(tumour_volume_ml)
        if site_rc is not None and ref_rc is not None:
            tumour_change = 100.0 * ((1.0 + organ_change / 100.0) * ref_rc / site_rc - 1.0)
        out.append(
            SiteComparison(
                site=s.site,
                quantification_bias_percent=bias,
                bias_source=source,
                robust_z=float(zi),
                flagged=bool(reasons),
                reasons=tuple(reasons),
                organ_dose_change_percent=organ_change,
                tumour_dose_change_percent=tumour_change,
            )
        )
    return out
