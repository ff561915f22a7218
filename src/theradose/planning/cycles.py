"""Cycle history: administered activity and measured doses per region, from a plan file or ``doses.json``.

``doses.json`` (written by the dosimetry pipeline, or by hand) has this shape::

    {
      "administered_activity_mbq": 7400.0,
      "regions": [
        {"name": "kidneys", "kind": "organ", "dose_gy": 4.1, "dose_sigma_gy": 0.4,
         "dose_gy_per_gbq": 0.554, "effective_half_life_h": 48.0},
        {"name": "lesion_1", "kind": "tumour", "dose_gy": 25.0, "dose_sigma_gy": 4.0,
         "effective_half_life_h": 70.0}
      ]
    }

Per region: ``name`` (required); ``dose_gy_per_gbq`` or ``dose_gy`` (one is required, the other is
derived from the administered activity; if both are given they must agree within 1 %); the
uncertainty as ``dose_sigma_gy_per_gbq`` or ``dose_sigma_gy`` (1 standard deviation, required);
``effective_half_life_h`` (needed for BED); ``kind`` = ``"organ"`` (default) or ``"tumour"``. Other
keys are ignored, so a pipeline may add its own.

The dose record of the pipeline (``"format": "theradose-doses"``,
:class:`theradose.dosimetry.results.StudyDoses`) is read through that class (:func:`cycle_doses`): the
activity comes from its administration and each region's dose from one **dose source** (``dose_source``
argument, or ``dose_source`` in a plan file's cycle):

- ``"auto"`` (default): the study's reference dose (:attr:`StudyDoses.reference_dose`), the dose every
  screen shows;
- ``"organ"``: the organ-level MIRD dose;
- an engine name of the study: that engine's mass-weighted mean voxel dose.

The chosen source is recorded per region (:attr:`RegionDose.source`). Regions without a dose of that
source (e.g. a region with no voxels) are skipped: they carry no dose. ``mass_g`` is kept for the
mass-weighted aggregation of paired organs in planning.

The plan file (PLAN.toml) is documented in :func:`load_plan`.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from theradose.errors import InputError
from theradose.planning.protocols import RESPONSE_STATUSES, Protocol, load_protocol
from theradose.safety.labs import LabValue, Sex
from theradose.units import gbq_to_mbq, mbq_to_gbq

if TYPE_CHECKING:
    from theradose.dosimetry.results import Bed, StudyDoses

RegionKind = Literal["organ", "tumour"]
Estimate = Literal["last", "inverse_variance"]

#: Relative tolerance for dose_gy and dose_gy_per_gbq given together in one region.
_CONSISTENCY_TOLERANCE = 0.01


@dataclass(frozen=True)
class RegionDose:
    """Measured dose of one region in one cycle, per unit administered activity.

    Attributes
    ----------
    name : str
        Region name (organ or tumour).
    dose_gy_per_gbq, dose_sigma_gy_per_gbq : float
        Absorbed dose per administered activity and its 1-sigma uncertainty (Gy/GBq).
    effective_half_life_h : float or None
        Effective clearance half-life of the region (h); needed for BED.
    kind : {"organ", "tumour"}
    mass_g : float or None
        Region mass (g), used to aggregate paired organs (left/right) by mass.
    source : str
        Where the dose came from (``"organ"`` MIRD, an engine name, or ``""`` when typed in).
    dose_gy : float or None
        The absorbed dose as the study's dose record states it (:func:`cycle_doses`): the cycle's delivered
        dose is then this number, not ``dose_gy_per_gbq`` × activity, so the planner shows the record's
        digits.
    bed : Bed or None
        The record's BED of ``dose_gy`` with its tissue parameters; the planner takes it when its own
        parameters are the same (else it computes the BED of ``dose_gy``).
    """

    name: str
    dose_gy_per_gbq: float
    dose_sigma_gy_per_gbq: float
    effective_half_life_h: float | None = None
    kind: RegionKind = "organ"
    mass_g: float | None = None
    source: str = ""
    dose_gy: float | None = None
    bed: Bed | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.dose_gy_per_gbq) or self.dose_gy_per_gbq < 0:
            raise InputError(
                f"dose_gy_per_gbq of region {self.name!r} must be finite and >= 0; got "
                f"{self.dose_gy_per_gbq}: fix the measured dose"
            )
        if not math.isfinite(self.dose_sigma_gy_per_gbq) or self.dose_sigma_gy_per_gbq < 0:
            raise InputError(
                f"dose_sigma_gy_per_gbq of region {self.name!r} must be finite and >= 0; got "
                f"{self.dose_sigma_gy_per_gbq}: give the 1-sigma uncertainty"
            )
        if self.effective_half_life_h is not None and not (
            math.isfinite(self.effective_half_life_h) and self.effective_half_life_h > 0
        ):
            raise InputError(
                f"effective_half_life_h of region {self.name!r} must be > 0; got "
                f"{self.effective_half_life_h}: fix or omit it"
            )


@dataclass(frozen=True)
class Cycle:
    """One administration: activity and the measured region doses."""

    administered_activity_mbq: float
    regions: tuple[RegionDose, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.administered_activity_mbq) and self.administered_activity_mbq > 0):
            raise InputError(
                f"administered_activity_mbq of cycle {self.label!r} must be > 0; got "
                f"{self.administered_activity_mbq}: give the administered activity in MBq"
            )
        names = [r.name.lower() for r in self.regions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(
                f"region {duplicates[0]!r} appears twice in cycle {self.label!r}: keep one entry per region"
            )

    def dose_gy(self, region: RegionDose) -> float:
        """Absorbed dose of ``region`` in this cycle (Gy): the dose record's, else Gy/GBq × activity."""
        if region.dose_gy is not None:
            return region.dose_gy
        return region.dose_gy_per_gbq * mbq_to_gbq(self.administered_activity_mbq)


@dataclass(frozen=True)
class SafetyInputs:
    """Laboratory values and patient data for the pre-cycle check (:mod:`theradose.safety`)."""

    labs: tuple[LabValue, ...]
    sex: Sex | None = None
    age_y: float | None = None
    weight_kg: float | None = None
    previously_reduced_for: tuple[str, ...] = ()
    rules_path: Path | None = None


@dataclass(frozen=True)
class TreatmentPlan:
    """Everything needed to plan the next cycle.

    Attributes
    ----------
    protocol : Protocol
    cycles : tuple of Cycle
        Cycles given so far, oldest first (may be empty before the first cycle).
    risk_factors : tuple of str
        Patient risk factors (matched against each organ's ``risk_factors``).
    confidence : float
        One-sided confidence (0.5 <= c < 1) that the projected cumulative dose/BED stays within limits.
    estimate : {"last", "inverse_variance"}
        How the next cycle's Gy/GBq is predicted (see :func:`theradose.planning.expected_gy_per_gbq`).
    response : str or None
        Latest response assessment (one of :data:`~theradose.planning.protocols.RESPONSE_STATUSES`).
    tumours : tuple of str
        Region names to treat as tumour in addition to regions with ``kind = "tumour"``.
    patient_id : str
    safety : SafetyInputs or None
        Laboratory values for the pre-cycle check; its decision joins the recommendation.
    """

    protocol: Protocol
    cycles: tuple[Cycle, ...]
    risk_factors: tuple[str, ...] = ()
    confidence: float = 0.95
    estimate: Estimate = "last"
    response: str | None = None
    tumours: tuple[str, ...] = ()
    patient_id: str = ""
    safety: SafetyInputs | None = None

    def __post_init__(self) -> None:
        if not (0.5 <= self.confidence < 1.0):
            raise InputError(
                f"confidence must be in [0.5, 1); got {self.confidence}: use e.g. 0.95 for 95 % one-sided"
            )
        if self.estimate not in ("last", "inverse_variance"):
            raise InputError(
                f"estimate must be 'last' or 'inverse_variance'; got {self.estimate!r}: pick one"
            )
        if self.response is not None and self.response not in RESPONSE_STATUSES:
            raise InputError(
                f"response must be one of {list(RESPONSE_STATUSES)}; got {self.response!r}: fix the status"
            )


def read_doses_json(
    path: str | Path, *, dose_source: str = "auto"
) -> tuple[float | None, tuple[RegionDose, ...]]:
    """Read a ``doses.json``: the hand-written shape or the pipeline's (both in the module docstring).

    Parameters
    ----------
    path : path
    dose_source : str
        For the pipeline's shape: ``"auto"``, ``"organ"`` or an engine name (module docstring).
        Ignored for the hand-written shape, which has one dose per region.

    Returns
    -------
    administered_activity_mbq : float or None
    regions : tuple of RegionDose
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"doses file {str(path)!r} does not exist: check the path") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"doses file {str(path)!r} is not readable JSON ({exc}): fix the file") from exc
    if not isinstance(data, dict):
        raise InputError(f"doses file {str(path)!r} must hold a JSON object: see the documented shape")
    return parse_doses(data, dose_source=dose_source, source=str(path))


def parse_doses(
    data: dict[str, Any], *, dose_source: str = "auto", source: str = "<doses>"
) -> tuple[float | None, tuple[RegionDose, ...]]:
    """Validate a parsed ``doses.json`` mapping (see :func:`read_doses_json`)."""
    from theradose.dosimetry.results import DOSES_FORMAT, StudyDoses

    if data.get("format") == DOSES_FORMAT or "administration" in data:
        return cycle_doses(StudyDoses.from_dict(data, source=source), dose_source=dose_source)
    activity = data.get("administered_activity_mbq")
    if activity is not None and (isinstance(activity, bool) or not isinstance(activity, (int, float))):
        raise InputError(
            f"administered_activity_mbq in {source!r} must be a number; got {activity!r}: fix it"
        )
    regions_raw = data.get("regions")
    if not isinstance(regions_raw, list) or not regions_raw:
        raise InputError(f"regions in {source!r} must be a non-empty list: add the region doses")
    activity_mbq = None if activity is None else float(activity)
    regions = tuple(
        _region(entry, activity_mbq, f"{source}:regions[{i}]") for i, entry in enumerate(regions_raw)
    )
    return activity_mbq, regions


def cycle_doses(doses: StudyDoses, *, dose_source: str = "auto") -> tuple[float, tuple[RegionDose, ...]]:
    """The administered activity and the region doses of a dose record, for planning.

    ``dose_source``: ``"auto"`` (the study's reference dose, :attr:`StudyDoses.reference_dose`),
    ``"organ"`` or one of the study's engines. Every region carries the source of its dose
    (:attr:`RegionDose.source`); regions without a dose of that source (e.g. no voxels) are left out.
    """
    from theradose.dosimetry.results import ORGAN_SOURCE

    chosen = doses.reference_dose if dose_source == "auto" else dose_source
    if chosen not in (ORGAN_SOURCE, *doses.engines):
        raise InputError(
            f"dose_source {dose_source!r} is not in this study: use 'auto' (its reference dose, "
            f"{doses.reference_dose}), {ORGAN_SOURCE!r} or one of its engines {list(doses.engines)}"
        )
    regions = []
    for row in doses.rows(source=chosen):
        if row.dose_gy_per_gbq is None:
            continue  # no dose for this region (e.g. no voxels): nothing to plan with
        if row.dose_sigma_gy_per_gbq is None:
            raise InputError(
                f"region {row.name!r} has no uncertainty for its {chosen} dose: the plan needs 1 sigma; "
                "choose another dose_source"
            )
        regions.append(
            RegionDose(
                name=row.name,
                dose_gy_per_gbq=row.dose_gy_per_gbq,
                dose_sigma_gy_per_gbq=row.dose_sigma_gy_per_gbq,
                effective_half_life_h=row.effective_half_life_h,
                kind="tumour" if row.kind == "tumour" else "organ",
                mass_g=row.mass_g,
                source=row.source,
                dose_gy=row.dose_gy,
                bed=doses.region(row.name).bed if row.bed_gy is not None else None,
            )
        )
    return doses.administration.activity_mbq, tuple(regions)


def _number(entry: dict[str, Any], key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{key} at {where} must be a number; got {value!r}: fix the value")
    return float(value)


def _region(entry: Any, activity_mbq: float | None, where: str) -> RegionDose:
    if not isinstance(entry, dict):
        raise InputError(f"region at {where} must be a table/object: give name and doses")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"name at {where} must be a non-empty string; got {name!r}: name the region")
    kind = entry.get("kind", "organ")
    if kind not in ("organ", "tumour"):
        raise InputError(f"kind at {where} must be 'organ' or 'tumour'; got {kind!r}: fix it")
    per_gbq = _number(entry, "dose_gy_per_gbq", where)
    dose = _number(entry, "dose_gy", where)
    sigma_per_gbq = _number(entry, "dose_sigma_gy_per_gbq", where)
    sigma = _number(entry, "dose_sigma_gy", where)
    activity_gbq = None if activity_mbq is None else mbq_to_gbq(activity_mbq)
    if per_gbq is None:
        if dose is None:
            raise InputError(f"region {name!r} at {where} needs dose_gy_per_gbq or dose_gy: add one")
        if activity_gbq is None:
            raise InputError(
                f"region {name!r} at {where} gives dose_gy but no administered_activity_mbq is known: "
                "give dose_gy_per_gbq or the administered activity"
            )
        per_gbq = dose / activity_gbq
    elif dose is not None and activity_gbq is not None:
        expected = per_gbq * activity_gbq
        if abs(dose - expected) > _CONSISTENCY_TOLERANCE * max(abs(expected), 1e-12):
            raise InputError(
                f"region {name!r} at {where}: dose_gy {dose} disagrees with dose_gy_per_gbq {per_gbq} x "
                f"{gbq_to_mbq(activity_gbq)} MBq = {expected:.4g} Gy: give one of them"
            )
    if sigma_per_gbq is None:
        if sigma is None:
            raise InputError(
                f"region {name!r} at {where} needs dose_sigma_gy_per_gbq or dose_sigma_gy (1 sigma): add one"
            )
        if activity_gbq is None:
            raise InputError(
                f"region {name!r} at {where} gives dose_sigma_gy but no administered activity is known: "
                "give dose_sigma_gy_per_gbq"
            )
        sigma_per_gbq = sigma / activity_gbq
    half_life = _number(entry, "effective_half_life_h", where)
    mass_g = _number(entry, "mass_g", where)
    source = entry.get("source", "")
    return RegionDose(
        name=name,
        dose_gy_per_gbq=per_gbq,
        dose_sigma_gy_per_gbq=sigma_per_gbq,
        effective_half_life_h=half_life,
        kind=kind,
        mass_g=mass_g,
        source=str(source),
    )


_PLAN_KEYS = {"protocol", "confidence", "estimate", "patient", "response", "tumours", "cycles", "safety"}
_SAFETY_KEYS = {"labs", "sex", "age_y", "weight_kg", "previously_reduced_for", "rules"}


def load_plan(path: str | Path) -> TreatmentPlan:
    """Read a plan file (PLAN.toml).

    Format::

        protocol = "dotatate"          # shipped name, or a protocol TOML path (relative to this file)
        confidence = 0.95              # optional, one-sided (default 0.95)
        estimate = "last"              # optional: "last" or "inverse_variance"
        tumours = ["liver_met_1"]      # optional: region names that are tumours

        [patient]
        id = "anon-0042"               # optional
        risk_factors = ["hypertension"]

        [response]                     # optional
        status = "partial_response"    # or complete_response, stable_disease, progressive_disease

        [[cycles]]
        label = "C1"                       # optional
        administered_activity_mbq = 7400
        doses_json = "cycle1/doses.json"   # path relative to this file, OR typed-in regions:
        dose_source = "auto"               # optional, for a pipeline doses.json: "auto", "organ" or
                                           # an engine name (module docstring)

        [[cycles]]
        administered_activity_mbq = 7350
        regions = [
          { name = "kidneys", dose_gy_per_gbq = 0.62, dose_sigma_gy_per_gbq = 0.06,
            effective_half_life_h = 50 },
        ]

    If a cycle gives both ``administered_activity_mbq`` and a ``doses_json`` that states one, they must
    agree within 1 %; either may be omitted.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"plan file {str(path)!r} does not exist: check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"plan file {str(path)!r} cannot be read ({exc}): check the file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"plan file {str(path)!r} is not valid TOML ({exc}): fix the syntax") from exc
    return parse_plan(data, base_dir=path.parent, source=str(path))


def parse_plan(data: dict[str, Any], *, base_dir: Path, source: str = "<plan>") -> TreatmentPlan:
    """Validate a parsed plan mapping (see :func:`load_plan`); relative paths resolve from ``base_dir``."""
    unknown = sorted(set(data) - _PLAN_KEYS)
    if unknown:
        raise InputError(f"{unknown[0]} is not a plan key in {source}: use one of {sorted(_PLAN_KEYS)}")
    protocol_ref = data.get("protocol")
    if not isinstance(protocol_ref, str) or not protocol_ref:
        raise InputError(
            f'protocol must be a shipped name or a file path in {source}: e.g. protocol = "psma"'
        )
    candidate = base_dir / protocol_ref
    protocol: Protocol = load_protocol(candidate if candidate.is_file() else protocol_ref)

    patient = data.get("patient", {})
    if not isinstance(patient, dict):
        raise InputError(f"patient must be a table in {source}: write [patient]")
    risk_factors = patient.get("risk_factors", [])
    if not isinstance(risk_factors, list) or not all(isinstance(r, str) for r in risk_factors):
        raise InputError(f'patient.risk_factors must be a list of strings in {source}: e.g. ["diabetes"]')
    response_table = data.get("response", {})
    if not isinstance(response_table, dict):
        raise InputError(f'response must be a table in {source}: write [response] status = "..."')
    response = response_table.get("status")
    tumours = data.get("tumours", [])
    if not isinstance(tumours, list) or not all(isinstance(t, str) for t in tumours):
        raise InputError(f'tumours must be a list of region names in {source}: e.g. ["lesion_1"]')
    confidence = data.get("confidence", 0.95)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
        raise InputError(f"confidence must be a number in {source}; got {confidence!r}: e.g. 0.95")
    cycles_raw = data.get("cycles", [])
    if not isinstance(cycles_raw, list):
        raise InputError(f"cycles must be an array of tables in {source}: write [[cycles]]")
    cycles = tuple(_cycle(entry, i, base_dir, source) for i, entry in enumerate(cycles_raw))
    return TreatmentPlan(
        protocol=protocol,
        cycles=cycles,
        risk_factors=tuple(risk_factors),
        confidence=float(confidence),
        estimate=data.get("estimate", "last"),
        response=response,
        tumours=tuple(tumours),
        patient_id=str(patient.get("id", "")),
        safety=_safety(data.get("safety"), base_dir, source),
    )


def _safety(entry: Any, base_dir: Path, source: str) -> SafetyInputs | None:
    """The optional ``[safety]`` table: laboratory CSV and patient data for the pre-cycle check."""
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise InputError(f'safety must be a table in {source}: write [safety] labs = "labs.csv"')
    unknown = sorted(set(entry) - _SAFETY_KEYS)
    if unknown:
        raise InputError(f"{unknown[0]} is not a safety key in {source}: use one of {sorted(_SAFETY_KEYS)}")
    labs_ref = entry.get("labs")
    if not isinstance(labs_ref, str):
        raise InputError(
            f'safety.labs must be the path of a laboratory CSV in {source}: e.g. labs = "labs.csv"'
        )
    from theradose.safety.records import read_labs_csv

    labs, _cycles = read_labs_csv(base_dir / labs_ref)
    sex = entry.get("sex")
    if sex is not None and sex not in ("male", "female"):
        raise InputError(f'safety.sex must be "male" or "female" in {source}; got {sex!r}')
    numbers = {}
    for key in ("age_y", "weight_kg"):
        value = entry.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"safety.{key} must be a number in {source}; got {value!r}")
        numbers[key] = None if value is None else float(value)
    reduced = entry.get("previously_reduced_for", [])
    if not isinstance(reduced, list) or not all(isinstance(r, str) for r in reduced):
        raise InputError(f"safety.previously_reduced_for must be a list of rule ids in {source}")
    rules = entry.get("rules")
    return SafetyInputs(
        labs=tuple(labs),
        sex=sex,
        age_y=numbers["age_y"],
        weight_kg=numbers["weight_kg"],
        previously_reduced_for=tuple(reduced),
        rules_path=None if rules is None else base_dir / str(rules),
    )


def _cycle(entry: Any, index: int, base_dir: Path, source: str) -> Cycle:
    where = f"cycles[{index}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where} must be a table in {source}: write [[cycles]]")
    unknown = sorted(
        set(entry) - {"administered_activity_mbq", "doses_json", "dose_source", "regions", "label"}
    )
    if unknown:
        raise InputError(
            f"{where}.{unknown[0]} is not a cycle key in {source}: use administered_activity_mbq, "
            "doses_json or regions (and optionally label, dose_source)"
        )
    activity = entry.get("administered_activity_mbq")
    if activity is not None and (isinstance(activity, bool) or not isinstance(activity, (int, float))):
        raise InputError(f"{where}.administered_activity_mbq must be a number in {source}; got {activity!r}")
    activity_mbq = None if activity is None else float(activity)
    if "doses_json" in entry and "regions" in entry:
        raise InputError(f"{where} gives both doses_json and regions in {source}: keep one")
    if "doses_json" in entry:
        json_path = base_dir / str(entry["doses_json"])
        dose_source = entry.get("dose_source", "auto")
        if not isinstance(dose_source, str):
            raise InputError(f"{where}.dose_source must be a string in {source}; got {dose_source!r}")
        file_activity, regions = read_doses_json(json_path, dose_source=dose_source)
        if activity_mbq is None:
            activity_mbq = file_activity
        elif (
            file_activity is not None
            and abs(file_activity - activity_mbq) > _CONSISTENCY_TOLERANCE * activity_mbq
        ):
            raise InputError(
                f"{where}.administered_activity_mbq {activity_mbq} disagrees with {file_activity} in "
                f"{str(json_path)!r}: correct one of them"
            )
    elif "regions" in entry:
        raw = entry["regions"]
        if not isinstance(raw, list):
            raise InputError(f"{where}.regions must be an array of tables in {source}")
        regions = tuple(_region(r, activity_mbq, f"{source}:{where}.regions[{j}]") for j, r in enumerate(raw))
    else:
        raise InputError(f"{where} needs doses_json or regions in {source}: add the measured doses")
    if activity_mbq is None:
        raise InputError(f"{where}.administered_activity_mbq is missing in {source}: give it in MBq")
    return Cycle(
        administered_activity_mbq=activity_mbq, regions=regions, label=str(entry.get("label", index + 1))
    )
