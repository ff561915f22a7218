"""The study file: what to compute for one patient and one therapy cycle (TOML).

:func:`load_study` reads and validates the whole file before any computation: every key is known (a typo
gets ``unknown key 'enignes' in [dose]; did you mean 'engines'?``), every value has the right type and
range, every time-point folder exists, no time point precedes the administration, and the activities
agree with each other (net = syringe before − residual; DICOM header vs study file). Each error is one
line naming the key, the value and the fix. The format is documented in ``docs/study-file.md``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from theradose.dosimetry.engines.registry import DoseEngine, parse_engine
from theradose.dosimetry.results import ORGAN_SOURCE
from theradose.errors import InputError

if TYPE_CHECKING:
    from theradose.pipeline.administration import RecordSource

Calibration = Literal["bqml", "factor"]
RegistrationMethod = Literal["none", "rigid", "deformable"]
SegmentationSource = Literal["nifti", "rtstruct", "seg", "auto"]
KineticsModel = Literal["auto", "mono", "bi", "tri", "trapezoid", "trapezoid_mono"]
StpChoice = Literal["none", "hanscheid", "madsen", "earlier_cycle"]
#: A dose engine of the engine registry (converted from the study file's strings once, here).
EngineName = DoseEngine
OrganPvc = Literal["none", "enlarged_voi"]
PvcMethod = Literal["legacy", "gtm", "rbv"]
LesionPvc = Literal["model", "recovery_curve"]
MarrowSample = Literal["blood", "plasma"]
OutputFormat = Literal["json", "csv", "nifti", "dicom", "html", "pdf"]
ALL_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)

#: Largest relative difference accepted between two statements of the administered activity
#: (study file vs DICOM header, net vs syringe before − residual). Dose-calibrator accuracy is ±5 %
#: (AAPM TG-181 / IEC 61303 acceptance), so two independent statements may differ by up to ~10 %.
ACTIVITY_TOLERANCE = 0.10


@dataclass(frozen=True)
class PatientSpec:
    """Who: identifier, name (DICOM PN), sex and weight."""

    patient_id: str
    name: str = "Anonymous^Patient"
    sex: Literal["M", "F", "O", ""] = ""
    weight_kg: float | None = None


@dataclass(frozen=True)
class AdministrationSpec:
    """What was given and when: nuclide, radiopharmaceutical, net activity (MBq), time (timezone-aware)."""

    nuclide: str
    radiopharmaceutical: str
    activity_mbq: float
    datetime: datetime
    syringe_before_mbq: float | None = None
    syringe_residual_mbq: float | None = None


@dataclass(frozen=True)
class TimepointSpec:
    """One imaging time point: quantitative SPECT (folder or file; optional series UID) and optional CT."""

    spect: Path
    series_uid: str | None = None
    ct: Path | None = None
    ct_series_uid: str | None = None
    acquisition_datetime: datetime | None = None


@dataclass(frozen=True)
class SegmentationSpec:
    """Where the regions come from.

    ``regions`` maps a region name to its label values in a label map (NIfTI) or, for RTSTRUCT/SEG, to
    the ROI/segment names that form it (empty tuple: the ROI of the same name).
    """

    source: SegmentationSource
    path: Path | None
    regions: Mapping[str, tuple[int | str, ...]]
    tumours: tuple[str, ...] = ()
    threshold_percent: float = 20.0
    #: Standard uncertainty of the delineated boundary (mm); None: the voxelisation error of the grid.
    boundary_sigma_mm: float | None = None


@dataclass(frozen=True)
class KineticsSpec:
    """Fit model and optional single-time-point method."""

    model: KineticsModel = "auto"
    single_timepoint: StpChoice = "none"
    stp_timepoint: int = -1
    effective_half_life_h: Mapping[str, float] = field(default_factory=dict)
    #: Dose record (``doses.json``) of the same patient's earlier cycle (``single_timepoint =
    #: "earlier_cycle"``): each region's fit there gives the curve shape for this cycle's single scan.
    earlier_cycle: Path | None = None
    #: Model per region (``[kinetics.models]``), overriding ``model`` for the regions named.
    models: Mapping[str, KineticsModel] = field(default_factory=dict)

    def model_for(self, region: str) -> KineticsModel:
        """The model that fits ``region``'s curve: its own (``[kinetics.models]``) or ``model``."""
        return self.models.get(region, self.model)


@dataclass(frozen=True)
class CalibrationRecord:
    """The SPECT calibration from a QA record (``theradose qa spect-calibration --json``).

    Attributes
    ----------
    path : Path
    factor_cps_per_mbq, sigma_cps_per_mbq : float
    measured : datetime
        When the calibration phantom was acquired (timezone-aware).
    camera : str
        Camera (and collimator) the record is for ("" when the record does not say).
    sha256 : str
        SHA-256 of the record file.
    """

    path: Path
    factor_cps_per_mbq: float
    sigma_cps_per_mbq: float
    measured: datetime
    camera: str
    sha256: str

    @property
    def relative_sigma(self) -> float:
        """σ/factor."""
        return self.sigma_cps_per_mbq / self.factor_cps_per_mbq


@dataclass(frozen=True)
class DoseSpec:
    """Voxel engines to run (each gives region doses), organ-level MIRD on/off, Monte Carlo settings, and
    which dose is *the* dose of every region (``reference``: ``"organ"`` or an engine; default the
    organ-level MIRD dose when it is computed, else the first engine)."""

    engines: tuple[DoseEngine, ...] = (DoseEngine.LOCAL,)
    organ: bool = True
    mc_photons: int = 200_000
    reference: str = "organ"


@dataclass(frozen=True)
class PvcSpec:
    """Partial-volume correction: recovery curve (from QA) applied to the listed regions.

    With ``spill_in`` the background concentration measured in a shell ``background_shell_mm`` wide around
    each corrected structure is taken into account (see :func:`theradose.imaging.pvc.recovery_corrected_tac`).

    ``organs = "enlarged_voi"`` collects each organ's total activity in its CT outline enlarged by
    ``margin_mm`` (≈ 1 FWHM of the SPECT resolution), less the background measured in a shell
    ``background_shell_mm`` wide beyond the margin (:func:`theradose.imaging.pvc.enlarged_voi_tac`),
    for the labels of ``organ_regions`` (tumours excluded). It needs no recovery curve.
    """

    enabled: bool = False
    recovery_curve: Path | None = None
    regions: tuple[str, ...] = ()
    spill_in: bool = True
    background_shell_mm: float = 10.0
    organs: OrganPvc = "none"
    margin_mm: float | None = None
    organ_regions: tuple[str, ...] = ()
    #: ``"gtm"``/``"rbv"``: model-based correction of every listed region
    #: (:mod:`theradose.imaging.pvc.gtm`) with the effective resolution in ``resolution``; ``"legacy"``:
    #: the recovery-curve / enlarged-VOI keys above.
    method: PvcMethod = "legacy"
    resolution: Path | None = None
    fit_resolution: bool = True
    other_uptake: bool = True
    #: Lesions (tumour regions) by the model (``"model"``) or by the recovery curve (``"recovery_curve"``).
    lesions: LesionPvc = "model"


@dataclass(frozen=True)
class BloodSampleSpec:
    """One blood (or plasma) sample: time after administration (h) and concentration (Bq/mL)."""

    time_h: float
    concentration_bq_per_ml: float


@dataclass(frozen=True)
class MarrowSpec:
    """Red marrow: image-based (``region`` holds the vertebral bodies named in ``vertebrae``) and/or
    blood-based (``samples``) dosimetry (:mod:`theradose.dosimetry.marrow`)."""

    region: str | None = None
    vertebrae: tuple[str, ...] = ()
    samples: tuple[BloodSampleSpec, ...] = ()
    sample: MarrowSample = "blood"
    haematocrit: float | None = None
    rmblr: float | None = None
    rmblr_relative_sigma: float | None = None
    sample_relative_sd: float = 0.05

    @property
    def enabled(self) -> bool:
        return self.region is not None or bool(self.samples)


@dataclass(frozen=True)
class StudySpec:
    """A validated study file.

    Paths are absolute (relative paths in the file are relative to the file's folder).
    """

    path: Path
    patient: PatientSpec
    cycle: int
    administration: AdministrationSpec
    timepoints: tuple[TimepointSpec, ...]
    calibration: Calibration
    calibration_factor_cps_per_mbq: float | None
    registration: RegistrationMethod
    reference_timepoint: int
    segmentation: SegmentationSpec
    kinetics: KineticsSpec
    dose: DoseSpec
    pvc: PvcSpec
    tissues: Mapping[str, str]
    formats: tuple[OutputFormat, ...]
    seed: int = 0
    marrow: MarrowSpec = field(default_factory=MarrowSpec)
    #: Treatment plan file (``[plan] file``): the next cycle is planned with this study's doses.
    plan_file: Path | None = None
    #: Which dose of this study the plan uses (``[plan] dose_source``; see
    #: :func:`theradose.planning.cycles.read_doses_json`).
    plan_dose_source: str = "auto"
    #: The QA record of the SPECT calibration (``[calibration] record``).
    calibration_record: CalibrationRecord | None = None
    #: IANA time zone of the site (``[site] time_zone``): reports show times in it.
    site_time_zone: str | None = None
    #: The service's administration record or RRDSR the administration, patient and cycle were taken from
    #: (:mod:`theradose.pipeline.administration`); None for typed-in values.
    administration_record: RecordSource | None = None

    @property
    def tumour_regions(self) -> tuple[str, ...]:
        """Regions treated as tumours (sphere model, PVC default, tumour radiobiology): the study file's
        ``segmentation.tumours``, else the regions the organ registry names as tumour (``tumour_1``,
        ``lesion_2``, ...)."""
        if self.segmentation.tumours:
            return self.segmentation.tumours
        from theradose.organs import find_organ

        return tuple(n for n in self.segmentation.regions if (o := find_organ(n)) is not None and o.is_tumour)

    def tissue(self, region: str) -> str | None:
        """Tissue of ``region`` (study file first; a listed tumour is ``tumour``; else the tissue of the
        organ the region's name means in the organ registry)."""
        if region in self.segmentation.tumours:
            return self.tissues.get(region, "tumour")
        return tissue_for(region, self.tissues)


def tissue_for(region: str, explicit: Mapping[str, str]) -> str | None:
    """Tissue of a region: the explicit mapping, else the tissue of the organ that the region's name means
    (:func:`theradose.organs.find_organ`: canonical name, alias or numbered tumour); None for a region
    that is no organ of the registry."""
    if region in explicit:
        return explicit[region]
    from theradose.organs import find_organ

    organ = find_organ(region)
    return None if organ is None else organ.tissue


# ------------------------------------------------------------------------------------------ helpers
_SCHEMA: dict[str, tuple[str, ...]] = {
    "": (
        "patient",
        "cycle",
        "administration",
        "timepoints",
        "calibration",
        "registration",
        "segmentation",
        "kinetics",
        "dose",
        "pvc",
        "radiobiology",
        "output",
        "seed",
        "plan",
        "marrow",
        "site",
    ),
    "patient": ("id", "name", "sex", "weight_kg"),
    "administration": (
        "nuclide",
        "radiopharmaceutical",
        "activity_mbq",
        "datetime",
        "syringe_before_mbq",
        "syringe_residual_mbq",
    ),
    "timepoints": ("spect", "series_uid", "ct", "ct_series_uid", "datetime"),
    "calibration": ("mode", "factor_cps_per_mbq", "record"),
    "site": ("time_zone",),
    "registration": ("method", "reference"),
    "segmentation": ("source", "path", "regions", "tumours", "threshold_percent", "boundary_sigma_mm"),
    "kinetics": (
        "model",
        "single_timepoint",
        "stp_timepoint",
        "effective_half_life_h",
        "earlier_cycle",
        "models",
    ),
    "dose": ("engines", "organ", "mc_photons", "reference"),
    "pvc": (
        "enabled",
        "recovery_curve",
        "regions",
        "spill_in",
        "background_shell_mm",
        "organs",
        "margin_mm",
        "organ_regions",
        "method",
        "resolution",
        "fit_resolution",
        "other_uptake",
        "lesions",
    ),
    "marrow": (
        "region",
        "vertebrae",
        "samples",
        "sample",
        "haematocrit",
        "rmblr",
        "rmblr_relative_sigma",
        "sample_relative_sd",
    ),
    "radiobiology": ("tissues",),
    "output": ("formats",),
    "plan": ("file", "dose_source"),
}


def _where(section: str) -> str:
    return "the top level" if not section else f"[{section}]"


def _check_keys(table: Mapping[str, Any], section: str) -> None:
    allowed = _SCHEMA[section.split(".")[0] if not section.startswith("timepoints") else "timepoints"]
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(allowed)}"
            raise InputError(f"unknown key '{key}' in {_where(section)}; {hint}")


def _table(data: Mapping[str, Any], key: str, *, required: bool) -> Mapping[str, Any]:
    if key not in data:
        if required:
            raise InputError(f"missing section [{key}]: add it (see docs/study-file.md)")
        return {}
    value = data[key]
    if not isinstance(value, Mapping):
        raise InputError(f"'{key}' must be a table [{key}]; got {value!r}")
    _check_keys(value, key)
    return value


def _str(table: Mapping[str, Any], key: str, section: str, default: str | None = None) -> str:
    if key not in table:
        if default is None:
            raise InputError(f"missing key '{key}' in [{section}]: add it")
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{section}.{key} must be a non-empty string; got {value!r}")
    return value.strip()


def _choice(table: Mapping[str, Any], key: str, section: str, options: Sequence[str], default: str) -> str:
    value = table.get(key, default)
    if value not in options:
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(options)}"
        raise InputError(f"{section}.{key} = {value!r} is not allowed; {hint}")
    return str(value)


def _number(
    table: Mapping[str, Any],
    key: str,
    section: str,
    *,
    default: float | None = None,
    positive: bool = True,
    required: bool = False,
) -> float | None:
    if key not in table:
        if required:
            raise InputError(f"missing key '{key}' in [{section}]: add it")
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{section}.{key} must be a number; got {value!r}")
    if positive and value <= 0:
        raise InputError(f"{section}.{key} must be > 0; got {value!r}")
    return float(value)


def _int(table: Mapping[str, Any], key: str, section: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{section}.{key} must be an integer; got {value!r}")
    return value


def _bool(table: Mapping[str, Any], key: str, section: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"{section}.{key} must be true or false; got {value!r}")
    return value


def _datetime(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(
                f"{where} = {value!r} is not an ISO date-time: write e.g. 2025-01-06T09:00:00+01:00"
            ) from None
    if not isinstance(value, datetime):
        raise InputError(f"{where} must be a date-time like 2025-01-06T09:00:00+01:00; got {value!r}")
    if value.tzinfo is None:
        raise InputError(
            f"{where} = {value.isoformat()} has no time zone: add the UTC offset, e.g. "
            f"{value.isoformat()}+01:00"
        )
    return value


def _path(value: Any, where: str, base: Path, *, must_exist: bool = True) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where} must be a path (string); got {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    path = path.resolve()
    if must_exist and not path.exists():
        raise InputError(
            f"{where} = {value!r}: {path} does not exist; check the path (relative to the study file)"
        )
    return path


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{where} must be a list of names; got {value!r}")
    return tuple(value)


# ------------------------------------------------------------------------------------------ parsing
def parse_study(data: Mapping[str, Any], *, base_dir: Path, path: Path | None = None) -> StudySpec:
    """Validate a parsed study mapping (from TOML) into a :class:`StudySpec`; files are checked to exist.

    Parameters
    ----------
    data : mapping
        The TOML document.
    base_dir : Path
        Folder that relative paths are relative to (the study file's folder).
    path : Path, optional
        The study file (recorded in the spec).
    """
    from theradose.nuclides import get_nuclide

    _check_keys(data, "")
    for section in ("patient", "administration"):
        if section not in data:
            raise InputError(
                f"missing section [{section}]: add it (see docs/study-file.md), or take the patient and "
                "administration from the service (--administration ID --service URL) or an RRDSR "
                "(--rrdsr FILE)"
            )
    patient_t = _table(data, "patient", required=True)
    patient = PatientSpec(
        patient_id=_str(patient_t, "id", "patient"),
        name=_str(patient_t, "name", "patient", "Anonymous^Patient"),
        sex=_choice(patient_t, "sex", "patient", ["M", "F", "O", ""], ""),  # type: ignore[arg-type]
        weight_kg=_number(patient_t, "weight_kg", "patient"),
    )
    cycle = _int(data, "cycle", "cycle", 1)
    if cycle < 1:
        raise InputError(f"cycle must be >= 1 (the therapy cycle number); got {cycle}")
    seed = _int(data, "seed", "seed", 0)

    adm_t = _table(data, "administration", required=True)
    nuclide_text = _str(adm_t, "nuclide", "administration")
    nuclide = get_nuclide(nuclide_text).name
    activity = _number(adm_t, "activity_mbq", "administration", required=True)
    assert activity is not None
    if "datetime" not in adm_t:
        raise InputError(
            "missing key 'datetime' in [administration]: add e.g. datetime = 2025-01-06T09:00:00+01:00"
        )
    administered_at = _datetime(adm_t["datetime"], "administration.datetime")
    before = _number(adm_t, "syringe_before_mbq", "administration")
    residual = _number(adm_t, "syringe_residual_mbq", "administration", positive=False)
    if residual is not None and residual < 0:
        raise InputError(f"administration.syringe_residual_mbq must be >= 0; got {residual}")
    if (before is None) != (residual is None):
        raise InputError("administration: give both syringe_before_mbq and syringe_residual_mbq, or neither")
    if before is not None and residual is not None:
        net = before - residual
        if net <= 0:
            raise InputError(
                f"administration.syringe_residual_mbq = {residual} is not below syringe_before_mbq = "
                f"{before}: "
                "check the dose-calibrator readings"
            )
        if abs(net - activity) > ACTIVITY_TOLERANCE * activity:
            raise InputError(
                f"inconsistent activities: administration.activity_mbq = {activity} but syringe_before_mbq − "
                f"syringe_residual_mbq = {net:g} MBq (differ by more than {ACTIVITY_TOLERANCE:.0%}): "
                "correct one of them"
            )
    administration = AdministrationSpec(
        nuclide=nuclide,
        radiopharmaceutical=_str(adm_t, "radiopharmaceutical", "administration", nuclide),
        activity_mbq=activity,
        datetime=administered_at,
        syringe_before_mbq=before,
        syringe_residual_mbq=residual,
    )

    raw_tps = data.get("timepoints")
    if not isinstance(raw_tps, list) or not raw_tps:
        raise InputError(
            "missing [[timepoints]]: add one [[timepoints]] table per imaging time point with spect = "
            "'folder'"
        )
    timepoints: list[TimepointSpec] = []
    for i, tp in enumerate(raw_tps):
        section = f"timepoints.{i + 1}"
        if not isinstance(tp, Mapping):
            raise InputError(f"[[timepoints]] entry {i + 1} must be a table; got {tp!r}")
        _check_keys(tp, section)
        if "spect" not in tp:
            raise InputError(
                f"missing key 'spect' in [[timepoints]] entry {i + 1}: give the SPECT folder or file"
            )
        spect = _path(tp["spect"], f"timepoints[{i + 1}].spect", base_dir)
        ct = _path(tp["ct"], f"timepoints[{i + 1}].ct", base_dir) if "ct" in tp else None
        when = _datetime(tp["datetime"], f"timepoints[{i + 1}].datetime") if "datetime" in tp else None
        series_uid = _str(tp, "series_uid", section) if "series_uid" in tp else None
        ct_uid = _str(tp, "ct_series_uid", section) if "ct_series_uid" in tp else None
        timepoints.append(TimepointSpec(spect, series_uid, ct, ct_uid, when))

    cal_t = _table(data, "calibration", required=False)
    calibration = _choice(cal_t, "mode", "calibration", ["bqml", "factor"], "bqml")
    factor = _number(cal_t, "factor_cps_per_mbq", "calibration")
    record = (
        read_calibration_record(_path(cal_t["record"], "calibration.record", base_dir))
        if "record" in cal_t
        else None
    )
    if record is not None and calibration == "factor":
        if factor is None:
            factor = record.factor_cps_per_mbq
        elif not math.isclose(factor, record.factor_cps_per_mbq, rel_tol=1e-4):
            raise InputError(
                f"calibration.factor_cps_per_mbq = {factor:g} but the QA record {record.path.name} says "
                f"{record.factor_cps_per_mbq:g}: remove the factor (the record's is used) or name the "
                "right record"
            )
    if calibration == "factor" and factor is None:
        raise InputError(
            "calibration.mode = 'factor' needs calibration.factor_cps_per_mbq (from 'theradose qa'): add it"
        )
    if calibration == "bqml" and factor is not None:
        raise InputError(
            f"calibration.factor_cps_per_mbq = {factor} given but mode = 'bqml' (image already in Bq/mL): "
            "remove the factor or set mode = 'factor'"
        )

    reg_t = _table(data, "registration", required=False)
    registration = _choice(reg_t, "method", "registration", ["none", "rigid", "deformable"], "none")
    reference = _int(reg_t, "reference", "registration", 1)
    if not 1 <= reference <= len(timepoints):
        raise InputError(
            f"registration.reference = {reference} is not a time point: give 1..{len(timepoints)} "
            "(position in [[timepoints]])"
        )
    if registration != "none" and any(tp.ct is None for tp in timepoints):
        missing = next(i + 1 for i, tp in enumerate(timepoints) if tp.ct is None)
        raise InputError(
            f"registration.method = '{registration}' needs a CT per time point; timepoints[{missing}].ct is "
            "missing: add it or set method = 'none'"
        )

    seg_t = _table(data, "segmentation", required=True)
    source = _choice(seg_t, "source", "segmentation", ["nifti", "rtstruct", "seg", "auto"], "nifti")
    seg_path = _path(seg_t["path"], "segmentation.path", base_dir) if "path" in seg_t else None
    if source != "auto" and seg_path is None:
        raise InputError(f"segmentation.source = '{source}' needs segmentation.path: add the file")
    raw_regions = seg_t.get("regions", {})
    if not isinstance(raw_regions, Mapping):
        raise InputError(f"segmentation.regions must be a table name = labels; got {raw_regions!r}")
    regions: dict[str, tuple[int | str, ...]] = {}
    for name, value in raw_regions.items():
        where = f"segmentation.regions.{name}"
        values = value if isinstance(value, list) else [value]
        if source == "nifti":
            if not values or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
            ):
                raise InputError(f"{where} must be a positive label value or a list of them; got {value!r}")
        elif not all(isinstance(v, str) and v for v in values):
            raise InputError(f"{where} must be ROI/segment names (strings); got {value!r}")
        regions[str(name)] = tuple(values)
    if source == "nifti" and not regions:
        raise InputError("segmentation.regions is empty: name the labels, e.g. regions = { liver = 3 }")
    tumours = _string_list(seg_t.get("tumours", []), "segmentation.tumours")
    for t in tumours:
        if regions and t not in regions:
            raise InputError(
                f"segmentation.tumours names '{t}', which is not in segmentation.regions: add it"
            )
    threshold = _number(seg_t, "threshold_percent", "segmentation", default=20.0)
    assert threshold is not None
    if threshold >= 100:
        raise InputError(f"segmentation.threshold_percent must be in (0, 100); got {threshold}")
    boundary = _number(seg_t, "boundary_sigma_mm", "segmentation", default=None)
    segmentation = SegmentationSpec(
        source,  # type: ignore[arg-type]
        seg_path,
        regions,
        tumours,
        threshold,
        boundary,
    )

    kin_t = _table(data, "kinetics", required=False)
    model = _choice(kin_t, "model", "kinetics", list(get_args(KineticsModel)), "auto")
    stp = _choice(kin_t, "single_timepoint", "kinetics", list(get_args(StpChoice)), "none")
    stp_tp = _int(kin_t, "stp_timepoint", "kinetics", len(timepoints))
    if not 1 <= stp_tp <= len(timepoints):
        raise InputError(
            f"kinetics.stp_timepoint = {stp_tp}: give 1..{len(timepoints)} (position in [[timepoints]])"
        )
    raw_teff = kin_t.get("effective_half_life_h", {})
    if isinstance(raw_teff, (int, float)) and not isinstance(raw_teff, bool):
        raw_teff = {"*": raw_teff}
    if not isinstance(raw_teff, Mapping):
        raise InputError(
            f"kinetics.effective_half_life_h must be a number or a table region = h; got {raw_teff!r}"
        )
    teff: dict[str, float] = {}
    for name in raw_teff:
        value = _number(raw_teff, name, "kinetics.effective_half_life_h")
        assert value is not None
        teff[str(name)] = value
    if stp == "madsen" and not teff:
        raise InputError(
            "kinetics.single_timepoint = 'madsen' needs kinetics.effective_half_life_h (a prior, h): add it"
        )
    raw_models = kin_t.get("models", {})
    if not isinstance(raw_models, Mapping):
        raise InputError(
            "kinetics.models must be a table region = model "
            f'(e.g. liver = "trapezoid_mono"); got {raw_models!r}'
        )
    per_region: dict[str, str] = {}
    for name in raw_models:
        if name not in regions:
            raise InputError(
                f"kinetics.models.{name}: no region {name!r} in the study; choose from "
                f"{', '.join(sorted(regions))}"
            )
        per_region[str(name)] = _choice(
            raw_models, name, "kinetics.models", list(get_args(KineticsModel)), "auto"
        )
    n_needed_by = {"auto": 2, "mono": 2, "bi": 3, "tri": 5, "trapezoid": 1, "trapezoid_mono": 3}
    for key, chosen in [("model", model), *((f"models.{k}", v) for k, v in per_region.items())]:
        n_needed = n_needed_by[chosen]
        if stp == "none" and len(timepoints) < n_needed:
            raise InputError(
                f"kinetics.{key} = '{chosen}' needs at least {n_needed} time points; the study has "
                f"{len(timepoints)}: "
                "add time points or set kinetics.single_timepoint"
            )
    earlier = (
        _path(kin_t["earlier_cycle"], "kinetics.earlier_cycle", base_dir)
        if "earlier_cycle" in kin_t
        else None
    )
    if stp == "earlier_cycle" and earlier is None:
        raise InputError(
            "kinetics.single_timepoint = 'earlier_cycle' needs kinetics.earlier_cycle (the doses.json of "
            "the same patient's earlier cycle): add it"
        )
    if earlier is not None and stp != "earlier_cycle":
        raise InputError(
            f"kinetics.earlier_cycle is given but single_timepoint = {stp!r}: set single_timepoint = "
            "'earlier_cycle' or remove earlier_cycle"
        )
    if earlier is not None:
        _check_earlier_cycle(earlier, patient_id=patient.patient_id, cycle=cycle, nuclide=nuclide)
    kinetics = KineticsSpec(model, stp, stp_tp - 1, teff, earlier, per_region)  # type: ignore[arg-type]

    dose_t = _table(data, "dose", required=False)
    engines = tuple(
        parse_engine(e, field="dose.engines entry")
        for e in _string_list(dose_t.get("engines", [DoseEngine.LOCAL.value]), "dose.engines")
    )
    if len(set(engines)) != len(engines):
        raise InputError(f"dose.engines lists an engine twice: {list(engines)}")
    mc_photons = _int(dose_t, "mc_photons", "dose", 200_000)
    if mc_photons < 1000:
        raise InputError(f"dose.mc_photons must be >= 1000; got {mc_photons}")
    organ_on = _bool(dose_t, "organ", "dose", True)
    default_reference = ORGAN_SOURCE if organ_on else engines[0].value
    dose_reference = _str(dose_t, "reference", "dose", default_reference)
    if dose_reference == ORGAN_SOURCE and not organ_on:
        raise InputError("dose.reference = 'organ' needs dose.organ = true: turn it on or name an engine")
    if dose_reference != ORGAN_SOURCE:
        dose_reference = parse_engine(dose_reference, field="dose.reference").value
        if dose_reference not in engines:
            raise InputError(
                f"dose.reference = {dose_reference!r} is not among dose.engines "
                f"{[e.value for e in engines]}: add it there or name another"
            )
    dose = DoseSpec(engines, organ_on, mc_photons, dose_reference)

    pvc_t = _table(data, "pvc", required=False)
    pvc_on = _bool(pvc_t, "enabled", "pvc", "recovery_curve" in pvc_t)
    curve = (
        _path(pvc_t["recovery_curve"], "pvc.recovery_curve", base_dir) if "recovery_curve" in pvc_t else None
    )
    if pvc_on and curve is None:
        raise InputError("pvc.enabled = true needs pvc.recovery_curve (JSON or CSV from QA): add it")
    pvc_regions = _string_list(pvc_t.get("regions", []), "pvc.regions")
    for r in pvc_regions:
        if regions and r not in regions:
            raise InputError(
                f"pvc.regions names '{r}', which is not in segmentation.regions: add it or remove it"
            )
    shell_mm = _number(pvc_t, "background_shell_mm", "pvc", default=10.0)
    assert shell_mm is not None
    organs = _choice(pvc_t, "organs", "pvc", get_args(OrganPvc), "none")
    margin_mm = _number(pvc_t, "margin_mm", "pvc", default=None)
    if organs == "enlarged_voi" and margin_mm is None:
        raise InputError(
            "pvc.organs = 'enlarged_voi' needs pvc.margin_mm (about 1 FWHM of the reconstructed SPECT "
            "resolution, e.g. 15): add it"
        )
    organ_regions = _string_list(pvc_t.get("organ_regions", []), "pvc.organ_regions")
    if organs == "enlarged_voi" and not organ_regions:
        raise InputError(
            "pvc.organs = 'enlarged_voi' needs pvc.organ_regions (the organs to enlarge, e.g. "
            '["kidneys", "liver", "spleen"]; never a whole-body region): add it'
        )
    for r in organ_regions:
        if regions and r not in regions:
            raise InputError(
                f"pvc.organ_regions names '{r}', which is not in segmentation.regions: add it or remove it"
            )
    method = _choice(pvc_t, "method", "pvc", get_args(PvcMethod), "legacy")
    resolution = _path(pvc_t["resolution"], "pvc.resolution", base_dir) if "resolution" in pvc_t else None
    lesions = _choice(pvc_t, "lesions", "pvc", get_args(LesionPvc), "model")
    if method in ("gtm", "rbv"):
        if resolution is None:
            raise InputError(
                f"pvc.method = '{method}' needs pvc.resolution (the effective resolution measured on your "
                "IEC phantom with 'theradose qa resolution'): add it"
            )
        if organs != "none":
            raise InputError(
                f"pvc.method = '{method}' corrects every listed region; remove pvc.organs = '{organs}'"
            )
        if lesions == "recovery_curve" and curve is None:
            raise InputError("pvc.lesions = 'recovery_curve' needs pvc.recovery_curve: add it")
        if any(tp.ct is None for tp in timepoints):
            raise InputError(
                f"pvc.method = '{method}' needs a CT per time point (tissue classes of the background): "
                "add ct"
            )
    elif resolution is not None:
        raise InputError(
            "pvc.resolution is used by pvc.method = 'gtm' or 'rbv' only: set the method or remove it"
        )
    pvc = PvcSpec(
        pvc_on or method in ("gtm", "rbv"),
        curve,
        pvc_regions,
        _bool(pvc_t, "spill_in", "pvc", True),
        shell_mm,
        organs,  # type: ignore[arg-type]
        margin_mm,
        organ_regions,
        method,  # type: ignore[arg-type]
        resolution,
        _bool(pvc_t, "fit_resolution", "pvc", True),
        _bool(pvc_t, "other_uptake", "pvc", True),
        lesions,  # type: ignore[arg-type]
    )
    marrow = _marrow(_table(data, "marrow", required=False), regions)

    rb_t = _table(data, "radiobiology", required=False)
    raw_tissues = rb_t.get("tissues", {})
    if not isinstance(raw_tissues, Mapping) or not all(isinstance(v, str) for v in raw_tissues.values()):
        raise InputError(f"radiobiology.tissues must be a table region = tissue name; got {raw_tissues!r}")
    tissues = {str(k): str(v) for k, v in raw_tissues.items()}
    if tissues:
        from theradose.tissues import get_tissue, tissue_names

        for region, tissue in tissues.items():
            try:
                tissues[region] = get_tissue(tissue).name
            except InputError:
                raise InputError(
                    f"radiobiology.tissues.{region} = {tissue!r} is unknown; choose one of "
                    f"{', '.join(tissue_names())}"
                ) from None

    out_t = _table(data, "output", required=False)
    formats = _string_list(out_t.get("formats", list(ALL_FORMATS)), "output.formats")
    for f in formats:
        if f not in ALL_FORMATS:
            close = difflib.get_close_matches(f, ALL_FORMATS, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(ALL_FORMATS)}"
            raise InputError(f"output.formats has {f!r}; {hint}")
    if "json" not in formats:
        formats = ("json", *formats)

    site_t = _table(data, "site", required=False)
    time_zone = _str(site_t, "time_zone", "site") if "time_zone" in site_t else None
    if time_zone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(
                f"site.time_zone = {time_zone!r} is not an IANA time zone: write e.g. 'Europe/Berlin'"
            ) from None

    plan_t = _table(data, "plan", required=False)
    plan_file = _path(plan_t["file"], "plan.file", base_dir) if "file" in plan_t else None
    plan_dose_source = _str(plan_t, "dose_source", "plan", default="auto")

    return StudySpec(
        path=(path or base_dir / "study.toml").resolve(),
        patient=patient,
        cycle=cycle,
        administration=administration,
        timepoints=tuple(timepoints),
        calibration=calibration,  # type: ignore[arg-type]
        calibration_factor_cps_per_mbq=factor,
        registration=registration,  # type: ignore[arg-type]
        reference_timepoint=reference - 1,
        segmentation=segmentation,
        kinetics=kinetics,
        dose=dose,
        pvc=pvc,
        tissues=tissues,
        formats=tuple(formats),  # type: ignore[arg-type]
        seed=seed,
        marrow=marrow,
        plan_file=plan_file,
        plan_dose_source=plan_dose_source,
        calibration_record=record,
        site_time_zone=time_zone,
    )


def _marrow(table: Mapping[str, Any], regions: Mapping[str, Any]) -> MarrowSpec:
    """Validate ``[marrow]`` (see :class:`MarrowSpec`)."""
    if not table:
        return MarrowSpec()
    region = _str(table, "region", "marrow") if "region" in table else None
    if region is not None and regions and region not in regions:
        raise InputError(f"marrow.region names '{region}', which is not in segmentation.regions: add it")
    vertebrae = _string_list(table.get("vertebrae", []), "marrow.vertebrae")
    if region is not None and not vertebrae:
        raise InputError(
            "marrow.region needs marrow.vertebrae (the vertebrae of the VOI, e.g. ['L2', 'L3', 'L4']): add it"
        )
    if vertebrae:
        from theradose.dosimetry.marrow import vertebral_marrow_fraction

        vertebral_marrow_fraction(vertebrae)  # names checked before any computation
    raw = table.get("samples", [])
    if not isinstance(raw, list):
        raise InputError(f"marrow.samples must be a list of [[marrow.samples]] tables; got {raw!r}")
    samples: list[BloodSampleSpec] = []
    for i, entry in enumerate(raw):
        where = f"marrow.samples[{i + 1}]"
        if not isinstance(entry, Mapping) or set(entry) - {"time_h", "concentration_bq_per_ml"}:
            raise InputError(
                f"{where} must be a table with time_h and concentration_bq_per_ml only; got {entry!r}"
            )
        t = _number(entry, "time_h", where, required=True)
        c = _number(entry, "concentration_bq_per_ml", where, required=True)
        assert t is not None and c is not None
        samples.append(BloodSampleSpec(t, c))
    times = [s.time_h for s in samples]
    if times != sorted(times) or len(set(times)) != len(times):
        raise InputError(f"marrow.samples times must be strictly increasing; got {times}: sort them")
    if samples and len(samples) < 3:
        raise InputError(
            f"the blood-based marrow method needs at least 3 samples; got {len(samples)}: add samples"
        )
    sample = _choice(table, "sample", "marrow", ["blood", "plasma"], "blood")
    hct = _number(table, "haematocrit", "marrow")
    if hct is not None and not hct < 1.0:
        raise InputError(f"marrow.haematocrit must be a fraction below 1 (e.g. 0.42); got {hct}")
    if sample == "plasma" and hct is None:
        raise InputError("marrow.sample = 'plasma' needs marrow.haematocrit: add it")
    rmblr = _number(table, "rmblr", "marrow")
    rmblr_sigma = _number(table, "rmblr_relative_sigma", "marrow", positive=False)
    if (rmblr is None) != (rmblr_sigma is None):
        raise InputError("give marrow.rmblr and marrow.rmblr_relative_sigma together, or neither")
    sd = _number(table, "sample_relative_sd", "marrow", default=0.05)
    assert sd is not None
    return MarrowSpec(region, vertebrae, tuple(samples), sample, hct, rmblr, rmblr_sigma, sd)  # type: ignore[arg-type]


def _check_earlier_cycle(path: Path, *, patient_id: str, cycle: int, nuclide: str) -> None:
    """The earlier cycle's dose record must be the same patient's, an earlier cycle, the same nuclide,
    and hold fitted kinetics (a record of version 3 or later)."""
    from theradose.dosimetry.results import read_doses

    earlier = read_doses(path)
    where = f"kinetics.earlier_cycle {path.name}"
    if earlier.patient.id != patient_id:
        raise InputError(
            f"{where} is of patient {earlier.patient.id!r}, not {patient_id!r}: name this patient's record"
        )
    if earlier.cycle >= cycle:
        raise InputError(
            f"{where} is of cycle {earlier.cycle}, not earlier than this cycle {cycle}: name an earlier cycle"
        )
    if earlier.administration.nuclide != nuclide:
        raise InputError(
            f"{where} is of {earlier.administration.nuclide}, this study of {nuclide}: name a record of "
            "the same radionuclide"
        )
    if not any(r.kinetics is not None and r.kinetics.covariance is not None for r in earlier.regions):
        raise InputError(
            f"{where} holds no fitted kinetics (written before version 3, or by a single-time-point run): "
            "re-run the earlier cycle with this version"
        )


def read_calibration_record(path: Path) -> CalibrationRecord:
    """Read a SPECT calibration QA record: the JSON of ``theradose qa spect-calibration --json``
    (``calibration_factor_cps_per_mbq``, ``sigma``, ``acquisition_datetime``, optionally ``camera``).

    Raises
    ------
    InputError
        Unreadable file, missing or invalid keys (one line naming the key and the fix).
    """
    import hashlib
    import json

    where = f"calibration.record {path.name}"
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise InputError(f"{where} cannot be read ({exc.strerror}): check the path") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{where} is not valid JSON ({exc}): give the output of 'theradose qa "
                         "spect-calibration --json'") from None  # fmt: skip
    if not isinstance(data, Mapping):
        raise InputError(f"{where} must hold a JSON object")
    values = {}
    for key in ("calibration_factor_cps_per_mbq", "sigma"):
        value = data.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise InputError(f"{where}: {key} must be a number > 0; got {value!r}: fix the QA record")
        values[key] = float(value)
    measured = _datetime(data.get("acquisition_datetime"), f"{where}: acquisition_datetime")
    if measured.tzinfo is None:
        raise InputError(f"{where}: acquisition_datetime has no UTC offset: fix the QA record")
    camera = data.get("camera", "")
    if not isinstance(camera, str):
        raise InputError(f"{where}: camera must be a string; got {camera!r}")
    return CalibrationRecord(
        path=path,
        factor_cps_per_mbq=values["calibration_factor_cps_per_mbq"],
        sigma_cps_per_mbq=values["sigma"],
        measured=measured,
        camera=camera,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def load_study(
    path: str | Path, *, check_headers: bool = True, administration: RecordSource | None = None
) -> StudySpec:
    """Read and validate a study file; with ``check_headers`` also check the DICOM headers.

    The header check (:func:`check_dicom_headers`) reads only DICOM headers: acquisition times against
    the administration time, the injected activity against the study file.

    With ``administration`` (the service's record or an RRDSR, :mod:`theradose.pipeline.administration`)
    the patient, cycle and administration come from the record; the study file may leave them out, and
    what it states must agree with the record (:func:`theradose.pipeline.administration.apply_record`).

    Raises
    ------
    InputError
        With a one-line message naming the key, the value and the fix.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"study file {str(file)!r} does not exist: check the path")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"study file {file.name} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"study file {file.name} is not UTF-8 text") from None
    if administration is not None:
        from theradose.pipeline.administration import apply_record

        data = apply_record(data, administration)
    spec = parse_study(data, base_dir=file.resolve().parent, path=file)
    if administration is not None:
        from dataclasses import replace

        spec = replace(spec, administration_record=administration)
    if check_headers:
        check_dicom_headers(spec)
    return spec


@dataclass(frozen=True)
class TimepointHeader:
    """What the DICOM headers say about one time point (acquisition time, series UID, injected activity)."""

    acquisition_datetime: datetime
    series_uid: str
    injected_activity_mbq: float | None
    units: str | None


def check_dicom_headers(spec: StudySpec) -> tuple[TimepointHeader, ...]:
    """Check each time point's SPECT headers: one image series, acquired after the administration.

    Also checks that the injected activity in the headers (when present) agrees with
    ``administration.activity_mbq`` within :data:`ACTIVITY_TOLERANCE`, and that the calibration mode fits
    the stored units (counts need a factor, Bq/mL needs none).
    """
    from theradose.io.dicom import discover_series
    from theradose.units import seconds_to_hours

    headers: list[TimepointHeader] = []
    adm = spec.administration
    for i, tp in enumerate(spec.timepoints):
        where = f"timepoints[{i + 1}].spect"
        images = [s for s in discover_series(tp.spect) if s.is_image and s.modality in ("NM", "PT")]
        if tp.series_uid is not None:
            images = [s for s in images if s.series_uid == tp.series_uid]
            if not images:
                raise InputError(
                    f"timepoints[{i + 1}].series_uid = {tp.series_uid!r} is not an NM/PT series under "
                    f"{tp.spect}: "
                    "check the UID (theradose dicom inspect)"
                )
        if not images:
            raise InputError(
                f"{where} = {str(tp.spect)!r} holds no NM/PT image series: point it at the SPECT"
            )
        if len(images) > 1:
            raise InputError(
                f"{where} = {str(tp.spect)!r} holds {len(images)} NM/PT series: add series_uid = one of "
                f"{', '.join(s.series_uid for s in images)}"
            )
        info = images[0]
        when = tp.acquisition_datetime or info.acquisition_datetime
        if when is None:
            raise InputError(f"{where}: the DICOM has no acquisition time; add timepoints[{i + 1}].datetime")
        if when.tzinfo is None:
            when = when.replace(tzinfo=adm.datetime.tzinfo)
        elapsed_h = seconds_to_hours((when - adm.datetime).total_seconds())
        if elapsed_h <= 0:
            raise InputError(
                f"time point {i + 1} was acquired at {when.isoformat()}, {-elapsed_h:.2f} h before the "
                f"administration "
                f"({adm.datetime.isoformat()}): check administration.datetime or the time point"
            )
        if info.units == "counts" and spec.calibration != "factor":
            raise InputError(
                f"{where} is stored in counts: set calibration.mode = 'factor' and "
                f"calibration.factor_cps_per_mbq"
            )
        if info.units == "Bq/mL" and spec.calibration == "factor":
            raise InputError(f"{where} is already in Bq/mL: set calibration.mode = 'bqml' (no factor needed)")
        header_mbq = info.injected_activity_mbq
        if (
            header_mbq is not None
            and abs(header_mbq - adm.activity_mbq) > ACTIVITY_TOLERANCE * adm.activity_mbq
        ):
            raise InputError(
                f"inconsistent activities: administration.activity_mbq = {adm.activity_mbq:g} but the "
                f"DICOM header "
                f"of time point {i + 1} says {header_mbq:g} MBq: correct the study file or the DICOM"
            )
        headers.append(TimepointHeader(when, info.series_uid, header_mbq, info.units))
    times = [h.acquisition_datetime for h in headers]
    if len(set(times)) != len(times):
        raise InputError(
            "two time points have the same acquisition time: each [[timepoints]] must be a separate scan"
        )
    return tuple(headers)
