"""Lesion scores and trial eligibility from a lesion table.

Every decision carries the category and the rule that decided it, in words, with the citation key of
the rule table (``src/theradose/data/reading/*.json``; see its README for sources and editions).

Frameworks
----------
- PSMA-RADS 1.0 (Rowe et al., J Nucl Med 2018;59:479) and SSTR-RADS 1.0 (Werner et al., J Nucl Med
  2018;59:1085): visual categories from the reader's findings (uptake level, site typicality, anatomic
  correlate, benignity, tissue).
- Krenning score 1–4 (Krenning et al. 1993; Kwekkeboom & Krenning 2002): lesion uptake vs liver and
  spleen.
- miPSMA expression score 0–3 (PROMISE V2, Seifert et al. 2023): lesion uptake vs blood pool, liver
  (spleen for [18F]PSMA-1007) and parotid.

Eligibility
-----------
- VISION (Sartor et al., NEJM 2021;385:1091): ≥ 1 PSMA-positive lesion (uptake > liver) and no
  PSMA-negative lesion at or above the size limits (node short axis ≥ 2.5 cm, solid organ ≥ 1.0 cm,
  bone soft-tissue component ≥ 1.0 cm).
- TheraP (Hofman et al., Lancet 2021;397:797): SUVmax ≥ 20 at one site, SUVmax > 10 at all measurable
  sites, no FDG-positive disease with low PSMA expression.
- NETTER-1 (Strosberg et al., NEJM 2017;376:125): all target lesions Krenning ≥ 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from theradose.errors import DataError, InputError
from theradose.reading.lesions import Lesion, LesionTable

Framework = Literal["psma-rads", "sstr-rads", "krenning", "mipsma"]
Trial = Literal["vision", "therap", "netter1"]

_RADS_FILES = {"psma-rads": "psma_rads_1_0.json", "sstr-rads": "sstr_rads_1_0.json"}


@dataclass(frozen=True)
class Decision:
    """The category of one lesion and the rule that decided it."""

    lesion_id: str
    framework: str
    category: str
    rule: str
    citation_key: str
    values: dict[str, float | str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "lesion_id": self.lesion_id,
            "framework": self.framework,
            "category": self.category,
            "rule": self.rule,
            "citation_key": self.citation_key,
            "values": dict(self.values),
        }


@dataclass(frozen=True)
class Eligibility:
    """A patient-level eligibility decision with every reason that contributed to it."""

    trial: str
    eligible: bool
    reasons: tuple[str, ...]
    citation_key: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "trial": self.trial,
            "eligible": self.eligible,
            "reasons": list(self.reasons),
            "citation_key": self.citation_key,
        }


@cache
def load_table(name: str) -> dict[str, Any]:
    """Load rule table ``name`` (a file in ``theradose/data/reading``)."""
    try:
        text = resources.files("theradose").joinpath("data", "reading", name).read_text(encoding="utf-8")
        data: dict[str, Any] = json.loads(text)
    except (FileNotFoundError, json.JSONDecodeError, ModuleNotFoundError) as exc:
        raise DataError(f"rule table {name!r} is missing or malformed ({exc}): reinstall theradose") from None
    return data


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# ------------------------------------------------------------------------------------------ RADS


def rads_category(lesion: Lesion, *, framework: Literal["psma-rads", "sstr-rads"]) -> Decision:
    """PSMA-RADS 1.0 or SSTR-RADS 1.0 category of one lesion.

    The rules of the table are tried in order; the first whose conditions all hold decides.
    ``benign`` absent counts as not benign; ``tissue`` absent counts as not bone.

    Raises
    ------
    InputError
        If ``uptake`` (or ``site_typical`` / ``anatomic_correlate`` where a rule needs them) is missing,
        or the findings describe no lesion (no uptake, no anatomic finding, not benign).
    """
    table = load_table(_RADS_FILES[framework])
    if lesion.uptake is None:
        raise InputError(
            f"lesion {lesion.lesion_id!r} has no uptake: {table['framework']} needs the reader's uptake "
            "level (none, equivocal or intense) in the uptake column"
        )
    if lesion.uptake != "none" and not lesion.benign and lesion.site_typical is None:
        raise InputError(
            f"lesion {lesion.lesion_id!r} has no site_typical: {table['framework']} needs yes/no for a "
            f"lesion with {lesion.uptake} uptake"
        )
    if lesion.uptake == "intense" and lesion.site_typical and lesion.anatomic_correlate is None:
        raise InputError(
            f"lesion {lesion.lesion_id!r} has no anatomic_correlate: {table['framework']} 4 vs 5 needs yes/no"
        )
    features: dict[str, object] = {
        "benign": bool(lesion.benign),
        "uptake": lesion.uptake,
        "site_typical": lesion.site_typical,
        "anatomic_correlate": lesion.anatomic_correlate,
        "tissue": lesion.tissue,
    }
    for rule in table["rules"]:
        conditions: dict[str, list[object]] = rule["when"]
        if all(features[key] in allowed for key, allowed in conditions.items()):
            return Decision(
                lesion.lesion_id,
                f"{table['framework']} {table['framework_version']}",
                rule["category"],
                f"{rule['category']}: {rule['text']} [{table['citation_key']}]",
                table["citation_key"],
                {"uptake": lesion.uptake},
            )
    raise InputError(
        f"lesion {lesion.lesion_id!r} has no uptake, no anatomic correlate and is not benign: there is no "
        f"finding for {table['framework']} to categorise; remove the row or correct it"
    )


# ------------------------------------------------------------------------------------ quantitative


def _lesion_value(lesion: Lesion, *, framework: str) -> float:
    if lesion.suv_max is None:
        raise InputError(
            f"lesion {lesion.lesion_id!r} has no suv_max: {framework} compares it with references"
        )
    return lesion.suv_max


def krenning_score(lesion: Lesion, table: LesionTable, *, equal_tolerance: float = 0.0) -> Decision:
    """Krenning grade 1–4 of one lesion: SUVmax vs liver and spleen SUVmean.

    Parameters
    ----------
    lesion : Lesion
        Needs ``suv_max``.
    table : LesionTable
        Needs reference regions ``liver`` and ``spleen`` (``suv_mean``).
    equal_tolerance : float
        Fraction of the liver value within which the lesion counts as "equal to liver" (grade 2).
        Default 0 (strict equality); visual reading corresponds to a reader-chosen band.
    """
    if not 0.0 <= equal_tolerance < 1.0:
        raise InputError(f"equal_tolerance must be in [0, 1); got {equal_tolerance}")
    rules = load_table("krenning.json")
    key = rules["citation_key"]
    value = _lesion_value(lesion, framework="Krenning score")
    liver = table.reference_suv("liver", needed_for="Krenning score")
    spleen = table.reference_suv("spleen", needed_for="Krenning score")
    grades = {g["category"]: g["text"] for g in rules["grades"]}
    values: dict[str, float | str | None] = {
        "suv_max": value,
        "liver_suv_mean": liver,
        "spleen_suv_mean": spleen,
    }
    if value > spleen and value > liver:
        grade, why = "4", f"SUVmax {_fmt(value)} > spleen {_fmt(spleen)}"
    elif abs(value - liver) <= equal_tolerance * liver:
        grade, why = "2", f"SUVmax {_fmt(value)} equal to liver {_fmt(liver)} (tolerance {equal_tolerance:g})"
    elif value > liver:
        grade, why = "3", f"liver {_fmt(liver)} < SUVmax {_fmt(value)} <= spleen {_fmt(spleen)}"
    else:
        grade, why = "1", f"SUVmax {_fmt(value)} < liver {_fmt(liver)}"
    return Decision(
        lesion.lesion_id,
        "Krenning score",
        grade,
        f"Krenning {grade}: {grades[grade]} ({why}) [{key}]",
        key,
        values,
    )


def mipsma_score(lesion: Lesion, table: LesionTable, *, tracer: str = "") -> Decision:
    """PROMISE V2 miPSMA expression score 0–3: SUVmax vs blood pool, liver (or spleen) and parotid.

    Parameters
    ----------
    lesion : Lesion
        Needs ``suv_max``.
    table : LesionTable
        Needs reference regions ``blood_pool``, ``liver`` (``spleen`` for [18F]PSMA-1007) and ``parotid``.
    tracer : str
        PSMA ligand; ``PSMA-1007`` / ``18F-PSMA-1007`` switch the middle reference to the spleen.
    """
    rules = load_table("mipsma_promise_v2.json")
    key = rules["citation_key"]
    substitute = rules["liver_substitute"]
    middle = (
        substitute["reference"]
        if tracer.strip().upper() in {t.upper() for t in substitute["tracers"]}
        else "liver"
    )
    value = _lesion_value(lesion, framework="miPSMA score")
    blood = table.reference_suv("blood_pool", needed_for="miPSMA score")
    mid = table.reference_suv(middle, needed_for="miPSMA score")
    parotid = table.reference_suv("parotid", needed_for="miPSMA score")
    texts = {s["category"]: s["text"] for s in rules["scores"]}
    if value >= parotid:
        score, why = "3", f"SUVmax {_fmt(value)} >= parotid {_fmt(parotid)}"
    elif value >= mid:
        score, why = "2", f"{middle} {_fmt(mid)} <= SUVmax {_fmt(value)} < parotid {_fmt(parotid)}"
    elif value >= blood:
        score, why = "1", f"blood pool {_fmt(blood)} <= SUVmax {_fmt(value)} < {middle} {_fmt(mid)}"
    else:
        score, why = "0", f"SUVmax {_fmt(value)} < blood pool {_fmt(blood)}"
    text = texts[score]
    if middle != "liver":
        text = text.replace("liver", f"{middle} (replaces liver for {tracer})")
    return Decision(
        lesion.lesion_id,
        "miPSMA (PROMISE V2)",
        score,
        f"miPSMA {score}: {text} ({why}) [{key}]",
        key,
        {
            "suv_max": value,
            "blood_pool_suv_mean": blood,
            f"{middle}_suv_mean": mid,
            "parotid_suv_mean": parotid,
        },
    )


def score_lesions(
    table: LesionTable, *, framework: Framework, equal_tolerance: float = 0.0, tracer: str = ""
) -> list[Decision]:
    """Score every lesion of ``table`` with ``framework``."""
    if not table.lesions:
        raise InputError(f"{table.source or 'the lesion table'} has no lesion rows: nothing to score")
    if framework in ("psma-rads", "sstr-rads"):
        return [rads_category(lesion, framework=framework) for lesion in table.lesions]
    if framework == "krenning":
        return [krenning_score(lesion, table, equal_tolerance=equal_tolerance) for lesion in table.lesions]
    if framework == "mipsma":
        return [mipsma_score(lesion, table, tracer=tracer) for lesion in table.lesions]
    raise InputError(f"framework must be psma-rads, sstr-rads, krenning or mipsma; got {framework!r}")


# ---------------------------------------------------------------------------------- eligibility


def _vision(table: LesionTable) -> Eligibility:
    trial = load_table("eligibility.json")["trials"]["vision"]
    key = trial["citation_key"]
    limits = trial["negative_size_limits_mm"]
    liver = table.reference_suv("liver", needed_for="VISION (PSMA-positive = uptake > liver)")
    reasons: list[str] = []
    positive = [les for les in table.lesions if _lesion_value(les, framework="VISION") > liver]
    if positive:
        reasons.append(
            f"{len(positive)} PSMA-positive lesion(s) with SUVmax > liver {_fmt(liver)} "
            f"({', '.join(les.lesion_id for les in positive)}) [{key}]"
        )
    else:
        reasons.append(f"no PSMA-positive lesion: every SUVmax <= liver {_fmt(liver)} [{key}]")
    excluded = False
    for les in table.lesions:
        if les.suv_max is not None and les.suv_max > liver:
            continue
        limit_hit = _vision_size_hit(les, limits)
        if limit_hit is not None:
            excluded = True
            reasons.append(
                f"PSMA-negative lesion {les.lesion_id} (SUVmax {_fmt(les.suv_max or 0.0)} <= liver "
                f"{_fmt(liver)}) with {limit_hit}: exclusion [{key}]"
            )
    eligible = bool(positive) and not excluded
    if eligible:
        reasons.append(f"no PSMA-negative lesion meets a VISION size criterion [{key}]")
    return Eligibility("vision", eligible, tuple(reasons), key)


def _vision_size_hit(les: Lesion, limits: dict[str, float]) -> str | None:
    if les.tissue == "lymph_node":
        if les.short_axis_mm is None:
            raise InputError(f"lesion {les.lesion_id!r} (lymph node) has no short_axis_mm: VISION needs it")
        if les.short_axis_mm >= limits["lymph_node_short_axis"]:
            return f"lymph node short axis {les.short_axis_mm:g} mm >= {limits['lymph_node_short_axis']:g} mm"
    elif les.tissue in ("solid_organ", "soft_tissue", "prostate"):
        if les.short_axis_mm is None:
            raise InputError(f"lesion {les.lesion_id!r} ({les.tissue}) has no short_axis_mm: VISION needs it")
        if les.short_axis_mm >= limits["solid_organ_short_axis"]:
            return (
                f"solid-organ short axis {les.short_axis_mm:g} mm >= {limits['solid_organ_short_axis']:g} mm"
            )
    elif les.tissue == "bone":
        soft = les.soft_tissue_short_axis_mm
        if soft is not None and soft >= limits["bone_soft_tissue_short_axis"]:
            return (
                f"bone lesion soft-tissue component {soft:g} mm >= "
                f"{limits['bone_soft_tissue_short_axis']:g} mm"
            )
    else:
        raise InputError(
            f"lesion {les.lesion_id!r} has tissue {les.tissue or '(empty)'}: VISION needs lymph_node, "
            "solid_organ, soft_tissue, prostate or bone to apply its size limits"
        )
    return None


def recist_measurable(les: Lesion, *, node_short_axis_mm: float, other_long_axis_mm: float) -> bool:
    """RECIST 1.1 measurability (Eisenhauer 2009): node short axis ≥ 15 mm, other longest diameter ≥ 10 mm.

    The table's ``measurable`` column, when given, overrides the rule.
    """
    if les.measurable is not None:
        return les.measurable
    if les.tissue == "lymph_node":
        return les.short_axis_mm is not None and les.short_axis_mm >= node_short_axis_mm
    return les.long_axis_mm is not None and les.long_axis_mm >= other_long_axis_mm


def _therap(table: LesionTable) -> Eligibility:
    trial = load_table("eligibility.json")["trials"]["therap"]
    key = trial["citation_key"]
    one_site = float(trial["suv_max_one_site_min"])
    floor = float(trial["suv_max_measurable_sites_greater_than"])
    sizes = trial["measurable_mm"]
    reasons: list[str] = []
    values = [(les, _lesion_value(les, framework="TheraP")) for les in table.lesions]
    hottest = max(values, key=lambda item: item[1])
    ok_one = hottest[1] >= one_site
    reasons.append(
        f"highest SUVmax {_fmt(hottest[1])} ({hottest[0].lesion_id}) "
        f"{'>=' if ok_one else '<'} {one_site:g} [{key}]"
    )
    low_measurable = [
        (les, v)
        for les, v in values
        if recist_measurable(
            les,
            node_short_axis_mm=sizes["lymph_node_short_axis"],
            other_long_axis_mm=sizes["other_long_axis"],
        )
        and not v > floor
    ]
    for les, v in low_measurable:
        reasons.append(
            f"measurable lesion {les.lesion_id} SUVmax {_fmt(v)} not > {floor:g}: exclusion [{key}]"
        )
    discordant = [(les, v) for les, v in values if les.fdg_positive and not v > floor]
    for les, v in discordant:
        reasons.append(
            f"FDG-positive lesion {les.lesion_id} with SUVmax {_fmt(v)} <= {floor:g} on PSMA PET "
            f"(FDG/PSMA discordance): exclusion [{key}]"
        )
    eligible = ok_one and not low_measurable and not discordant
    if eligible:
        reasons.append(f"all measurable sites SUVmax > {floor:g}; no FDG-positive/PSMA-low disease [{key}]")
    return Eligibility("therap", eligible, tuple(reasons), key)


def _netter1(table: LesionTable, *, equal_tolerance: float) -> Eligibility:
    trial = load_table("eligibility.json")["trials"]["netter1"]
    key = trial["citation_key"]
    minimum = int(trial["krenning_min"])
    targets = [les for les in table.lesions if les.target] or list(table.lesions)
    reasons: list[str] = []
    failing = []
    for les in targets:
        decision = krenning_score(les, table, equal_tolerance=equal_tolerance)
        if int(decision.category) < minimum:
            failing.append(les.lesion_id)
            reasons.append(
                f"target lesion {les.lesion_id} Krenning {decision.category} < {minimum}: "
                f"{decision.rule} [{key}]"
            )
    eligible = not failing
    if eligible:
        reasons.append(f"all {len(targets)} target lesion(s) Krenning >= {minimum} (uptake >= liver) [{key}]")
    return Eligibility("netter1", eligible, tuple(reasons), key)


def eligibility(table: LesionTable, *, trial: Trial, equal_tolerance: float = 0.0) -> Eligibility:
    """PET eligibility of the patient described by ``table`` for ``trial``.

    Parameters
    ----------
    table : LesionTable
        Lesions with ``suv_max`` (and the size, tissue and FDG columns the trial needs) and reference rows.
    trial : {"vision", "therap", "netter1"}
    equal_tolerance : float
        NETTER-1 only: tolerance of the Krenning "equal to liver" grade (see :func:`krenning_score`).
    """
    if not table.lesions:
        raise InputError(
            f"{table.source or 'the lesion table'} has no lesion rows: eligibility needs lesions"
        )
    if trial == "vision":
        return _vision(table)
    if trial == "therap":
        return _therap(table)
    if trial == "netter1":
        return _netter1(table, equal_tolerance=equal_tolerance)
    raise InputError(f"trial must be vision, therap or netter1; got {trial!r}")
