"""What a dose report shows, gathered from the study's dose record (plain data, no drawing).

The report takes the typed record (:class:`theradose.dosimetry.results.StudyDoses`) and the images and
curves to draw; it never reads the pipeline's objects, so every number it prints is the record's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from theradose.dosimetry.results import ORGAN_SOURCE, StudyDoses

if TYPE_CHECKING:
    from theradose.planning import NextCycleResult, TreatmentPlan

#: References cited in the methods section of every report.
REFERENCES: tuple[str, ...] = (
    "Bolch WE, Eckerman KF, Sgouros G, Thomas SR. MIRD Pamphlet No. 21: a generalized schema for "
    "radiopharmaceutical dosimetry. J Nucl Med 2009;50:477-484.",
    "Dewaraja YK, Frey EC, Sgouros G, et al. MIRD Pamphlet No. 23: quantitative SPECT for patient-specific "
    "3-dimensional dosimetry in internal radionuclide therapy. J Nucl Med 2012;53:1310-1325.",
    "Kletting P, Schimmel S, Kestler HA, et al. Molecular radiotherapy: the NUKFIT software for calculating "
    "the time-integrated activity coefficient. Med Phys 2013;40:102504.",
    "Gear JI, Cox MG, Gustafsson J, et al. EANM practical guidance on uncertainty analysis for molecular "
    "radiotherapy absorbed dose calculations. Eur J Nucl Med Mol Imaging 2018;45:2456-2474.",
    "ICRP Publication 107: Nuclear decay data for dosimetric calculations. Ann ICRP 2008;38(3).",
    "Hänscheid H, Lapa C, Buck AK, Lassmann M, Werner RA. Dose mapping after endoradiotherapy with "
    "177Lu-DOTATATE/DOTATOC by a single measurement after 4 days. J Nucl Med 2018;59:75-81.",
    "Dale RG. The application of the linear-quadratic dose-effect equation to fractionated and protracted "
    "radiotherapy. Br J Radiol 1985;58:515-528.",
)


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


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows.

    Attributes
    ----------
    title : str
    header : tuple of (label, value)
        Patient, cycle, administration, time points, the reference dose.
    doses : StudyDoses
        The study's dose record (the same numbers as ``doses.json``).
    tacs : tuple of TacPlot
    spect_mip, dose_mip : ndarray, shape (n_slices, n_columns)
        Coronal maximum-intensity projections of the reference SPECT (Bq/mL) and of the dose map (Gy) of
        the reference dose's engine (the first engine when the reference is the organ-level dose),
        superior up.
    aspect : float
        Slice spacing over column spacing (for display).
    dvhs : dict
        Region → (dose points Gy, cumulative fraction) under ``dvh_source``.
    dvh_source : str
        Engine of the DVHs.
    methods : tuple of str
        Paragraphs describing the method.
    references : tuple of str
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
    references: tuple[str, ...] = REFERENCES
    plan: TreatmentPlan | None = None
    next_cycle: NextCycleResult | None = None


def coronal_mip(array: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Maximum over the row (anterior–posterior) axis of a (slice, row, column) array: (slice, column)."""
    values = np.asarray(array, dtype=np.float64)
    return np.asarray(values.max(axis=1), dtype=np.float64)


def image_engine(doses: StudyDoses) -> str:
    """The engine whose dose map and DVHs a report shows: the reference dose's engine, or the first
    engine when the reference dose is the organ-level MIRD dose (which has no map)."""
    return doses.engines[0] if doses.reference_dose == ORGAN_SOURCE else doses.reference_dose


def build_report_data(
    doses: StudyDoses,
    *,
    tacs: Sequence[TacPlot],
    spect_mip: npt.ArrayLike,
    dose_mip: npt.ArrayLike,
    aspect: float,
    segmentation_source: str,
    partial_volume_correction: bool,
    plan: TreatmentPlan | None = None,
    next_cycle: NextCycleResult | None = None,
) -> ReportData:
    """Gather the report content from the dose record and the images to show."""
    adm = doses.administration
    registration = doses.registration or {}
    reference_tp = registration.get("reference_timepoint", "—")
    engine = image_engine(doses)
    header = (
        ("Patient", f"{doses.patient.name} ({doses.patient.id})"),
        ("Cycle", str(doses.cycle)),
        ("Radiopharmaceutical", f"{adm.radiopharmaceutical} ({adm.nuclide})"),
        ("Administered activity", f"{adm.activity_mbq:g} MBq at {adm.datetime.isoformat()}"),
        ("Imaging time points", ", ".join(f"{t:g} h" for t in doses.timepoints_h)),
        ("Registration", f"{registration.get('method', '—')} (reference time point {reference_tp})"),
        ("Dose engines", ", ".join(doses.engines)),
        ("Reference dose", _source_title(doses.reference_dose)),
        ("Partial-volume correction", "yes" if partial_volume_correction else "no"),
    )
    dvhs = {
        region.name: (d.dvh.dose_gy, d.dvh.cumulative_fraction)
        for region in doses.regions
        if (d := region.dose(engine)) is not None and d.dvh is not None
    }
    methods = (
        f"Quantitative SPECT time points ({len(doses.timepoints_h)}) were brought onto the grid of "
        f"time point {reference_tp} ({registration.get('method', '—')} registration). Regions came from a "
        f"{segmentation_source} segmentation; voxel masses from the CT (HU to density calibration) or "
        "soft tissue without CT.",
        "Each region's time-activity curve (5 % standard uncertainty per point) was fitted with mono-, "
        "bi- and tri-exponential models selected by AICc (model weights shown), or by the requested model or "
        "single-time-point method, and integrated from 0 to infinity (MIRD Pamphlet 21). Voxel TIA "
        "follows each label's fitted TIA in proportion to the voxel's share of the label's activity "
        "(MIRD Pamphlet 23).",
        f"Absorbed dose per voxel was computed with the {', '.join(doses.engines)} engine(s) from "
        "ICRP 107 emission data; region doses are mass-weighted means of the voxel doses (MIRD Pamphlet "
        "21). Organ-level doses use the MIRD schema with the patient's own masses (spheres for tumours). "
        f"The dose of each region is the {_source_title(doses.reference_dose)}; the others are shown for "
        "comparison. Uncertainties propagate the TIA uncertainty (EANM guidance, Gear et al. 2018). BED "
        "is computed from the region's dose with the fitted effective half-life and the tissue's "
        "alpha/beta and repair half-time (Dale 1985)."
        + (
            " Tumour activities were corrected for partial volume before fitting: the background spill-in "
            "measured in a shell around each tumour was removed and the rest divided by the recovery "
            "coefficient of the tumour's volume (phantom-measured recovery curve)."
            if partial_volume_correction
            else ""
        ),
    )
    return ReportData(
        title=f"Dosimetry report — {doses.patient.id}, cycle {doses.cycle}",
        header=header,
        doses=doses,
        tacs=tuple(tacs),
        spect_mip=np.asarray(spect_mip, dtype=np.float64),
        dose_mip=np.asarray(dose_mip, dtype=np.float64),
        aspect=float(aspect),
        dvhs=dvhs,
        dvh_source=engine,
        methods=methods,
        plan=plan,
        next_cycle=next_cycle,
    )


def _source_title(source: str) -> str:
    return "organ-level MIRD dose" if source == ORGAN_SOURCE else f"{source} engine voxel dose"
