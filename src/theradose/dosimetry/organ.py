"""Organ- and tumour-level absorbed dose by the MIRD schema, with uncertainty.

.. math:: D(r_T) = \\sum_{r_S} \\tilde{A}(r_S)\\, S(r_T \\leftarrow r_S)

(Bolch et al. 2009, MIRD Pamphlet 21, J Nucl Med 50:477, eq. 9). The self-dose term ``S(r_T ← r_T)``
comes from the region's own mass (:func:`theradose.dosimetry.sphere.self_s_value`: ``kind="organ"``
absorbs electrons locally and uses a sphere photon absorbed fraction; ``kind="sphere"`` uses sphere
absorbed fractions for all radiations). Cross-dose terms ``S(r_T ← r_S)`` come from a user S-value table.

The standard uncertainty of each dose is propagated to first order from the uncertainties of the
time-integrated activities (TIA) and of the target mass, with the TIA–mass covariance when given
(Gear et al. 2018, EJNMMI 45:2456). Cross-dose S values are taken as exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from theradose.dosimetry.sphere import EmissionSource, RegionKind, resolve_nuclide, self_s_value
from theradose.dosimetry.svalues import SValueTable
from theradose.dosimetry.uncertainty import covariance_matrix, propagate_first_order
from theradose.errors import InputError
from theradose.units import hours_to_seconds, mbq_to_gbq, mgy_to_gy

#: Relative step of the central difference used for ∂S/∂m.
MASS_DERIVATIVE_STEP = 1.0e-4


@dataclass(frozen=True)
class Region:
    """A source/target region with its mass and time-integrated activity (each ± 1 standard uncertainty).

    Attributes
    ----------
    name : str
    kind : {"organ", "sphere"}
    mass_g, mass_sigma_g : float
        Mass and its standard uncertainty, g.
    tia_mbq_h, tia_sigma_mbq_h : float
        Time-integrated activity and its standard uncertainty, MBq·h.
    tia_mass_correlation : float
        Correlation coefficient between TIA and mass (both depend on the same volume), in [-1, 1].
    """

    name: str
    kind: RegionKind
    mass_g: float
    tia_mbq_h: float
    mass_sigma_g: float = 0.0
    tia_sigma_mbq_h: float = 0.0
    tia_mass_correlation: float = 0.0

    def __post_init__(self) -> None:
        label = f"region {self.name!r}"
        if not self.name:
            raise InputError("region name must not be empty: name every region")
        if self.kind not in ("organ", "sphere"):
            raise InputError(f"{label}: kind must be 'organ' or 'sphere'; got {self.kind!r}")
        if not (self.mass_g > 0.0 and math.isfinite(self.mass_g)):
            raise InputError(f"{label}: mass_g must be a positive number of grams; got {self.mass_g!r}")
        if not (self.tia_mbq_h >= 0.0 and math.isfinite(self.tia_mbq_h)):
            raise InputError(f"{label}: tia_mbq_h must be a non-negative number; got {self.tia_mbq_h!r}")
        for field_name in ("mass_sigma_g", "tia_sigma_mbq_h"):
            value = getattr(self, field_name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise InputError(f"{label}: {field_name} must be a non-negative number; got {value!r}")
        if not -1.0 <= self.tia_mass_correlation <= 1.0:
            raise InputError(
                f"{label}: tia_mass_correlation must lie in [-1, 1]; got {self.tia_mass_correlation!r}"
            )


@dataclass(frozen=True)
class RegionDose:
    """Absorbed dose to one target region.

    Attributes
    ----------
    name : str
    kind : {"organ", "sphere"}
    dose_gy, dose_sigma_gy : float
        Mean absorbed dose and its standard uncertainty, Gy.
    dose_gy_per_gbq : float or None
        Dose per administered activity, Gy/GBq (``None`` when no administered activity was given).
    self_dose_gy, cross_dose_gy : float
        Self- and cross-dose parts of ``dose_gy``.
    alpha_dose_gy : float
        Part of the self-dose from alpha particles and recoil nuclei (for RBE weighting with
        :func:`theradose.radiobiology.rbe_weighted_dose_gy`; cross-dose is counted as low-LET).
    s_self_mgy_per_mbq_s : float
        Self-dose S value used, mGy/(MBq·s).
    mass_g, tia_mbq_h : float
        Inputs.
    """

    name: str
    kind: RegionKind
    dose_gy: float
    dose_sigma_gy: float
    dose_gy_per_gbq: float | None
    self_dose_gy: float
    cross_dose_gy: float
    alpha_dose_gy: float
    s_self_mgy_per_mbq_s: float
    mass_g: float
    tia_mbq_h: float


def dose_gy_from_tia(tia_mbq_h: float, s_value_mgy_per_mbq_s: float) -> float:
    """``D = Ã·S`` in Gy from Ã in MBq·h and S in mGy/(MBq·s) (MIRD Pamphlet 21, eq. 9)."""
    return float(mgy_to_gy(hours_to_seconds(tia_mbq_h) * s_value_mgy_per_mbq_s))


def region_doses(
    regions: Sequence[Region],
    nuclide: str | EmissionSource,
    *,
    administered_activity_mbq: float | None = None,
    s_table: SValueTable | None = None,
    include_progeny: bool = True,
) -> tuple[RegionDose, ...]:
    """Absorbed dose ± standard uncertainty to every region (MIRD schema, EANM uncertainty propagation).

    Parameters
    ----------
    regions : sequence of Region
        Source and target regions (names unique).
    nuclide : str or EmissionSource
        Nuclide name or emission data.
    administered_activity_mbq : float, optional
        Administered activity, MBq, for ``dose_gy_per_gbq``.
    s_table : SValueTable, optional
        Cross-dose S values ``S(target ← source)``; pairs between listed regions are used, self pairs
        are refused (self-dose comes from the patient's mass).
    include_progeny : bool
        Add the emissions of radioactive progeny in equilibrium (per parent decay) for a nuclide name.

    Returns
    -------
    tuple of RegionDose
        In the order of ``regions``.

    References
    ----------
    Bolch et al. 2009 (MIRD Pamphlet 21), J Nucl Med 50:477; Gear et al. 2018, EJNMMI 45:2456.
    """
    if not regions:
        raise InputError("regions is empty: give at least one region")
    names = [r.name for r in regions]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(f"region names must be unique; {', '.join(duplicated)} repeated: rename them")
    if administered_activity_mbq is not None and not (
        administered_activity_mbq > 0.0 and math.isfinite(administered_activity_mbq)
    ):
        raise InputError(
            f"administered_activity_mbq must be a positive number; got {administered_activity_mbq!r}"
        )
    by_name = {r.name: r for r in regions}
    if s_table is not None:
        for pair_source, pair_target in s_table.values:
            if pair_source == pair_target and pair_source in by_name:
                raise InputError(
                    f"S-value table {s_table.origin!r} gives a self-dose S value for {pair_source!r}: "
                    "self-dose is computed from the region's mass; keep only cross-dose pairs"
                )
    emitter = resolve_nuclide(nuclide, include_progeny=include_progeny)
    results = []
    for target in regions:
        s_self_parts = self_s_value(emitter, mass_g=target.mass_g, kind=target.kind)
        s_self = s_self_parts.s_value_mgy_per_mbq_s
        step_g = MASS_DERIVATIVE_STEP * target.mass_g
        s_plus = self_s_value(emitter, mass_g=target.mass_g + step_g, kind=target.kind).s_value_mgy_per_mbq_s
        s_minus = self_s_value(emitter, mass_g=target.mass_g - step_g, kind=target.kind).s_value_mgy_per_mbq_s
        ds_dm = (s_plus - s_minus) / (2.0 * step_g)

        self_dose = dose_gy_from_tia(target.tia_mbq_h, s_self)
        gradient = [dose_gy_from_tia(1.0, s_self), dose_gy_from_tia(target.tia_mbq_h, ds_dm)]
        sigmas = [target.tia_sigma_mbq_h, target.mass_sigma_g]
        cross_dose = 0.0
        if s_table is not None:
            for source_name in s_table.sources_for(target.name):
                if source_name == target.name or source_name not in by_name:
                    continue
                s_cross = s_table.get(source=source_name, target=target.name)
                if s_cross is None:
                    continue
                source_region = by_name[source_name]
                cross_dose += dose_gy_from_tia(source_region.tia_mbq_h, s_cross)
                gradient.append(dose_gy_from_tia(1.0, s_cross))
                sigmas.append(source_region.tia_sigma_mbq_h)
        covariance = covariance_matrix(sigmas, correlations=[(0, 1, target.tia_mass_correlation)])
        sigma = propagate_first_order(np.asarray(gradient), covariance)
        dose = self_dose + cross_dose
        per_gbq = None if administered_activity_mbq is None else dose / mbq_to_gbq(administered_activity_mbq)
        results.append(
            RegionDose(
                name=target.name,
                kind=target.kind,
                dose_gy=dose,
                dose_sigma_gy=sigma,
                dose_gy_per_gbq=per_gbq,
                self_dose_gy=self_dose,
                cross_dose_gy=cross_dose,
                alpha_dose_gy=dose_gy_from_tia(target.tia_mbq_h, s_self_parts.s_alpha_mgy_per_mbq_s),
                s_self_mgy_per_mbq_s=s_self,
                mass_g=target.mass_g,
                tia_mbq_h=target.tia_mbq_h,
            )
        )
    return tuple(results)
