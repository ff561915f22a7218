"""What a dose report shows, gathered from the pipeline results (plain data, no drawing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from theradose.pipeline.run import StudyResults

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
        Patient, cycle, administration, time points.
    doses : dict
        The content of ``doses.json``.
    tacs : tuple of TacPlot
    spect_mip, dose_mip : ndarray, shape (n_slices, n_columns)
        Coronal maximum-intensity projections of the reference SPECT (Bq/mL) and of the first engine's
        dose (Gy), superior up.
    aspect : float
        Slice spacing over column spacing (for display).
    dvhs : dict
        Region → (dose edges Gy, cumulative fraction) of the first engine.
    methods : tuple of str
        Paragraphs describing the method.
    references : tuple of str
    plan : StudyPlan or None
        Next-cycle plan (:class:`theradose.pipeline.plan.StudyPlan`) when the study names a plan file.
    """

    title: str
    header: tuple[tuple[str, str], ...]
    doses: dict[str, Any]
    tacs: tuple[TacPlot, ...]
    spect_mip: npt.NDArray[np.float64]
    dose_mip: npt.NDArray[np.float64]
    aspect: float
    dvhs: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]
    methods: tuple[str, ...]
    references: tuple[str, ...] = REFERENCES
    plan: Any = None


def coronal_mip(array: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Maximum over the row (anterior–posterior) axis of a (slice, row, column) array: (slice, column)."""
    values = np.asarray(array, dtype=np.float64)
    return np.asarray(values.max(axis=1), dtype=np.float64)


def build_report_data(results: StudyResults) -> ReportData:
    """Gather the report content from the pipeline results."""
    spec = results.spec
    doses = results.doses
    adm = spec.administration
    reference = doses["registration"]["reference_timepoint"] - 1
    engine = spec.dose.engines[0]
    grid = results.aligned.spect[reference]
    header = (
        ("Patient", f"{spec.patient.name} ({spec.patient.patient_id})"),
        ("Cycle", str(spec.cycle)),
        ("Radiopharmaceutical", f"{adm.radiopharmaceutical} ({adm.nuclide})"),
        ("Administered activity", f"{adm.activity_mbq:g} MBq at {adm.datetime.isoformat()}"),
        ("Imaging time points", ", ".join(f"{t:g} h" for t in doses["timepoints_h"])),
        ("Registration", f"{doses['registration']['method']} (reference time point {reference + 1})"),
        ("Dose engines", ", ".join(spec.dose.engines)),
        ("Partial-volume correction", "yes" if spec.pvc.enabled else "no"),
    )
    tacs = tuple(
        TacPlot(name, k.time_h, k.activity_mbq, k.sigma_mbq, k.curve_h, k.curve_mbq, k.model, k.candidates)
        for name, k in results.kinetics.items()
    )
    dvhs = {
        name: (d[engine].dose_gy, d[engine].cumulative_fraction)
        for name, d in results.dvhs.items()
        if engine in d
    }
    spacing = grid.spacing_mm
    methods = (
        f"Quantitative SPECT time points ({len(doses['timepoints_h'])}) were brought onto the grid of "
        f"time point "
        f"{reference + 1} ({doses['registration']['method']} registration). Regions came from a "
        f"{spec.segmentation.source} segmentation; voxel masses from the CT (HU to density calibration) or "
        "soft tissue without CT.",
        "Each region's time-activity curve (5 % standard uncertainty per point) was fitted with mono-, "
        "bi- and "
        "tri-exponential models selected by AICc (model weights shown), or by the requested model or "
        "single-time-point method, and integrated from 0 to infinity (MIRD Pamphlet 21). Voxel TIA "
        "follows each "
        "label's fitted TIA in proportion to the voxel's share of the label's activity (MIRD Pamphlet 23).",
        f"Absorbed dose per voxel was computed with the {', '.join(spec.dose.engines)} engine(s) from "
        "ICRP 107 emission data; region doses are mass-weighted means. Organ-level doses use the MIRD "
        "schema with the patient's own masses (spheres for tumours). Uncertainties propagate the TIA "
        "uncertainty (EANM guidance, Gear et al. 2018). BED uses the fitted effective half-life and the "
        "tissue's alpha/beta and repair half-time (Dale 1985)."
        + (
            " Tumour activities were corrected for partial volume before fitting: the background spill-in "
            "measured in a shell around each tumour was removed and the rest divided by the recovery "
            "coefficient of the tumour's volume (phantom-measured recovery curve)."
            if spec.pvc.enabled
            else ""
        ),
    )
    return ReportData(
        title=f"Dosimetry report — {spec.patient.patient_id}, cycle {spec.cycle}",
        header=header,
        doses=doses,
        tacs=tacs,
        spect_mip=coronal_mip(grid.array),
        dose_mip=coronal_mip(results.dose_maps[engine].array),
        aspect=float(spacing[0] / spacing[2]),
        dvhs=dvhs,
        methods=methods,
        plan=results.plan,
    )
