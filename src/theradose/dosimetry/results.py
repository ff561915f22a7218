"""The study dose record: one typed, versioned result per dosimetry study (``doses.json``).

:class:`StudyDoses` is what the pipeline and the synthetic cohort runs write and what the planner, the
service, the registry and the report read, all through this module (:meth:`StudyDoses.to_json`,
:meth:`StudyDoses.from_json`, :func:`read_doses`, :func:`write_doses`). Its JSON Schema is published with
the package (:func:`doses_schema`, ``theradose schema doses``).

Conventions of the record
-------------------------
- **The dose of a region.** A region may have several dose estimates (:class:`EngineDose`): one per voxel
  engine that ran (``local``, ``vsv``, ``mc``; :mod:`~theradose.dosimetry.engines.registry`) and the
  organ-level MIRD dose (source ``"organ"``). The study states once which of them is *the* dose
  (:attr:`StudyDoses.reference_dose`); every screen shows that dose and names its source
  (:meth:`StudyDoses.rows`). A region without that estimate has no dose (``None``), never another one.
- **Mean dose.** A voxel engine's region dose is the mass-weighted mean of its voxel doses,
  D̄ = Σ m_v D_v / Σ m_v (:func:`mean_dose_gy`): the mean absorbed dose of MIRD Pamphlet 21, energy
  imparted over mass (Bolch et al. 2009, J Nucl Med 50:477).
- **BED** (:class:`Bed`) is computed from the region's reference dose and records that dose, its source,
  the tissue and the α/β, repair half-time and effective half-life used.
- **DVH**: one type, the cumulative DVH of ICRU Report 83 section 2.3 (:class:`~theradose.dosimetry.dvh.Dvh`).
- **Numbers** are stated to 6 significant digits (:func:`round_sig`) when the record is made, so the
  record in memory, ``doses.json`` and every reader hold the same digits.

- **Uncertainty.** Every region's reference dose and its BED carry one uncertainty budget
  (:class:`~theradose.dosimetry.uncertainty_budget.UncertaintyBudget`, EANM guidance, Gear et al. 2018):
  its components, their sources, the dominant terms, the dose and BED standard uncertainties. The
  reference dose's ``dose_sigma_gy`` is the budget's.
- **Kinetics.** How each region's TIA was obtained (:class:`KineticsRecord`): model, flags (failed goodness
  of fit, single time point outside its window, ...), the fitted parameters and their covariance, so a
  later cycle can use this cycle's fit (single time point from the earlier cycle).

Versions: 3 (this module). Version 1 files (written before the record existed) and version 2 files
(before the uncertainty budget and the kinetics record) are upgraded on read (:func:`upgrade_v1`,
:func:`upgrade_v2`); the upgrade is recorded in :attr:`StudyDoses.upgraded_from`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from theradose.dosimetry.dvh import Dvh, mean_dose_gy
from theradose.dosimetry.engines.registry import parse_engine
from theradose.dosimetry.uncertainty_budget import COMPONENTS, BudgetComponent, UncertaintyBudget
from theradose.errors import InputError
from theradose.jsonsafe import finite_or_null

#: ``format`` of every dose record.
DOSES_FORMAT = "theradose-doses"
#: Version written by this module.
DOSES_VERSION = 3
#: Source name of the organ-level MIRD dose among a region's dose estimates.
ORGAN_SOURCE = "organ"
#: Significant digits of the numbers of the record.
SIGNIFICANT_DIGITS = 6
#: Definition of every voxel engine's region dose (written into the record).
MEAN_DOSE_DEFINITION = "mass-weighted mean of the voxel doses (MIRD Pamphlet 21 mean absorbed dose)"
#: File of the JSON Schema (in this package).
SCHEMA_FILE = "doses.schema.json"


class RegionKind(StrEnum):
    """Whether a region is an organ (or other normal tissue) or a tumour."""

    ORGAN = "organ"
    TUMOUR = "tumour"


def round_sig(value: float | None, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """``value`` to ``digits`` significant digits (None and non-finite → None)."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")


# ------------------------------------------------------------------------------------------ parts
_KIND_NAMES: Mapping[Any, str] = {str: "a string", dict: "an object", (int, float): "a number"}


def _need(value: Any, where: str, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(
            f"{where} must be {_KIND_NAMES.get(kind, str(kind))}; got {value!r}: fix the dose record"
        )
    return value


def _number(value: Any, where: str, *, optional: bool = True, positive: bool = False) -> float | None:
    if value is None:
        if optional:
            return None
        raise InputError(f"{where} is missing: fix the dose record")
    number = float(_need(value, where, (int, float)))
    if not math.isfinite(number) or (positive and number <= 0) or (not positive and number < 0):
        sign = "> 0" if positive else ">= 0"
        raise InputError(f"{where} must be a finite number {sign}; got {value!r}: fix the dose record")
    return number


#: Region flags of the record (besides the kinetics flags of :class:`KineticsRecord`).
#: ``below_resolution``: the region is smaller than the smallest volume its recovery curve was measured
#: for (its recovery coefficient is extrapolated) or, without correction, than the curve's half-recovery
#: volume; ``partial_volume_not_corrected``: no partial-volume correction was applied to a region below
#: resolution.
REGION_FLAGS: tuple[str, ...] = ("below_resolution", "partial_volume_not_corrected")


@dataclass(frozen=True)
class KineticsRecord:
    """How a region's time-integrated activity was obtained, with what a physicist must look at.

    Attributes
    ----------
    method : {"fit", "single_time_point"}
    model : str
        Fitted form (``mono``, ``bi_physical``, ..., ``trapezoid``) or single-time-point method
        (``stp-hanscheid``, ``stp-madsen``, ``stp-earlier-cycle``).
    flags : tuple of str
        Machine-readable warnings: the fit flags of :data:`theradose.kinetics.FIT_FLAGS` and
        ``stp_time_outside_window``, ``earlier_cycle_fit_unavailable``.
    notes : tuple of str
        The flags and choices in words.
    selection_criterion : str or None
        ``"AICc"``/``"AIC"`` in automatic selection, else None.
    chi_square, dof, p_value
        χ² goodness of fit of the selected form (None when untested).
    tia_sigma_scaled_mbq_h : float or None
        TIA σ scaled by sqrt(max(1, χ²/ν)) (what the budget carries).
    parameters : mapping of str to float
        Fitted parameters (amplitudes MBq, rates 1/h) in the form's order.
    covariance : tuple of tuples or None
        Their covariance (same order).
    decay_constant_per_h : float or None
        Physical decay constant the form was fitted with.
    effective_half_life_sigma_h : float or None
    time_h, activity_mbq, sigma_mbq : tuple of float
        The measured TAC the TIA came from (after partial-volume correction).
    half_life_source : str or None
        Single time point: where the half-life or curve shape came from.
    time_in_half_lives : float or None
        Single time point: scan time over the effective half-life.
    """

    method: str
    model: str
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    selection_criterion: str | None = None
    chi_square: float | None = None
    dof: int | None = None
    p_value: float | None = None
    tia_sigma_scaled_mbq_h: float | None = None
    parameters: Mapping[str, float] = field(default_factory=dict)
    covariance: tuple[tuple[float, ...], ...] | None = None
    decay_constant_per_h: float | None = None
    effective_half_life_sigma_h: float | None = None
    time_h: tuple[float, ...] = ()
    activity_mbq: tuple[float, ...] = ()
    sigma_mbq: tuple[float, ...] = ()
    half_life_source: str | None = None
    time_in_half_lives: float | None = None

    def __post_init__(self) -> None:
        if self.method not in ("fit", "single_time_point"):
            raise InputError(f"kinetics.method must be 'fit' or 'single_time_point'; got {self.method!r}")
        n = len(self.parameters)
        if self.covariance is not None and (
            len(self.covariance) != n or any(len(row) != n for row in self.covariance)
        ):
            raise InputError(
                f"kinetics of model {self.model!r}: covariance must be {n} x {n} (one row per parameter)"
            )
        if not len(self.time_h) == len(self.activity_mbq) == len(self.sigma_mbq):
            raise InputError("kinetics: time_h, activity_mbq and sigma_mbq must have the same length")

    @property
    def goodness_of_fit_failed(self) -> bool:
        """Whether the χ² test rejected the selected form."""
        return "goodness_of_fit_failed" in self.flags


@dataclass(frozen=True)
class Calibration:
    """The SPECT calibration the study's activities rest on (from the QA record the study file names).

    Attributes
    ----------
    mode : {"bqml", "factor"}
        ``bqml``: images already in Bq/mL (the camera's quantitative reconstruction, calibrated with
        ``factor_cps_per_mbq``); ``factor``: counts divided by the factor here.
    factor_cps_per_mbq, factor_sigma_cps_per_mbq : float or None
        Calibration factor and its standard uncertainty (from the QA record; None without a record).
    measured : datetime or None
        When the calibration was measured.
    camera : str
        Camera (and collimator) the record is for.
    record : str
        File name of the QA record and its SHA-256, or "" without a record.
    """

    mode: str
    factor_cps_per_mbq: float | None = None
    factor_sigma_cps_per_mbq: float | None = None
    measured: datetime | None = None
    camera: str = ""
    record: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("bqml", "factor"):
            raise InputError(f"calibration.mode must be 'bqml' or 'factor'; got {self.mode!r}")
        for name in ("factor_cps_per_mbq", "factor_sigma_cps_per_mbq"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(f"calibration.{name} must be finite and >= 0; got {value!r}")
        if self.measured is not None and self.measured.tzinfo is None:
            raise InputError("calibration.measured has no time zone: give the UTC offset")

    @property
    def relative_sigma(self) -> float | None:
        """σ/factor of the calibration (None without a record)."""
        if not self.factor_cps_per_mbq or self.factor_sigma_cps_per_mbq is None:
            return None
        return self.factor_sigma_cps_per_mbq / self.factor_cps_per_mbq


@dataclass(frozen=True)
class EngineDose:
    """One dose estimate of a region.

    Attributes
    ----------
    source : str
        ``"organ"`` (organ-level MIRD) or a voxel engine name.
    dose_gy, dose_sigma_gy : float or None
        Mean absorbed dose and its standard uncertainty (None: not computable, e.g. no mass).
    method : str
        How it was computed, in words.
    dvh : Dvh or None
        Cumulative DVH of the region under this engine (None for the organ-level dose).
    """

    source: str
    dose_gy: float | None
    dose_sigma_gy: float | None
    method: str = ""
    dvh: Dvh | None = None

    def __post_init__(self) -> None:
        if not self.source:
            raise InputError("a dose estimate needs its source: 'organ' or a voxel engine name")
        for name in ("dose_gy", "dose_sigma_gy"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name} of source {self.source!r} must be finite and >= 0; got {value}")


@dataclass(frozen=True)
class Bed:
    """Biologically effective dose of a region and everything it was computed from.

    BED of a mono-exponentially decaying dose rate delivered to complete decay (Dale 1985, Br J Radiol
    58:515), from ``dose_gy`` (the region's reference dose, source ``dose_source``) with the tissue's
    linear-quadratic parameters and the region's effective half-life.
    """

    bed_gy: float
    dose_gy: float
    dose_source: str
    tissue: str
    alpha_beta_gy: float
    repair_half_time_h: float
    effective_half_life_h: float
    parameters_source: str = ""

    def __post_init__(self) -> None:
        for name in ("bed_gy", "dose_gy"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise InputError(f"BED {name} must be finite and >= 0; got {getattr(self, name)}")
        for name in ("alpha_beta_gy", "repair_half_time_h", "effective_half_life_h"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise InputError(f"BED {name} must be > 0; got {getattr(self, name)}")


@dataclass(frozen=True)
class PartialVolume:
    """How a region's activity was corrected for partial volume (model-based correction,
    :mod:`theradose.imaging.pvc`).

    Attributes
    ----------
    method : str
        ``"gtm"``, ``"rbv"`` or ``"recovery_curve"`` (a lesion corrected by the recovery curve).
    self_recovery : float or None
        Fraction of the region's counts that stay in it under the response used (ω).
    fwhm_mm, equivalent_diameter_mm : float or None
        The response (Gaussian FWHM) and the equivalent-sphere diameter it was chosen for.
    activity_relative_sigma : float or None
        Relative standard uncertainty of the corrected activity from the response model.
    below_resolvable_size : bool
        ω below 0.5: more than half of the region's counts were measured outside it; its uncertainty is
        widened to half its correction.
    """

    method: str
    self_recovery: float | None = None
    fwhm_mm: float | None = None
    equivalent_diameter_mm: float | None = None
    activity_relative_sigma: float | None = None
    below_resolvable_size: bool = False


@dataclass(frozen=True)
class RegionResult:
    """Everything computed for one region (units in the names; see the module docstring).

    ``doses`` holds every estimate, keyed by source in the order computed; the reference one is chosen by
    the study (:attr:`StudyDoses.reference_dose`). ``organ`` is the region's organ in the organ registry
    (None for a region that is no organ of it); ``tissue`` the tissue used for its radiobiology.
    """

    name: str
    kind: RegionKind
    doses: tuple[EngineDose, ...]
    volume_ml: float | None = None
    mass_g: float | None = None
    tia_mbq_h: float | None = None
    tia_sigma_mbq_h: float | None = None
    kinetics_model: str = ""
    effective_half_life_h: float | None = None
    recovery_coefficient: float | None = None
    organ: str | None = None
    tissue: str | None = None
    bed: Bed | None = None
    uncertainty: UncertaintyBudget | None = None
    kinetics: KineticsRecord | None = None
    flags: tuple[str, ...] = ()
    partial_volume: PartialVolume | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise InputError("a region needs a name")
        unknown_flags = [f for f in self.flags if f not in REGION_FLAGS]
        if unknown_flags:
            raise InputError(
                f"region {self.name!r} has flag {unknown_flags[0]!r}: use one of {', '.join(REGION_FLAGS)}"
            )
        sources = [d.source for d in self.doses]
        if len(set(sources)) != len(sources):
            raise InputError(f"region {self.name!r} lists a dose source twice: {sources}")

    def dose(self, source: str) -> EngineDose | None:
        """The estimate of ``source`` (``"organ"`` or an engine), or None."""
        return next((d for d in self.doses if d.source == source), None)

    @property
    def sources(self) -> tuple[str, ...]:
        """Sources of the region's estimates, in order."""
        return tuple(d.source for d in self.doses)

    @property
    def all_flags(self) -> tuple[str, ...]:
        """The region's flags and its kinetics flags, in that order."""
        return (*self.flags, *(() if self.kinetics is None else self.kinetics.flags))


@dataclass(frozen=True)
class Patient:
    """Who the study is of: identifier (DICOM Patient ID or pseudonym) and name."""

    id: str
    name: str = ""


@dataclass(frozen=True)
class Administration:
    """What was given and when (timezone-aware)."""

    nuclide: str
    radiopharmaceutical: str
    activity_mbq: float
    datetime: datetime

    def __post_init__(self) -> None:
        if not (math.isfinite(self.activity_mbq) and self.activity_mbq > 0):
            raise InputError(f"administration.activity_mbq must be > 0; got {self.activity_mbq}")
        if self.datetime.tzinfo is None:
            raise InputError(
                f"administration.datetime {self.datetime.isoformat()} has no time zone: give the UTC offset"
            )


@dataclass(frozen=True)
class DoseRow:
    """What every screen shows of one region: the reference dose, named, and its BED."""

    name: str
    kind: RegionKind
    source: str
    dose_gy: float | None
    dose_sigma_gy: float | None
    dose_gy_per_gbq: float | None
    dose_sigma_gy_per_gbq: float | None
    bed_gy: float | None
    effective_half_life_h: float | None
    volume_ml: float | None
    mass_g: float | None
    tissue: str | None
    bed_sigma_gy: float | None = None
    dominant: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyDoses:
    """The dose record of one study (``doses.json``); see the module docstring for its conventions.

    Attributes
    ----------
    patient, cycle, administration
        Whose study, which cycle, what was given.
    reference_dose : str
        Source of *the* dose of every region: ``"organ"`` or one of ``engines``.
    engines : tuple of str
        Voxel engines that ran, in the study's order.
    regions : tuple of RegionResult
    timepoints_h : tuple of float
        Imaging times after administration.
    registration : mapping or None
        ``method`` and ``reference_timepoint`` (1-based) of the pipeline's registration.
    partial_volume_correction : bool
    organ_partial_volume_correction : mapping or None
        ``method`` and ``margin_mm`` of the organ correction.
    plan : mapping or None
        The next-cycle plan computed with this study (:meth:`theradose.planning.NextCycleResult.as_dict`).
    partial_volume_model : mapping or None
        The model-based partial-volume correction used (method, resolution file, compartments per time
        point, condition numbers).
    red_marrow : mapping or None
        Red marrow self-doses by the blood-based and the image-based method with their uncertainty
        budgets and disagreement (:meth:`theradose.dosimetry.marrow.MarrowComparison.as_dict`).
    calibration : Calibration or None
        The SPECT calibration (factor, σ, date, camera, QA record).
    site_time_zone : str or None
        IANA time zone of the site (study file ``[site] time_zone``) in which reports show times.
    provenance : mapping or None
        ``software`` (theradose version), ``study_file_sha256``, ``inputs_sha256`` (one SHA-256 over the
        sorted per-file SHA-256 of every input) and ``input_files`` (their number).
    upgraded_from : int or None
        Version of the file this record was read from, when older than :data:`DOSES_VERSION`.
    """

    patient: Patient
    cycle: int
    administration: Administration
    reference_dose: str
    engines: tuple[str, ...]
    regions: tuple[RegionResult, ...]
    timepoints_h: tuple[float, ...] = ()
    registration: Mapping[str, Any] | None = None
    partial_volume_correction: bool = False
    organ_partial_volume_correction: Mapping[str, Any] | None = None
    plan: Mapping[str, Any] | None = None
    partial_volume_model: Mapping[str, Any] | None = None
    red_marrow: Mapping[str, Any] | None = None
    calibration: Calibration | None = None
    site_time_zone: str | None = None
    provenance: Mapping[str, Any] | None = None
    upgraded_from: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.cycle, bool) or not isinstance(self.cycle, int) or self.cycle < 1:
            raise InputError(f"cycle must be a whole number >= 1; got {self.cycle!r}")
        if not self.regions:
            raise InputError("a dose record needs at least one region")
        for engine in self.engines:
            parse_engine(engine, field="engines entry")
        if len(set(self.engines)) != len(self.engines):
            raise InputError(f"engines lists an engine twice: {list(self.engines)}")
        names = [r.name for r in self.regions]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InputError(f"region {twice[0]!r} appears twice in the dose record")
        choices = (ORGAN_SOURCE, *self.engines)
        if self.reference_dose not in choices:
            raise InputError(
                f"reference_dose {self.reference_dose!r} is not a dose of this study: use one of "
                f"{', '.join(choices)}"
            )
        for region in self.regions:
            unknown = [s for s in region.sources if s not in choices]
            if unknown:
                raise InputError(
                    f"region {region.name!r} has a dose of {unknown[0]!r}, not run in this study"
                )
            if region.bed is not None:
                chosen = region.dose(self.reference_dose)
                if (
                    region.bed.dose_source != self.reference_dose
                    or chosen is None
                    or (chosen.dose_gy != region.bed.dose_gy)
                ):
                    raise InputError(
                        f"BED of region {region.name!r} is computed from {region.bed.dose_source} "
                        f"{region.bed.dose_gy} Gy, not from the region's dose ({self.reference_dose}): "
                        "compute it from the reference dose"
                    )
            self._check_budget(region)
        if self.site_time_zone is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(self.site_time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InputError(
                    f"site_time_zone {self.site_time_zone!r} is not an IANA time zone (e.g. Europe/Berlin)"
                ) from None

    def _check_budget(self, region: RegionResult) -> None:
        """A region's budget is the budget of its reference dose (and of the BED of that dose)."""
        budget = region.uncertainty
        if budget is None:
            return
        chosen = region.dose(self.reference_dose)
        if (
            chosen is None
            or chosen.dose_gy is None
            or not math.isclose(budget.dose_gy, chosen.dose_gy, rel_tol=1e-5)
        ):
            raise InputError(
                f"uncertainty budget of region {region.name!r} is of {budget.dose_gy} Gy, not of the "
                f"region's {self.reference_dose} dose: compute the budget of the reference dose"
            )
        if chosen.dose_sigma_gy is None or not math.isclose(
            budget.dose_sigma_gy, chosen.dose_sigma_gy, rel_tol=1e-5, abs_tol=1e-12
        ):
            raise InputError(
                f"region {region.name!r}: dose_sigma_gy {chosen.dose_sigma_gy} is not the budget's "
                f"{budget.dose_sigma_gy} Gy: the reference dose carries its budget's uncertainty"
            )
        if region.bed is not None and (
            budget.bed_gy is None or not math.isclose(budget.bed_gy, region.bed.bed_gy, rel_tol=1e-4)
        ):
            raise InputError(
                f"region {region.name!r}: the budget's BED {budget.bed_gy} is not the record's "
                f"{region.bed.bed_gy} Gy: compute the budget with the region's BED parameters"
            )

    # --- reading ------------------------------------------------------------------------------------
    @property
    def activity_gbq(self) -> float:
        """Administered activity (GBq)."""
        from theradose.units import mbq_to_gbq

        return float(mbq_to_gbq(self.administration.activity_mbq))

    def region(self, name: str) -> RegionResult:
        """The region named ``name``.

        Raises
        ------
        InputError
            No such region; the message lists the regions.
        """
        for region in self.regions:
            if region.name == name:
                return region
        raise InputError(
            f"region {name!r} is not in the dose record: use one of {', '.join(r.name for r in self.regions)}"
        )

    def reference(self, region: RegionResult | str) -> EngineDose | None:
        """The reference dose of a region (None when the region has no estimate of that source)."""
        item = self.region(region) if isinstance(region, str) else region
        return item.dose(self.reference_dose)

    def row(self, region: RegionResult | str, *, source: str | None = None) -> DoseRow:
        """What a screen shows of a region: its reference dose (or the dose of ``source``), per GBq, BED.

        The BED is shown only next to the reference dose it was computed from.
        """
        item = self.region(region) if isinstance(region, str) else region
        chosen_source = self.reference_dose if source is None else source
        if chosen_source not in (ORGAN_SOURCE, *self.engines):
            raise InputError(
                f"dose source {chosen_source!r} is not in this study: use {ORGAN_SOURCE!r} or one of its "
                f"engines {list(self.engines)}"
            )
        chosen = item.dose(chosen_source)
        dose = None if chosen is None else chosen.dose_gy
        sigma = None if chosen is None else chosen.dose_sigma_gy
        gbq = self.activity_gbq
        with_bed = item.bed is not None and item.bed.dose_source == chosen_source
        bed = item.bed.bed_gy if with_bed and item.bed is not None else None
        budget = item.uncertainty if chosen_source == self.reference_dose else None
        return DoseRow(
            name=item.name,
            kind=item.kind,
            source=chosen_source,
            dose_gy=dose,
            dose_sigma_gy=sigma,
            dose_gy_per_gbq=round_sig(dose / gbq) if dose is not None else None,
            dose_sigma_gy_per_gbq=round_sig(sigma / gbq) if sigma is not None else None,
            bed_gy=bed,
            effective_half_life_h=item.effective_half_life_h,
            volume_ml=item.volume_ml,
            mass_g=item.mass_g,
            tissue=item.tissue,
            bed_sigma_gy=None if budget is None or bed is None else budget.bed_sigma_gy,
            dominant=() if budget is None else budget.dominant,
            flags=item.all_flags,
        )

    def rows(self, *, source: str | None = None) -> tuple[DoseRow, ...]:
        """:meth:`row` of every region, in the record's order."""
        return tuple(self.row(r, source=source) for r in self.regions)

    def __iter__(self) -> Iterator[RegionResult]:
        return iter(self.regions)

    # --- JSON ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (the shape of :func:`doses_schema`)."""
        gbq = self.activity_gbq
        out: dict[str, Any] = {
            "format": DOSES_FORMAT,
            "version": DOSES_VERSION,
            "patient": {"id": self.patient.id, "name": self.patient.name},
            "cycle": self.cycle,
            "administration": {
                "nuclide": self.administration.nuclide,
                "radiopharmaceutical": self.administration.radiopharmaceutical,
                "activity_mbq": self.administration.activity_mbq,
                "datetime": self.administration.datetime.isoformat(),
            },
            "reference_dose": self.reference_dose,
            "engines": list(self.engines),
            "mean_dose": MEAN_DOSE_DEFINITION,
            "timepoints_h": list(self.timepoints_h),
            "registration": _plain(self.registration),
            "partial_volume_correction": self.partial_volume_correction,
            "organ_partial_volume_correction": (
                None
                if self.organ_partial_volume_correction is None
                else dict(self.organ_partial_volume_correction)
            ),
            "regions": [_region_to_dict(r, self.reference_dose, gbq) for r in self.regions],
        }
        out["calibration"] = None if self.calibration is None else _calibration_to_dict(self.calibration)
        out["site_time_zone"] = self.site_time_zone
        out["provenance"] = None if self.provenance is None else finite_or_null(dict(self.provenance))
        if self.upgraded_from is not None:
            out["upgraded_from"] = self.upgraded_from
        if self.plan is not None:
            out["plan"] = finite_or_null(dict(self.plan))
        if self.partial_volume_model is not None:
            out["partial_volume_model"] = finite_or_null(dict(self.partial_volume_model))
        if self.red_marrow is not None:
            out["red_marrow"] = finite_or_null(dict(self.red_marrow))
        return out

    def to_json(self) -> str:
        """The exact text of ``doses.json`` (2-space indent, trailing newline; reproducible)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "doses.json") -> StudyDoses:
        """Validate a parsed dose record (version 2, or version 1 upgraded; see :func:`upgrade_v1`)."""
        if not isinstance(data, Mapping):
            raise InputError(f"{source} must hold a JSON object: give a theradose doses.json")
        if data.get("format") != DOSES_FORMAT:
            raise InputError(
                f"{source} is not a theradose dose record (format {DOSES_FORMAT!r}, version "
                f"{DOSES_VERSION}): give the doses.json of 'theradose run' or 'theradose batch'"
            )
        version = data.get("version", 1)
        if version == 1:
            return upgrade_v1(data, source=source)
        if version == 2:
            return upgrade_v2(data, source=source)
        if version != DOSES_VERSION:
            raise InputError(
                f"{source} has doses version {version!r}; this theradose reads versions 1 to "
                f"{DOSES_VERSION}: update theradose"
            )
        return _from_current(data, source)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "doses.json") -> StudyDoses:
        """Parse and validate the text of a ``doses.json``."""
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(
                f"{source} is not readable JSON ({exc}): give the pipeline's doses.json"
            ) from None
        return cls.from_dict(data, source=source)


def read_doses(path: str | Path) -> StudyDoses:
    """Read a ``doses.json`` file (see :meth:`StudyDoses.from_json`)."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"doses file {str(p)!r} does not exist: check the path") from None
    except OSError as exc:
        raise InputError(f"doses file {str(p)!r} cannot be read ({exc.strerror}): check the file") from None
    return StudyDoses.from_json(text, source=str(p))


def write_doses(doses: StudyDoses, path: str | Path) -> Path:
    """Write ``doses.json`` (:meth:`StudyDoses.to_json`)."""
    p = Path(path)
    p.write_text(doses.to_json(), encoding="utf-8")
    return p


def doses_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``doses.json`` version :data:`DOSES_VERSION`."""
    text = resources.files("theradose.dosimetry").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# ------------------------------------------------------------------------------------------ writing


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


def _per_gbq(dose_gy: float | None, gbq: float) -> float | None:
    return None if dose_gy is None else round_sig(dose_gy / gbq)


def _positive(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = _number(raw.get(key), f"{where}.{key}", optional=False, positive=True)
    assert value is not None
    return value


def _dvh_to_dict(dvh: Dvh) -> dict[str, Any]:
    return {"dose_gy": list(dvh.dose_gy), "cumulative_fraction": list(dvh.cumulative_fraction)}


def _region_to_dict(region: RegionResult, reference: str, gbq: float) -> dict[str, Any]:
    def estimate(d: EngineDose) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dose_gy": d.dose_gy,
            "dose_sigma_gy": d.dose_sigma_gy,
            "dose_gy_per_gbq": _per_gbq(d.dose_gy, gbq),
            "method": d.method,
        }
        if d.dvh is not None:
            out["dvh"] = _dvh_to_dict(d.dvh)
        return out

    chosen = region.dose(reference)
    out: dict[str, Any] = {
        "name": region.name,
        "kind": region.kind.value,
        "organ": region.organ,
        "tissue": region.tissue,
        "volume_ml": region.volume_ml,
        "mass_g": region.mass_g,
        "tia_mbq_h": region.tia_mbq_h,
        "tia_sigma_mbq_h": region.tia_sigma_mbq_h,
        "kinetics_model": region.kinetics_model,
        "effective_half_life_h": region.effective_half_life_h,
        "recovery_coefficient": region.recovery_coefficient,
        "dose": {
            "source": reference,
            "dose_gy": None if chosen is None else chosen.dose_gy,
            "dose_sigma_gy": None if chosen is None else chosen.dose_sigma_gy,
            "dose_gy_per_gbq": None
            if chosen is None or chosen.dose_gy is None
            else round_sig(chosen.dose_gy / gbq),
        },
        "doses": {d.source: estimate(d) for d in region.doses},
        "bed": None if region.bed is None else _bed_to_dict(region.bed),
        "uncertainty": None if region.uncertainty is None else finite_or_null(region.uncertainty.to_dict()),
        "kinetics": None if region.kinetics is None else _kinetics_to_dict(region.kinetics),
        "flags": list(region.flags),
    }
    if region.partial_volume is not None:
        pv = region.partial_volume
        out["partial_volume"] = {
            "method": pv.method,
            "self_recovery": pv.self_recovery,
            "fwhm_mm": pv.fwhm_mm,
            "equivalent_diameter_mm": pv.equivalent_diameter_mm,
            "activity_relative_sigma": pv.activity_relative_sigma,
            "below_resolvable_size": pv.below_resolvable_size,
        }
    return out


def _bed_to_dict(bed: Bed) -> dict[str, Any]:
    return {
        "bed_gy": bed.bed_gy,
        "dose_gy": bed.dose_gy,
        "dose_source": bed.dose_source,
        "tissue": bed.tissue,
        "alpha_beta_gy": bed.alpha_beta_gy,
        "repair_half_time_h": bed.repair_half_time_h,
        "effective_half_life_h": bed.effective_half_life_h,
        "parameters_source": bed.parameters_source,
    }


def _kinetics_to_dict(k: KineticsRecord) -> dict[str, Any]:
    return finite_or_null(  # type: ignore[no-any-return]
        {
            "method": k.method,
            "model": k.model,
            "flags": list(k.flags),
            "notes": list(k.notes),
            "selection_criterion": k.selection_criterion,
            "chi_square": k.chi_square,
            "dof": k.dof,
            "p_value": k.p_value,
            "tia_sigma_scaled_mbq_h": k.tia_sigma_scaled_mbq_h,
            "parameters": dict(k.parameters),
            "covariance": None if k.covariance is None else [list(row) for row in k.covariance],
            "decay_constant_per_h": k.decay_constant_per_h,
            "effective_half_life_sigma_h": k.effective_half_life_sigma_h,
            "time_h": list(k.time_h),
            "activity_mbq": list(k.activity_mbq),
            "sigma_mbq": list(k.sigma_mbq),
            "half_life_source": k.half_life_source,
            "time_in_half_lives": k.time_in_half_lives,
        }
    )


def _calibration_to_dict(c: Calibration) -> dict[str, Any]:
    return {
        "mode": c.mode,
        "factor_cps_per_mbq": c.factor_cps_per_mbq,
        "factor_sigma_cps_per_mbq": c.factor_sigma_cps_per_mbq,
        "measured": None if c.measured is None else c.measured.isoformat(),
        "camera": c.camera,
        "record": c.record,
    }


# ------------------------------------------------------------------------------------------ reading
def _text(value: Any, where: str, *, optional: bool = False) -> str:
    if value is None and optional:
        return ""
    return str(_need(value, where, str))


def _dvh_from(raw: Any, where: str) -> Dvh:
    _need(raw, where, dict)
    doses, fractions = raw.get("dose_gy"), raw.get("cumulative_fraction")
    if not isinstance(doses, list) or not isinstance(fractions, list):
        raise InputError(f"{where}: dose_gy and cumulative_fraction must be lists: fix the dose record")
    try:
        return Dvh(tuple(float(v) for v in doses), tuple(float(v) for v in fractions))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None


def _estimate_from(source: str, raw: Any, where: str) -> EngineDose:
    _need(raw, where, dict)
    return EngineDose(
        source=source,
        dose_gy=_number(raw.get("dose_gy"), f"{where}.dose_gy"),
        dose_sigma_gy=_number(raw.get("dose_sigma_gy"), f"{where}.dose_sigma_gy"),
        method=_text(raw.get("method"), f"{where}.method", optional=True),
        dvh=None if raw.get("dvh") is None else _dvh_from(raw["dvh"], f"{where}.dvh"),
    )


def _bed_from(raw: Any, where: str) -> Bed | None:
    if raw is None:
        return None
    _need(raw, where, dict)
    return Bed(
        bed_gy=_number(raw.get("bed_gy"), f"{where}.bed_gy", optional=False) or 0.0,
        dose_gy=_number(raw.get("dose_gy"), f"{where}.dose_gy", optional=False) or 0.0,
        dose_source=_text(raw.get("dose_source"), f"{where}.dose_source"),
        tissue=_text(raw.get("tissue"), f"{where}.tissue"),
        alpha_beta_gy=_number(
            raw.get("alpha_beta_gy"), f"{where}.alpha_beta_gy", optional=False, positive=True
        )
        or math.nan,
        repair_half_time_h=_number(
            raw.get("repair_half_time_h"), f"{where}.repair_half_time_h", optional=False, positive=True
        )
        or math.nan,
        effective_half_life_h=_number(
            raw.get("effective_half_life_h"), f"{where}.effective_half_life_h", optional=False, positive=True
        )
        or math.nan,
        parameters_source=_text(raw.get("parameters_source"), f"{where}.parameters_source", optional=True),
    )


def _uncertainty_from(raw: Any, where: str) -> UncertaintyBudget | None:
    if raw is None:
        return None
    _need(raw, where, dict)
    try:
        return UncertaintyBudget.from_dict(raw)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _uncertainty_from_v2(raw: Any, where: str, dose: EngineDose | None) -> UncertaintyBudget | None:
    """A version 2 budget (the TIA term alone) as a budget: one assessed component, ``fit_tia``, whose
    relative σ was the whole dose σ (sensitivity 1, all the variance); the other components not assessed."""
    if raw is None or dose is None or dose.dose_gy is None or dose.dose_sigma_gy is None:
        return None
    _need(raw, where, dict)
    rel = _number(raw.get("combined_relative_sigma"), f"{where}.combined_relative_sigma")
    if rel is None:
        return None
    component = BudgetComponent("fit_tia", rel, 1.0, rel, 1.0, source="version 2 record: TIA term alone")
    return UncertaintyBudget(
        region="",
        dose_gy=dose.dose_gy,
        dose_sigma_gy=dose.dose_sigma_gy,
        dose_relative_sigma=rel,
        components=(component,),
        not_assessed=tuple(c for c in COMPONENTS if c != "fit_tia"),
        dominant=("fit_tia",),
        method=_text(raw.get("method"), f"{where}.method", optional=True),
    )


def _floats(raw: Any, where: str) -> tuple[float, ...]:
    if not isinstance(raw, list):
        raise InputError(f"{where} must be a list of numbers: fix the dose record")
    return tuple(float(_need(v, f"{where}[{i}]", (int, float))) for i, v in enumerate(raw))


def _kinetics_from(raw: Any, where: str) -> KineticsRecord | None:
    if raw is None:
        return None
    _need(raw, where, dict)
    params = raw.get("parameters") or {}
    _need(params, f"{where}.parameters", dict)
    cov = raw.get("covariance")
    dof = raw.get("dof")
    if dof is not None and (isinstance(dof, bool) or not isinstance(dof, int)):
        raise InputError(f"{where}.dof must be a whole number or null; got {dof!r}: fix the dose record")

    def optional(key: str) -> float | None:
        value = raw.get(key)
        return None if value is None else float(_need(value, f"{where}.{key}", (int, float)))

    def texts(key: str) -> tuple[str, ...]:
        values = raw.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InputError(f"{where}.{key} must be a list of strings: fix the dose record")
        return tuple(values)

    return KineticsRecord(
        method=_text(raw.get("method"), f"{where}.method"),
        model=_text(raw.get("model"), f"{where}.model"),
        flags=texts("flags"),
        notes=texts("notes"),
        selection_criterion=raw.get("selection_criterion")
        if isinstance(raw.get("selection_criterion"), str)
        else None,
        chi_square=optional("chi_square"),
        dof=dof,
        p_value=optional("p_value"),
        tia_sigma_scaled_mbq_h=optional("tia_sigma_scaled_mbq_h"),
        parameters={
            str(k): float(_need(v, f"{where}.parameters.{k}", (int, float))) for k, v in params.items()
        },
        covariance=None
        if cov is None
        else tuple(_floats(row, f"{where}.covariance[{i}]") for i, row in enumerate(_need(cov, where, list))),
        decay_constant_per_h=optional("decay_constant_per_h"),
        effective_half_life_sigma_h=optional("effective_half_life_sigma_h"),
        time_h=_floats(raw.get("time_h", []), f"{where}.time_h"),
        activity_mbq=_floats(raw.get("activity_mbq", []), f"{where}.activity_mbq"),
        sigma_mbq=_floats(raw.get("sigma_mbq", []), f"{where}.sigma_mbq"),
        half_life_source=raw.get("half_life_source")
        if isinstance(raw.get("half_life_source"), str)
        else None,
        time_in_half_lives=optional("time_in_half_lives"),
    )


def _calibration_from(raw: Any, where: str) -> Calibration | None:
    if raw is None:
        return None
    _need(raw, where, dict)
    measured = raw.get("measured")
    when = None
    if measured is not None:
        try:
            when = datetime.fromisoformat(_text(measured, f"{where}.measured"))
        except ValueError:
            raise InputError(f"{where}.measured {measured!r} is not an ISO 8601 date-time") from None
    return Calibration(
        mode=_text(raw.get("mode"), f"{where}.mode"),
        factor_cps_per_mbq=_number(raw.get("factor_cps_per_mbq"), f"{where}.factor_cps_per_mbq"),
        factor_sigma_cps_per_mbq=_number(
            raw.get("factor_sigma_cps_per_mbq"), f"{where}.factor_sigma_cps_per_mbq"
        ),
        measured=when,
        camera=_text(raw.get("camera"), f"{where}.camera", optional=True),
        record=_text(raw.get("record"), f"{where}.record", optional=True),
    )


def _kind(value: Any, where: str) -> RegionKind:
    try:
        return RegionKind(value)
    except ValueError:
        raise InputError(f"{where} must be 'organ' or 'tumour'; got {value!r}: fix the dose record") from None


def _region_from(raw: Any, where: str, *, version: int = DOSES_VERSION, reference: str = "") -> RegionResult:
    _need(raw, where, dict)
    doses = raw.get("doses")
    _need(doses, f"{where}.doses", dict)
    estimates = tuple(_estimate_from(str(k), v, f"{where}.doses.{k}") for k, v in doses.items())
    if version == 2:
        chosen = next((d for d in estimates if d.source == reference), None)
        budget = _uncertainty_from_v2(raw.get("uncertainty"), f"{where}.uncertainty", chosen)
        if budget is not None:
            budget = dataclasses.replace(budget, region=_text(raw.get("name"), f"{where}.name"))
        kinetics, flags = None, ()
    else:
        budget = _uncertainty_from(raw.get("uncertainty"), f"{where}.uncertainty")
        kinetics = _kinetics_from(raw.get("kinetics"), f"{where}.kinetics")
        raw_flags = raw.get("flags", [])
        if not isinstance(raw_flags, list) or not all(isinstance(f, str) for f in raw_flags):
            raise InputError(f"{where}.flags must be a list of strings: fix the dose record")
        flags = tuple(raw_flags)
    return RegionResult(
        name=_text(raw.get("name"), f"{where}.name"),
        kind=_kind(raw.get("kind"), f"{where}.kind"),
        doses=estimates,
        volume_ml=_number(raw.get("volume_ml"), f"{where}.volume_ml"),
        mass_g=_number(raw.get("mass_g"), f"{where}.mass_g"),
        tia_mbq_h=_number(raw.get("tia_mbq_h"), f"{where}.tia_mbq_h"),
        tia_sigma_mbq_h=_number(raw.get("tia_sigma_mbq_h"), f"{where}.tia_sigma_mbq_h"),
        kinetics_model=_text(raw.get("kinetics_model"), f"{where}.kinetics_model", optional=True),
        effective_half_life_h=_number(raw.get("effective_half_life_h"), f"{where}.effective_half_life_h"),
        recovery_coefficient=_number(raw.get("recovery_coefficient"), f"{where}.recovery_coefficient"),
        organ=raw.get("organ") if isinstance(raw.get("organ"), str) else None,
        tissue=raw.get("tissue") if isinstance(raw.get("tissue"), str) else None,
        bed=_bed_from(raw.get("bed"), f"{where}.bed"),
        uncertainty=budget,
        kinetics=kinetics,
        flags=flags,
        partial_volume=_partial_volume_from(raw.get("partial_volume"), f"{where}.partial_volume"),
    )


def _partial_volume_from(raw: Any, where: str) -> PartialVolume | None:
    if raw is None:
        return None
    _need(raw, where, dict)
    return PartialVolume(
        method=_text(raw.get("method"), f"{where}.method"),
        self_recovery=_number(raw.get("self_recovery"), f"{where}.self_recovery"),
        fwhm_mm=_number(raw.get("fwhm_mm"), f"{where}.fwhm_mm"),
        equivalent_diameter_mm=_number(raw.get("equivalent_diameter_mm"), f"{where}.equivalent_diameter_mm"),
        activity_relative_sigma=_number(
            raw.get("activity_relative_sigma"), f"{where}.activity_relative_sigma"
        ),
        below_resolvable_size=bool(raw.get("below_resolvable_size", False)),
    )


def _administration(raw: Any, source: str) -> Administration:
    _need(raw, f"{source}: administration", dict)
    when = raw.get("datetime")
    try:
        moment = datetime.fromisoformat(_text(when, f"{source}: administration.datetime"))
    except ValueError:
        raise InputError(
            f"{source}: administration.datetime {when!r} is not an ISO 8601 date-time: fix the dose record"
        ) from None
    return Administration(
        nuclide=_text(raw.get("nuclide"), f"{source}: administration.nuclide"),
        radiopharmaceutical=_text(
            raw.get("radiopharmaceutical"), f"{source}: administration.radiopharmaceutical"
        ),
        activity_mbq=_number(
            raw.get("activity_mbq"), f"{source}: administration.activity_mbq", optional=False, positive=True
        )
        or math.nan,
        datetime=moment,
    )


def _patient(raw: Any, source: str) -> Patient:
    _need(raw, f"{source}: patient", dict)
    return Patient(
        id=_text(raw.get("id"), f"{source}: patient.id"),
        name=_text(raw.get("name"), "patient.name", optional=True),
    )


def _common(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    regions = data.get("regions")
    if not isinstance(regions, list) or not regions:
        raise InputError(f"{source}: regions must be a non-empty list: fix the dose record")
    engines = data.get("engines", [])
    if not isinstance(engines, list) or not all(isinstance(e, str) for e in engines):
        raise InputError(f"{source}: engines must be a list of engine names: fix the dose record")
    cycle = data.get("cycle")
    if isinstance(cycle, bool) or not isinstance(cycle, int):
        raise InputError(f"{source}: cycle must be a whole number; got {cycle!r}: fix the dose record")
    times = data.get("timepoints_h", [])
    return {
        "patient": _patient(data.get("patient"), source),
        "cycle": cycle,
        "administration": _administration(data.get("administration"), source),
        "engines": tuple(engines),
        "timepoints_h": tuple(float(t) for t in times if isinstance(t, (int, float))),
        "registration": data.get("registration") if isinstance(data.get("registration"), Mapping) else None,
        "partial_volume_correction": bool(data.get("partial_volume_correction", False)),
        "organ_partial_volume_correction": (
            data.get("organ_partial_volume_correction")
            if isinstance(data.get("organ_partial_volume_correction"), Mapping)
            else None
        ),
        "plan": data.get("plan") if isinstance(data.get("plan"), Mapping) else None,
        "partial_volume_model": (
            data.get("partial_volume_model")
            if isinstance(data.get("partial_volume_model"), Mapping)
            else None
        ),
        "red_marrow": data.get("red_marrow") if isinstance(data.get("red_marrow"), Mapping) else None,
    }


def _from_current(data: Mapping[str, Any], source: str, *, version: int = DOSES_VERSION) -> StudyDoses:
    common = _common(data, source)
    reference = _text(data.get("reference_dose"), f"{source}: reference_dose")
    regions = tuple(
        _region_from(r, f"{source}: regions[{i}]", version=version, reference=reference)
        for i, r in enumerate(data["regions"])
    )
    if version == DOSES_VERSION:
        zone = data.get("site_time_zone")
        common["calibration"] = _calibration_from(data.get("calibration"), f"{source}: calibration")
        common["site_time_zone"] = _text(zone, f"{source}: site_time_zone") if zone is not None else None
        common["provenance"] = data.get("provenance") if isinstance(data.get("provenance"), Mapping) else None
    else:
        common["upgraded_from"] = version
    doses = StudyDoses(reference_dose=reference, regions=regions, **common)
    for i, raw in enumerate(data["regions"]):
        shown = raw.get("dose") if isinstance(raw, Mapping) else None
        chosen = doses.reference(regions[i])
        stated = None if not isinstance(shown, Mapping) else shown.get("dose_gy")
        if isinstance(shown, Mapping) and (
            shown.get("source") != reference or stated != (None if chosen is None else chosen.dose_gy)
        ):
            raise InputError(
                f"{source}: regions[{i}].dose ({shown.get('source')} {stated} Gy) is not the region's "
                f"{reference} dose: the file was edited by hand; write it with theradose"
            )
    return doses


def upgrade_v2(data: Mapping[str, Any], *, source: str = "doses.json") -> StudyDoses:
    """A version 2 ``doses.json`` (before the uncertainty budget and the kinetics record) as a version 3
    record: every number is kept; the version 2 uncertainty (the TIA term alone) becomes a budget with that
    one component assessed and the others listed as not assessed; no kinetics record, no region flags, no
    calibration. The result says ``upgraded_from = 2``."""
    return _from_current(data, source, version=2)


def upgrade_v1(data: Mapping[str, Any], *, source: str = "doses.json") -> StudyDoses:
    """A version 1 ``doses.json`` (theradose before the typed record) as a version 2 record.

    Version 1 regions hold ``doses`` per engine, an optional ``organ_dose`` and a ``bed_gy`` computed from
    the *first* engine's dose with the region's ``tissue``. The upgrade keeps every number and names what
    version 1 left implicit: the reference dose is the first engine (the dose the report showed and the
    BED was computed from), the organ-level dose becomes source ``"organ"``, and each BED records that
    dose, the tissue and its parameters from the tissue registry (the ones version 1 used). The result
    says ``upgraded_from = 1``.
    """
    from theradose.organs import find_organ
    from theradose.tissues import get_tissue

    common = _common(data, source)
    engines: tuple[str, ...] = common["engines"]
    if not engines:
        raise InputError(f"{source}: a version 1 doses.json needs its engines list to be upgraded")
    reference = engines[0]
    regions: list[RegionResult] = []
    for i, raw in enumerate(data["regions"]):
        where = f"{source}: regions[{i}]"
        _need(raw, where, dict)
        per_engine = raw.get("doses") or {}
        _need(per_engine, f"{where}.doses", dict)
        estimates = [_estimate_from(str(k), v, f"{where}.doses.{k}") for k, v in per_engine.items()]
        dvh_raw = raw.get("dvh")
        if isinstance(dvh_raw, Mapping):
            estimates = [
                EngineDose(
                    e.source,
                    e.dose_gy,
                    e.dose_sigma_gy,
                    e.method,
                    _dvh_from(dvh_raw[e.source], f"{where}.dvh"),
                )
                if e.source in dvh_raw
                else e
                for e in estimates
            ]
        organ_raw = raw.get("organ_dose")
        if isinstance(organ_raw, Mapping):
            estimates.append(_estimate_from(ORGAN_SOURCE, organ_raw, f"{where}.organ_dose"))
        tissue = raw.get("tissue") if isinstance(raw.get("tissue"), str) else None
        half_life = _number(raw.get("effective_half_life_h"), f"{where}.effective_half_life_h")
        bed_gy = _number(raw.get("bed_gy"), f"{where}.bed_gy")
        chosen = next((e for e in estimates if e.source == reference), None)
        bed = None
        if bed_gy is not None and tissue and half_life and chosen is not None and chosen.dose_gy is not None:
            params = get_tissue(tissue)
            if params.alpha_beta_gy is None or params.repair_half_time_h is None:
                raise InputError(f"{where}: version 1 BED of tissue {tissue!r}, which has no LQ parameters")
            bed = Bed(
                bed_gy=bed_gy,
                dose_gy=chosen.dose_gy,
                dose_source=reference,
                tissue=params.name,
                alpha_beta_gy=params.alpha_beta_gy,
                repair_half_time_h=params.repair_half_time_h,
                effective_half_life_h=half_life,
                parameters_source=params.radiobiology_source,
            )
        organ = find_organ(_text(raw.get("name"), f"{where}.name"))
        regions.append(
            RegionResult(
                name=_text(raw.get("name"), f"{where}.name"),
                kind=_kind(raw.get("kind", "organ"), f"{where}.kind"),
                doses=tuple(estimates),
                volume_ml=_number(raw.get("volume_ml"), f"{where}.volume_ml"),
                mass_g=_number(raw.get("mass_g"), f"{where}.mass_g"),
                tia_mbq_h=_number(raw.get("tia_mbq_h"), f"{where}.tia_mbq_h"),
                tia_sigma_mbq_h=_number(raw.get("tia_sigma_mbq_h"), f"{where}.tia_sigma_mbq_h"),
                kinetics_model=_text(raw.get("kinetics_model"), f"{where}.kinetics_model", optional=True),
                effective_half_life_h=half_life,
                recovery_coefficient=_number(
                    raw.get("recovery_coefficient"), f"{where}.recovery_coefficient"
                ),
                organ=None if organ is None else organ.name,
                tissue=tissue,
                bed=bed,
            )
        )
    return StudyDoses(reference_dose=reference, regions=tuple(regions), upgraded_from=1, **common)


__all__ = [
    "DOSES_FORMAT",
    "DOSES_VERSION",
    "MEAN_DOSE_DEFINITION",
    "ORGAN_SOURCE",
    "REGION_FLAGS",
    "Administration",
    "Bed",
    "Calibration",
    "DoseRow",
    "Dvh",
    "EngineDose",
    "KineticsRecord",
    "Patient",
    "RegionKind",
    "RegionResult",
    "StudyDoses",
    "UncertaintyBudget",
    "doses_schema",
    "mean_dose_gy",
    "read_doses",
    "round_sig",
    "upgrade_v1",
    "upgrade_v2",
    "write_doses",
]
