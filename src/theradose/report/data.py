"""What a dose report shows, gathered from the study's dose record (plain data, no drawing).

The report takes the typed record (:class:`theradose.dosimetry.results.StudyDoses`) and the images and
curves to draw; it never reads the pipeline's objects, so every number it prints is the record's. The
Methods are generated from what the record says was done (corrections, kinetic model and flags per
region, engines, the uncertainty budget's sources), and the references are those of the methods used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from theradose.dosimetry.results import ORGAN_SOURCE, RegionResult, StudyDoses
from theradose.report.numbers import fixed, local_time, p_value, percent, plus_minus

if TYPE_CHECKING:
    from theradose.planning import NextCycleResult, TreatmentPlan

#: Every reference a report may cite, by the method it supports. A report lists only those of the
#: methods its record says were used, numbered in order of first citation.
REFERENCES: Mapping[str, str] = {
    "mird21": "Bolch WE, Eckerman KF, Sgouros G, Thomas SR. MIRD Pamphlet No. 21: a generalized schema for "
    "radiopharmaceutical dosimetry. J Nucl Med 2009;50:477-484.",
    "mird23": "Dewaraja YK, Frey EC, Sgouros G, et al. MIRD Pamphlet No. 23: quantitative SPECT for "
    "patient-specific 3-dimensional dosimetry in internal radionuclide therapy. J Nucl Med "
    "2012;53:1310-1325.",
    "icrp107": "ICRP Publication 107: Nuclear decay data for dosimetric calculations. Ann ICRP 2008;38(3).",
    "nukfit": "Kletting P, Schimmel S, Kestler HA, et al. Molecular radiotherapy: the NUKFIT software for "
    "calculating the time-integrated activity coefficient. Med Phys 2013;40:102504.",
    "burnham": "Burnham KP, Anderson DR. Model selection and multimodel inference. 2nd ed. New York: "
    "Springer; 2002.",
    "gear": "Gear JI, Cox MG, Gustafsson J, et al. EANM practical guidance on uncertainty analysis for "
    "molecular radiotherapy absorbed dose calculations. Eur J Nucl Med Mol Imaging 2018;45:2456-2474.",
    "gum": "JCGM 100:2008. Evaluation of measurement data - Guide to the expression of uncertainty in "
    "measurement (GUM).",
    "hanscheid": "Hänscheid H, Lapa C, Buck AK, Lassmann M, Werner RA. Dose mapping after endoradiotherapy "
    "with 177Lu-DOTATATE/DOTATOC by a single measurement after 4 days. J Nucl Med 2018;59:75-81.",
    "madsen": "Madsen MT, Menda Y, O'Dorisio TM, O'Dorisio MS. Technical note: single time point dose "
    "estimate for exponential clearance. Med Phys 2018;45:2318-2324.",
    "dale": "Dale RG. The application of the linear-quadratic dose-effect equation to fractionated and "
    "protracted radiotherapy. Br J Radiol 1985;58:515-528.",
    "mird26": "Ljungberg M, Celler A, Konijnenberg MW, et al. MIRD Pamphlet No. 26: joint EANM/MIRD "
    "guidelines for quantitative 177Lu SPECT applied for dosimetry of radiopharmaceutical therapy. J Nucl "
    "Med 2016;57:151-162.",
    "sjogreen": "Sjögreen Gleisner K, Chouin N, Gabina PM, et al. EANM dosimetry committee recommendations "
    "for dosimetry of 177Lu-labelled somatostatin-receptor- and PSMA-targeting ligands. Eur J Nucl Med Mol "
    "Imaging 2022;49:1778-1809.",
    "hoffman": "Hoffman EJ, Huang SC, Phelps ME. Quantitation in positron emission computed tomography: 1. "
    "Effect of object size. J Comput Assist Tomogr 1979;3:299-308.",
    "srinivas": "Srinivas SM, Dhurairaj T, Basu S, et al. A recovery coefficient method for partial volume "
    "correction of PET images. Ann Nucl Med 2009;23:341-348.",
    "mird17": "Bolch WE, Bouchet LG, Robertson JS, et al. MIRD Pamphlet No. 17: the dosimetry of "
    "nonuniform activity distributions - radionuclide S values at the voxel level. J Nucl Med "
    "1999;40:11S-36S.",
}

#: Kinetics flags shown in the warnings, with what they mean.
FLAG_TEXT: Mapping[str, str] = {
    "goodness_of_fit_failed": "fit failed the chi-square goodness-of-fit test (p < 0.05); its TIA "
    "uncertainty is scaled by sqrt(chi2/dof)",
    "goodness_of_fit_untested": "goodness of fit not tested (no per-point uncertainty)",
    "parameter_cv_above_limit": "a fitted parameter has a coefficient of variation above 50 % (Kletting "
    "acceptance)",
    "parameter_correlation_above_limit": "fitted parameters correlated above |r| = 0.8 (Kletting "
    "acceptance; expected for uptake forms with 4 time points)",
    "too_few_points_for_selection": "too few time points to rank more than one model",
    "prior_used": "a population prior on the half-life was used",
    "stp_time_outside_window": "single-time-point scan outside 0.75-2.5 effective half-lives",
    "earlier_cycle_fit_unavailable": "no earlier-cycle fit of this region: Hänscheid's estimate used",
    "below_resolution": "below the camera's resolution: recovery extrapolated below the smallest calibrated "
    "sphere, or uncorrected and smaller than the half-recovery volume",
    "partial_volume_not_corrected": "no partial-volume correction applied",
}

#: Budget component names as printed.
COMPONENT_TITLES: Mapping[str, str] = {
    "calibration": "calibration",
    "recovery": "recovery (PVC)",
    "volume": "volume/mass",
    "density": "density",
    "registration": "registration",
    "fit_tia": "fit (TIA)",
    "fit_half_life": "fit (T½, BED)",
    "s_value": "dose factor",
    "decay_data": "decay data",
}


@dataclass(frozen=True)
class TacPlot:
    """One region's TAC for plotting: measured points, fitted curve, model and Akaike weights."""

    name: str
    time_h: tuple[float, ...]
    activity_mbq: tuple[float, ...]
    sigma_mbq: tuple[float, ...]
    curve_h: tuple[float, ...]
    curve_mbq: tuple[float, ...]
    model: str
    weights: tuple[tuple[str, float], ...]
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows.

    Attributes
    ----------
    title : str
    header : tuple of (label, value)
        Patient, cycle, administration, imaging times (site time zone), camera, calibration, registration,
        the reference dose, software.
    doses : StudyDoses
        The study's dose record (the same numbers as ``doses.json``).
    tacs : tuple of TacPlot
    spect_mip, dose_mip : ndarray, shape (n_slices, n_columns)
        Coronal maximum-intensity projections of the reference SPECT (Bq/mL) and of the dose map (Gy) of
        the reference dose's engine (the first engine when the reference is the organ-level dose); row 0
        is the most inferior slice, column 0 the patient's right (DICOM LPS: +x is the patient's left).
    aspect : float
        Slice spacing over column spacing (for display).
    column_to_left, slice_to_superior : bool
        Whether the MIPs' column index runs towards the patient's left and the slice index towards
        superior (from the grid's affine); the figures orient the MIPs with the patient's right on the
        viewer's left and superior up, and letter the edges.
    dvhs : dict
        Region → (dose points Gy, cumulative fraction) under ``dvh_source``.
    dvh_source : str
        Engine of the DVHs.
    methods : tuple of str
        Paragraphs describing what was done, citing ``[n]`` of ``references``.
    references : tuple of str
        The references of the methods used, numbered in order of first citation.
    warnings : tuple of str
        What a physicist must look at before signing.
    provenance : tuple of (label, value)
        Software version, study-file and input hashes, output hashes.
    plan, next_cycle : TreatmentPlan and NextCycleResult, or None
        The next-cycle plan when the study names a plan file.
    """

    title: str
    header: tuple[tuple[str, str], ...]
    doses: StudyDoses
    tacs: tuple[TacPlot, ...]
    spect_mip: npt.NDArray[np.float64]
    dose_mip: npt.NDArray[np.float64]
    aspect: float
    dvhs: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]
    dvh_source: str
    methods: tuple[str, ...]
    references: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    provenance: tuple[tuple[str, str], ...] = ()
    plan: TreatmentPlan | None = None
    next_cycle: NextCycleResult | None = None
    column_to_left: bool = True
    slice_to_superior: bool = True


def coronal_mip(array: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Maximum over the row (anterior–posterior) axis of a (slice, row, column) array: (slice, column)."""
    values = np.asarray(array, dtype=np.float64)
    return np.asarray(values.max(axis=1), dtype=np.float64)


def image_engine(doses: StudyDoses) -> str:
    """The engine whose dose map and DVHs a report shows: the reference dose's engine, or the first
    engine when the reference dose is the organ-level MIRD dose (which has no map)."""
    return doses.engines[0] if doses.reference_dose == ORGAN_SOURCE else doses.reference_dose


def report_zone(doses: StudyDoses) -> tuple[tzinfo, str]:
    """The time zone of the report's times and how it was chosen: the site's (study file) or, without
    one, the UTC offset of the administration time as the study file gives it."""
    if doses.site_time_zone:
        from zoneinfo import ZoneInfo

        return ZoneInfo(doses.site_time_zone), f"site time zone {doses.site_time_zone}"
    zone = doses.administration.datetime.tzinfo
    assert zone is not None
    return zone, "the administration's UTC offset (no site time zone in the study file)"


def source_title(source: str) -> str:
    """How a dose source is named in the report."""
    return "organ-level MIRD dose" if source == ORGAN_SOURCE else f"{source} engine voxel dose"


class _Citations:
    """Numbers references in order of first citation."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, *keys: str) -> str:
        numbers = []
        for key in keys:
            if key not in self.keys:
                self.keys.append(key)
            numbers.append(self.keys.index(key) + 1)
        return "[" + ", ".join(str(n) for n in numbers) + "]"

    def references(self) -> tuple[str, ...]:
        return tuple(REFERENCES[k] for k in self.keys)


def header_lines(doses: StudyDoses, zone: tzinfo, zone_note: str) -> tuple[tuple[str, str], ...]:
    """The report header: who, what, when (site time zone), camera, calibration, registration, software."""
    adm = doses.administration
    registration = doses.registration or {}
    times = "; ".join(
        f"{local_time(adm.datetime + timedelta(hours=t), zone)} ({fixed(t, 1)} h)" for t in doses.timepoints_h
    )
    cal = doses.calibration
    if cal is not None and cal.factor_cps_per_mbq is not None and cal.measured is not None:
        calibration = (
            f"{plus_minus(cal.factor_cps_per_mbq, cal.factor_sigma_cps_per_mbq, 'cps/MBq')} "
            f"({percent(cal.relative_sigma)}), measured {local_time(cal.measured, zone)}"
            + ("" if cal.mode == "factor" else "; images reconstructed in Bq/mL with it")
        )
        camera = cal.camera or "not stated in the calibration QA record"
    else:
        calibration = (
            "no calibration QA record named in the study file (calibration uncertainty not assessed)"
        )
        camera = "not stated (no calibration QA record)"
    software = (doses.provenance or {}).get("software", "not recorded")
    return (
        ("Patient", f"{doses.patient.name} ({doses.patient.id})"),
        ("Cycle", str(doses.cycle)),
        ("Radiopharmaceutical", f"{adm.radiopharmaceutical} ({adm.nuclide})"),
        ("Administered activity", f"{fixed(adm.activity_mbq, 0, 'MBq')} at {local_time(adm.datetime, zone)}"),
        ("Imaging", times),
        ("Times shown in", zone_note),
        ("Camera", camera),
        ("Calibration factor", calibration),
        (
            "Registration",
            f"{registration.get('method', 'not recorded')} (reference time point "
            f"{registration.get('reference_timepoint', '—')})",
        ),
        (
            "Dose of each region",
            f"{source_title(doses.reference_dose)} (engines run: {', '.join(doses.engines)})",
        ),
        ("Software", str(software)),
    )


def warnings_of(doses: StudyDoses) -> tuple[str, ...]:
    """What must be looked at before signing: failed goodness of fit (per region, with χ² and p),
    single time point outside its window, regions below resolution, other kinetics flags grouped by flag,
    regions without an uncertainty budget, components not assessed, an upgraded record."""
    out: list[str] = []
    for region in doses.regions:
        k = region.kinetics
        if k is None:
            continue
        if "goodness_of_fit_failed" in k.flags:
            scale = math.sqrt(k.chi_square / k.dof) if k.chi_square is not None and k.dof else float("nan")
            out.append(
                f"{region.name}: the {k.model} fit failed the chi-square goodness-of-fit test (chi2 = "
                f"{fixed(k.chi_square, 1)} on {k.dof} degree{'s' if k.dof != 1 else ''} of freedom, p "
                f"{p_value(k.p_value)}); it is "
                f"not a good description of the data; its TIA uncertainty is scaled by "
                f"{fixed(scale, 2)}."
            )
        if "stp_time_outside_window" in k.flags or "earlier_cycle_fit_unavailable" in k.flags:
            out += [f"{region.name}: {note}" for note in k.notes]
    grouped: dict[str, list[str]] = {}
    for region in doses.regions:
        for flag in region.all_flags:
            if flag not in (
                "goodness_of_fit_failed",
                "stp_time_outside_window",
                "earlier_cycle_fit_unavailable",
            ):
                grouped.setdefault(flag, []).append(region.name)
    for flag, names in grouped.items():
        out.append(f"{FLAG_TEXT.get(flag, flag)}: {', '.join(dict.fromkeys(names))}.")
    without = [r.name for r in doses.regions if r.uncertainty is None and _has_dose(doses, r)]
    if without:
        out.append(f"No uncertainty budget (no component assessable): {', '.join(without)}.")
    budgets = [r.uncertainty for r in doses.regions if r.uncertainty is not None]
    if budgets:
        never = [c for c in budgets[0].not_assessed if all(c in b.not_assessed for b in budgets)]
        if never:
            out.append(
                "Not assessed in any region's budget (not counted in the uncertainties): "
                + ", ".join(COMPONENT_TITLES.get(c, c) for c in never)
                + "."
            )
    if doses.upgraded_from is not None:
        out.append(
            f"This record was upgraded from version {doses.upgraded_from}: its uncertainties are those of "
            "that version (re-run the study for the full budget)."
        )
    return tuple(out)


#: How Methods names each segmentation source of the study file (``[segmentation] source``).
_SEGMENTATION_SOURCES: Mapping[str, str] = {
    "nifti": "a NIfTI label map",
    "rtstruct": "a DICOM RT Structure Set",
    "seg": "a DICOM Segmentation",
    "auto": "an automatic threshold segmentation of the SPECT uptake",
}


def _has_dose(doses: StudyDoses, region: RegionResult) -> bool:
    chosen = doses.reference(region)
    return chosen is not None and bool(chosen.dose_gy)


def methods_of(
    doses: StudyDoses,
    *,
    segmentation_source: str,
    recovery_corrected_regions: Sequence[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Methods paragraphs generated from what the record says was done, and their references."""
    cite = _Citations()
    registration = doses.registration or {}
    n = len(doses.timepoints_h)
    cal = doses.calibration
    paragraphs: list[str] = []
    calibration = (
        "The activities rest on the camera's calibration factor from the QA record named in the study file."
        if cal is not None and cal.record
        else "No calibration QA record was named: the calibration's uncertainty is not in the budgets."
    )
    method = registration.get("method", "none")
    paragraphs.append(
        f"Quantitative SPECT/CT at {n} time point{'s' if n != 1 else ''} "
        f"({', '.join(fixed(t, 1) + ' h' for t in doses.timepoints_h)} after administration) "
        + (
            "was used in scanner coordinates (no registration). "
            if method == "none"
            else f"was brought onto time point {registration.get('reference_timepoint', 1)} by {method} "
            "CT-to-CT registration, the SPECT carried along. "
        )
        + calibration
        + f" Regions came from {_SEGMENTATION_SOURCES.get(segmentation_source, segmentation_source)}; voxel "
        "masses from the CT (HU-to-density calibration)."
    )
    corrections: list[str] = []
    if doses.partial_volume_correction and recovery_corrected_regions:
        corrections.append(
            f"The activities of {', '.join(recovery_corrected_regions)} were corrected for partial volume: "
            "the background's spill-in, measured in a shell around each structure, was removed and the rest "
            f"divided by the recovery coefficient of the structure's volume {cite('hoffman')}, read from "
            f"phantom-measured recovery curves by volume and contrast {cite('srinivas', 'mird23')}."
        )
    organ = doses.organ_partial_volume_correction
    if organ is not None:
        regions = organ.get("regions")
        which = f" of {', '.join(regions)}" if isinstance(regions, list) and regions else ""
        corrections.append(
            f"The total activities{which} were collected in their CT outlines enlarged by "
            f"{fixed(float(organ.get('margin_mm') or 0.0), 1)} mm (about one FWHM of the camera), less the "
            "background measured per gram in a shell beyond the margin; masses stay those of the CT "
            f"outlines {cite('mird26', 'sjogreen')}."
        )
    paragraphs.append(" ".join(corrections) if corrections else "No partial-volume correction was applied.")
    paragraphs.append(_kinetics_paragraph(doses, cite))
    engines = ", ".join(doses.engines)
    dose_text = (
        f"Absorbed dose per voxel was computed with the {engines} engine(s) from ICRP 107 emission data "
        f"{cite('icrp107')}"
        + (f", the voxel S values of {cite('mird17')}" if "vsv" in doses.engines else "")
        + ". Voxel time-integrated activity follows each label's TIA in proportion to the voxel's share of "
        f"the label's activity {cite('mird23')}; region doses are mass-weighted means of the voxel doses "
        f"{cite('mird21')}."
    )
    if any(r.dose(ORGAN_SOURCE) is not None for r in doses.regions):
        dose_text += (
            " Organ-level doses use the MIRD schema with the patient's own masses (spheres for tumours)."
        )
    dose_text += (
        f" The dose of each region is the {source_title(doses.reference_dose)}; others are for comparison."
    )
    paragraphs.append(dose_text)
    paragraphs.append(_uncertainty_paragraph(doses, cite))
    beds = [r.bed for r in doses.regions if r.bed is not None]
    if beds:
        tissues = sorted({(b.tissue, b.alpha_beta_gy, b.repair_half_time_h) for b in beds})
        paragraphs.append(
            "BED was computed from each region's dose with its fitted effective half-life and the tissue's "
            f"linear-quadratic parameters {cite('dale')}: "
            + "; ".join(
                f"{t} alpha/beta {fixed(a, 1)} Gy, repair half-time {fixed(h, 2)} h" for t, a, h in tissues
            )
            + "."
        )
    return tuple(paragraphs), cite.references()


def _kinetics_paragraph(doses: StudyDoses, cite: _Citations) -> str:
    records = [r.kinetics for r in doses.regions if r.kinetics is not None]
    fits = [k for k in records if k.method == "fit"]
    stps = [k for k in records if k.method == "single_time_point"]
    parts: list[str] = []
    if fits:
        models = sorted({k.model for k in fits})
        criteria = sorted({k.selection_criterion for k in fits if k.selection_criterion})
        text = (
            "Each region's time-activity curve (5 % standard uncertainty per point) was fitted with sums of "
            f"exponentials with the physical decay built in {cite('nukfit')}"
        )
        if criteria:
            text += (
                f", the form selected by {' and '.join(criteria)} among the identifiable forms (the fewest "
                f"parameters within 2 of the lowest criterion) {cite('burnham')}"
            )
        text += (
            f". Forms used: {', '.join(models)} (per region in the kinetics table). A chi-square test "
            "(alpha = 0.05) checked each fit; a failed fit is flagged and its TIA uncertainty scaled by "
            "sqrt(chi2/dof). TIAs are integrals from 0 to infinity."
        )
        parts.append(text)
    methods = {k.model for k in stps}
    if "stp-hanscheid" in methods:
        parts.append(
            "Single-time-point TIAs used Hänscheid's estimate A(t)·2t/ln 2 "
            f"{cite('hanscheid')} (valid for scans within 0.75-2.5 effective half-lives)."
        )
    if "stp-madsen" in methods:
        parts.append(f"Single-time-point TIAs used Madsen's formula with a given half-life {cite('madsen')}.")
    if "stp-earlier-cycle" in methods:
        parts.append(
            "Single-time-point TIAs of this cycle scale the same patient's earlier-cycle fitted curve to the "
            "new measurement (for a mono-exponential, Madsen's formula with the patient's own half-life "
            f"{cite('madsen')}), with the uncertainty of the earlier fit's covariance."
        )
    return " ".join(parts) or "No kinetics were fitted."


def _uncertainty_paragraph(doses: StudyDoses, cite: _Citations) -> str:
    budgets = [r.uncertainty for r in doses.regions if r.uncertainty is not None]
    if not budgets:
        return "No uncertainty budget could be made."
    sources: dict[str, str] = {}
    for b in budgets:
        for c in b.components:
            sources.setdefault(c.name, c.source)
    listed = "; ".join(
        f"{COMPONENT_TITLES.get(name, name)}: {source}" for name, source in sources.items() if source
    )
    return (
        "Every dose and BED carries an uncertainty budget in the form of the EANM guidance "
        f"{cite('gear')}, propagated to first order with the correlations of the fit {cite('gum')}. Its "
        f"components and where their uncertainties come from: {listed}. Uncertainties are one standard "
        "uncertainty; a 95 % interval is ±1.96 of them. The dominant components are the fewest whose shares "
        "of the variance reach 80 %."
    )


def provenance_lines(doses: StudyDoses, output_hashes: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Software version, study-file and input hashes, the calibration record, output hashes."""
    prov = doses.provenance or {}
    lines = [
        ("Software", str(prov.get("software", "not recorded"))),
        ("Study file SHA-256", str(prov.get("study_file_sha256") or "not recorded")),
        (
            "Inputs SHA-256",
            f"{prov.get('inputs_sha256', 'not recorded')} ({prov.get('input_files', '?')} files; SHA-256 "
            "over the sorted per-file SHA-256, listed in provenance.json)",
        ),
    ]
    if doses.calibration is not None and doses.calibration.record:
        lines.append(("Calibration QA record", doses.calibration.record))
    lines += [(f"Output {name} SHA-256", digest) for name, digest in output_hashes.items()]
    return tuple(lines)


def build_report_data(
    doses: StudyDoses,
    *,
    tacs: Sequence[TacPlot],
    spect_mip: npt.ArrayLike,
    dose_mip: npt.ArrayLike,
    aspect: float,
    segmentation_source: str,
    partial_volume_correction: bool,
    recovery_corrected_regions: Sequence[str] = (),
    output_hashes: Mapping[str, str] | None = None,
    plan: TreatmentPlan | None = None,
    next_cycle: NextCycleResult | None = None,
    column_to_left: bool = True,
    slice_to_superior: bool = True,
) -> ReportData:
    """Gather the report content from the dose record and the images to show.

    ``recovery_corrected_regions`` names the regions corrected with the recovery curve (when
    ``partial_volume_correction``); ``output_hashes`` the SHA-256 of the outputs written before the report.
    """
    zone, zone_note = report_zone(doses)
    engine = image_engine(doses)
    dvhs = {
        region.name: (d.dvh.dose_gy, d.dvh.cumulative_fraction)
        for region in doses.regions
        if (d := region.dose(engine)) is not None and d.dvh is not None
    }
    methods, references = methods_of(
        doses,
        segmentation_source=segmentation_source,
        recovery_corrected_regions=recovery_corrected_regions if partial_volume_correction else (),
    )
    return ReportData(
        title=f"Dosimetry report — {doses.patient.id}, cycle {doses.cycle}",
        header=header_lines(doses, zone, zone_note),
        doses=doses,
        tacs=tuple(tacs),
        spect_mip=np.asarray(spect_mip, dtype=np.float64),
        dose_mip=np.asarray(dose_mip, dtype=np.float64),
        aspect=float(aspect),
        dvhs=dvhs,
        dvh_source=engine,
        methods=methods,
        references=references,
        warnings=warnings_of(doses),
        provenance=provenance_lines(doses, output_hashes or {}),
        plan=plan,
        next_cycle=next_cycle,
        column_to_left=column_to_left,
        slice_to_superior=slice_to_superior,
    )


__all__ = [
    "COMPONENT_TITLES",
    "FLAG_TEXT",
    "REFERENCES",
    "ReportData",
    "TacPlot",
    "build_report_data",
    "coronal_mip",
    "header_lines",
    "image_engine",
    "methods_of",
    "provenance_lines",
    "report_zone",
    "source_title",
    "warnings_of",
]
