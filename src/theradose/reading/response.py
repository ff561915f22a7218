"""Response between a baseline and a follow-up lesion table.

Criteria (thresholds in ``src/theradose/data/reading/response.json``):

- RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228): sum of target-lesion diameters (short axis
  for lymph nodes, longest diameter otherwise); PR: ≥ 30 % decrease from baseline; PD: ≥ 20 % and
  ≥ 5 mm increase from the nadir, or a new lesion; CR: all targets gone and every target node < 10 mm.
- PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50:122S): SULpeak of the hottest lesion of each scan (not
  necessarily the same lesion); PMR: ≥ 30 % and ≥ 0.8 SUL decrease; PMD: > 30 % and > 0.8 SUL increase,
  or a new lesion; CMR: every lesion below mean liver SUL. The secondary PMD rule (> 75 % increase of
  total lesion glycolysis) and visual progression are not assessed.
- RECIP 1.0 (Gafita et al., J Nucl Med 2022;63:1651): PSMA-VOL (total PSMA-positive tumour volume) and
  new lesions; CR: no PSMA uptake; PR: ≥ 30 % decrease without new lesions; PD: ≥ 20 % increase with
  new lesions; SD otherwise.
- PSMA PET progression, PPP (Fanti et al., J Nucl Med 2020;61:678): ≥ 2 new lesions; or 1 new lesion,
  or ≥ 30 % increase in size or uptake of a lesion, with consistent clinical or laboratory data.

Lesions are matched by ``lesion_id`` when the two tables share identifiers, otherwise by position:
nearest centroid within ``max_distance_mm`` (an optimal one-to-one assignment). Follow-up lesions left
unmatched are new lesions; baseline lesions left unmatched have disappeared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from theradose.errors import InputError
from theradose.reading.criteria import load_table, recist_measurable
from theradose.reading.lesions import Lesion, LesionTable

Criteria = Literal["recist", "percist", "recip", "ppp"]
MatchBy = Literal["auto", "id", "position"]

#: Default gate for position matching (mm). A choice of this package, not a published value: about the
#: size of a lymph-node station; set ``max_distance_mm`` to suit registration quality.
DEFAULT_MAX_DISTANCE_MM = 20.0

_REL_TOL = 1e-9


def _at_least(value: float, threshold: float) -> bool:
    """``value >= threshold`` tolerant to floating-point rounding at the boundary."""
    return value >= threshold or math.isclose(value, threshold, rel_tol=_REL_TOL, abs_tol=1e-12)


def _more_than(value: float, threshold: float) -> bool:
    """``value > threshold`` that does not count rounding noise at the boundary as 'more'."""
    return value > threshold and not math.isclose(value, threshold, rel_tol=_REL_TOL, abs_tol=1e-12)


@dataclass(frozen=True)
class LesionMatch:
    """Pairs of (baseline id, follow-up id), new follow-up lesions and disappeared baseline lesions."""

    pairs: tuple[tuple[str, str], ...]
    new: tuple[str, ...]
    disappeared: tuple[str, ...]
    method: str
    distances_mm: tuple[float | None, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "method": self.method,
            "pairs": [
                {"baseline": b, "followup": f, "distance_mm": d}
                for (b, f), d in zip(self.pairs, self.distances_mm or [None] * len(self.pairs), strict=True)
            ],
            "new": list(self.new),
            "disappeared": list(self.disappeared),
        }


@dataclass(frozen=True)
class ResponseResult:
    """Overall response category, the rule that decided it and the numbers behind it."""

    criteria: str
    category: str
    rule: str
    citation_key: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "criteria": self.criteria,
            "category": self.category,
            "rule": self.rule,
            "citation_key": self.citation_key,
            "details": self.details,
        }


def match_lesions(
    baseline: LesionTable,
    followup: LesionTable,
    *,
    by: MatchBy = "auto",
    max_distance_mm: float = DEFAULT_MAX_DISTANCE_MM,
) -> LesionMatch:
    """Match follow-up lesions to baseline lesions.

    Parameters
    ----------
    baseline, followup : LesionTable
    by : {"auto", "id", "position"}
        ``auto`` matches by ``lesion_id`` when the tables share at least one identifier, else by position.
    max_distance_mm : float
        Position matching: pairs farther apart than this stay unmatched.

    Returns
    -------
    LesionMatch
    """
    if not max_distance_mm > 0:
        raise InputError(f"max_distance_mm must be > 0; got {max_distance_mm}")
    base_ids = [les.lesion_id for les in baseline.lesions]
    fu_ids = [les.lesion_id for les in followup.lesions]
    shared = set(base_ids) & set(fu_ids)
    if by == "id" or (by == "auto" and shared):
        id_pairs = tuple((i, i) for i in base_ids if i in shared)
        return LesionMatch(
            pairs=id_pairs,
            new=tuple(i for i in fu_ids if i not in shared),
            disappeared=tuple(i for i in base_ids if i not in shared),
            method="lesion_id",
            distances_mm=tuple(None for _ in id_pairs),
        )
    if not baseline.lesions or not followup.lesions:
        return LesionMatch((), tuple(fu_ids), tuple(base_ids), "none (one table has no lesion)")
    for name, table in (("baseline", baseline), ("follow-up", followup)):
        for les in table.lesions:
            if les.centroid_mm is None:
                raise InputError(
                    f"{name} lesion {les.lesion_id!r} has no x_mm/y_mm/z_mm: matching by position needs "
                    "centroids (or give the same lesion_id in both tables)"
                )
    from scipy.optimize import linear_sum_assignment

    a = np.array([les.centroid_mm for les in baseline.lesions], dtype=float)
    b = np.array([les.centroid_mm for les in followup.lesions], dtype=float)
    distance = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    cost = np.where(distance <= max_distance_mm, distance, 1.0e6 + distance)
    rows, cols = linear_sum_assignment(cost)
    pairs: list[tuple[str, str]] = []
    dists: list[float | None] = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if distance[r, c] <= max_distance_mm:
            pairs.append((base_ids[r], fu_ids[c]))
            dists.append(float(distance[r, c]))
    matched_b = {p[0] for p in pairs}
    matched_f = {p[1] for p in pairs}
    return LesionMatch(
        pairs=tuple(pairs),
        new=tuple(i for i in fu_ids if i not in matched_f),
        disappeared=tuple(i for i in base_ids if i not in matched_b),
        method=f"position (nearest centroid, <= {max_distance_mm:g} mm)",
        distances_mm=tuple(dists),
    )


def _by_id(table: LesionTable) -> dict[str, Lesion]:
    return {les.lesion_id: les for les in table.lesions}


# --------------------------------------------------------------------------------------- RECIST 1.1


def _diameter_mm(les: Lesion, *, where: str) -> float:
    value = les.short_axis_mm if les.tissue == "lymph_node" else les.long_axis_mm
    column = "short_axis_mm" if les.tissue == "lymph_node" else "long_axis_mm"
    if value is None:
        raise InputError(f"{where} lesion {les.lesion_id!r} has no {column}: RECIST 1.1 needs it")
    return value


def select_recist_targets(table: LesionTable) -> list[Lesion]:
    """RECIST 1.1 target lesions of a baseline table.

    The ``target`` column decides when any row sets it; otherwise the largest measurable lesions are taken,
    at most 5 in total and 2 per organ (Eisenhauer 2009, section 4.1; nodes by short axis ≥ 15 mm, other
    lesions by longest diameter ≥ 10 mm).
    """
    rules = load_table("response.json")["criteria"]["recist"]
    if any(les.target is not None for les in table.lesions):
        return [les for les in table.lesions if les.target]
    measurable = [
        les
        for les in table.lesions
        if recist_measurable(
            les,
            node_short_axis_mm=rules["measurable_node_short_axis_mm"],
            other_long_axis_mm=rules["measurable_non_nodal_long_axis_mm"],
        )
    ]
    measurable.sort(key=lambda les: -_diameter_mm(les, where="baseline"))
    chosen: list[Lesion] = []
    per_organ: dict[str, int] = {}
    for les in measurable:
        organ = les.organ or les.tissue or les.lesion_id
        if per_organ.get(organ, 0) >= rules["max_targets_per_organ"]:
            continue
        chosen.append(les)
        per_organ[organ] = per_organ.get(organ, 0) + 1
        if len(chosen) == rules["max_targets"]:
            break
    return chosen


def recist(
    baseline: LesionTable,
    followup: LesionTable,
    *,
    match: LesionMatch,
    nadir_sum_mm: float | None = None,
) -> ResponseResult:
    """RECIST 1.1 target-lesion response plus new lesions (non-target progression is not assessed).

    Parameters
    ----------
    nadir_sum_mm : float, optional
        Smallest sum of diameters recorded so far (baseline included); default: the baseline sum.
    """
    rules = load_table("response.json")["criteria"]["recist"]
    key = rules["citation_key"]
    targets = select_recist_targets(baseline)
    if not targets:
        raise InputError("baseline has no measurable target lesion: RECIST 1.1 needs at least one")
    fu = _by_id(followup)
    pair = dict(match.pairs)
    per_lesion = []
    base_sum = 0.0
    fu_sum = 0.0
    nodes_normal = True
    all_gone = True
    for les in targets:
        d0 = _diameter_mm(les, where="baseline")
        fu_les = fu.get(pair[les.lesion_id]) if les.lesion_id in pair else None
        d1 = 0.0 if fu_les is None else _diameter_mm(fu_les, where="follow-up")
        base_sum += d0
        fu_sum += d1
        if les.tissue == "lymph_node":
            if not d1 < rules["normal_node_short_axis_mm"]:
                nodes_normal = False
        elif d1 > 0:
            all_gone = False
        per_lesion.append({"lesion_id": les.lesion_id, "baseline_mm": d0, "followup_mm": d1})
    nadir = base_sum if nadir_sum_mm is None else min(nadir_sum_mm, base_sum)
    change_from_baseline = (fu_sum - base_sum) / base_sum
    increase_mm = fu_sum - nadir
    details: dict[str, Any] = {
        "targets": per_lesion,
        "baseline_sum_mm": base_sum,
        "followup_sum_mm": fu_sum,
        "nadir_sum_mm": nadir,
        "change_from_baseline_percent": 100.0 * change_from_baseline,
        "change_from_nadir_percent": 100.0 * increase_mm / nadir if nadir > 0 else None,
        "new_lesions": list(match.new),
        "matching": match.to_dict(),
        "note": "target lesions and new lesions only; non-target lesion progression is not assessed",
    }
    if match.new:
        category, rule = "PD", f"new lesion(s) {', '.join(match.new)}"
    elif (
        nadir > 0
        and _at_least(increase_mm / nadir, rules["pd_increase_fraction"])
        and _at_least(increase_mm, rules["pd_absolute_increase_mm"])
    ):
        category, rule = (
            "PD",
            (
                f"sum {fu_sum:g} mm is {100 * increase_mm / nadir:.1f} % and {increase_mm:g} mm above "
                f"the nadir {nadir:g} mm (>= 20 % and >= 5 mm)"
            ),
        )
    elif all_gone and nodes_normal:
        category, rule = "CR", "all non-nodal targets disappeared and every target node < 10 mm short axis"
    elif _at_least(-change_from_baseline, rules["pr_decrease_fraction"]):
        category, rule = "PR", f"sum decreased {100 * -change_from_baseline:.1f} % from baseline (>= 30 %)"
    else:
        category, rule = (
            "SD",
            (
                f"sum changed {100 * change_from_baseline:+.1f} % from baseline and "
                f"{increase_mm:+g} mm from the nadir: neither PR nor PD"
            ),
        )
    return ResponseResult("RECIST 1.1", category, f"{category}: {rule} [{key}]", key, details)


# -------------------------------------------------------------------------------------- PERCIST 1.0


def _hottest_sul(table: LesionTable, *, where: str) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for les in table.lesions:
        if les.sul_peak is None:
            raise InputError(f"{where} lesion {les.lesion_id!r} has no sul_peak: PERCIST 1.0 needs SULpeak")
        if best is None or les.sul_peak > best[1]:
            best = (les.lesion_id, les.sul_peak)
    return best


def percist(baseline: LesionTable, followup: LesionTable, *, match: LesionMatch) -> ResponseResult:
    """PERCIST 1.0 response from the SULpeak of the hottest lesion of each scan and new lesions."""
    rules = load_table("response.json")["criteria"]["percist"]
    key = rules["citation_key"]
    base = _hottest_sul(baseline, where="baseline")
    if base is None:
        raise InputError("baseline has no lesion: PERCIST 1.0 needs a measurable baseline lesion")
    fu = _hottest_sul(followup, where="follow-up")
    details: dict[str, Any] = {
        "baseline_hottest": {"lesion_id": base[0], "sul_peak": base[1]},
        "followup_hottest": None if fu is None else {"lesion_id": fu[0], "sul_peak": fu[1]},
        "new_lesions": list(match.new),
        "matching": match.to_dict(),
    }
    liver0 = baseline.references.get("liver")
    if liver0 is not None and liver0.sul_mean is not None and liver0.sul_sd is not None:
        threshold = (
            rules["measurable_liver_factor"] * liver0.sul_mean
            + rules["measurable_liver_sd_factor"] * liver0.sul_sd
        )
        details["measurability_threshold_sul"] = threshold
        if not _at_least(base[1], threshold):
            return ResponseResult(
                "PERCIST 1.0",
                "NE",
                f"NE: baseline hottest SULpeak {base[1]:g} < 1.5 x liver SULmean + 2 SD = {threshold:.3g}: "
                f"not measurable [{key}]",
                key,
                details,
            )
    else:
        details["measurability_threshold_sul"] = None
    fu_peak = 0.0 if fu is None else fu[1]
    delta = fu_peak - base[1]
    fraction = delta / base[1]
    details["change_percent"] = 100.0 * fraction
    details["change_sul"] = delta
    liver1 = followup.references.get("liver")
    liver1_mean = liver1.sul_mean if liver1 is not None else None
    if match.new:
        category, rule = "PMD", f"new lesion(s) {', '.join(match.new)}"
    elif fu is None:
        category, rule = "CMR", "no lesion on the follow-up scan"
    elif liver1_mean is not None and fu_peak < liver1_mean:
        category, rule = "CMR", f"hottest follow-up SULpeak {fu_peak:g} < mean liver SUL {liver1_mean:g}"
    elif _more_than(fraction, rules["change_fraction"]) and _more_than(delta, rules["change_sul_units"]):
        category, rule = "PMD", f"SULpeak +{100 * fraction:.1f} % and +{delta:.3g} SUL (> 30 % and > 0.8)"
    elif _at_least(-fraction, rules["change_fraction"]) and _at_least(-delta, rules["change_sul_units"]):
        category, rule = (
            "PMR",
            f"SULpeak {100 * fraction:.1f} % and {delta:.3g} SUL (>= 30 % and >= 0.8 decrease)",
        )
    else:
        category, rule = "SMD", f"SULpeak {100 * fraction:+.1f} % ({delta:+.3g} SUL): not CMR, PMR or PMD"
    return ResponseResult("PERCIST 1.0", category, f"{category}: {rule} [{key}]", key, details)


# ----------------------------------------------------------------------------------------- RECIP 1.0


def _psma_vol_ml(table: LesionTable, *, where: str) -> float:
    total = 0.0
    for les in table.lesions:
        if les.volume_ml is None:
            raise InputError(f"{where} lesion {les.lesion_id!r} has no volume_ml: RECIP 1.0 sums PSMA-VOL")
        total += les.volume_ml
    return total


def recip(baseline: LesionTable, followup: LesionTable, *, match: LesionMatch) -> ResponseResult:
    """RECIP 1.0 from the change of total PSMA-positive tumour volume (PSMA-VOL) and new lesions."""
    rules = load_table("response.json")["criteria"]["recip"]
    key = rules["citation_key"]
    v0 = _psma_vol_ml(baseline, where="baseline")
    if not v0 > 0:
        raise InputError("baseline PSMA-VOL is 0 mL: RECIP 1.0 needs PSMA-positive disease at baseline")
    v1 = _psma_vol_ml(followup, where="follow-up")
    fraction = (v1 - v0) / v0
    new = bool(match.new)
    details: dict[str, Any] = {
        "baseline_psma_vol_ml": v0,
        "followup_psma_vol_ml": v1,
        "change_percent": 100.0 * fraction,
        "new_lesions": list(match.new),
        "matching": match.to_dict(),
    }
    if v1 == 0 and not new:
        category, rule = "CR", "no PSMA-ligand uptake on the follow-up PET (PSMA-VOL 0 mL)"
    elif _at_least(-fraction, rules["pr_decrease_fraction"]) and not new:
        category, rule = "PR", f"PSMA-VOL {100 * fraction:.1f} % (>= 30 % decrease) without new lesions"
    elif _at_least(fraction, rules["pd_increase_fraction"]) and new:
        category, rule = "PD", f"PSMA-VOL {100 * fraction:+.1f} % (>= 20 % increase) with new lesions"
    else:
        category, rule = (
            "SD",
            (
                f"PSMA-VOL {100 * fraction:+.1f} % {'with' if new else 'without'} new lesions: "
                "neither CR, PR nor PD"
            ),
        )
    return ResponseResult("RECIP 1.0", category, f"{category}: {rule} [{key}]", key, details)


# --------------------------------------------------------------------------------------------- PPP


def ppp(
    baseline: LesionTable,
    followup: LesionTable,
    *,
    match: LesionMatch,
    clinical_progression: bool = False,
) -> ResponseResult:
    """PSMA PET progression (Fanti et al. 2020).

    Parameters
    ----------
    clinical_progression : bool
        Consistent clinical or laboratory data (e.g. PSA progression) are present; needed for progression
        on a single new lesion or on growth / uptake increase of existing lesions.
    """
    rules = load_table("response.json")["criteria"]["ppp"]
    key = rules["citation_key"]
    threshold = rules["increase_fraction"]
    base = _by_id(baseline)
    fu = _by_id(followup)
    increases = []
    for b_id, f_id in match.pairs:
        b, f = base[b_id], fu[f_id]
        for label, v0, v1 in (
            ("SUVmax", b.suv_max, f.suv_max),
            (
                "size",
                b.short_axis_mm if b.tissue == "lymph_node" else b.long_axis_mm,
                f.short_axis_mm if f.tissue == "lymph_node" else f.long_axis_mm,
            ),
        ):
            if v0 is not None and v1 is not None and v0 > 0 and _at_least((v1 - v0) / v0, threshold):
                increases.append(f"{b_id} {label} {v0:g} -> {v1:g} ({100 * (v1 - v0) / v0:+.0f} %)")
    n_new = len(match.new)
    details: dict[str, Any] = {
        "new_lesions": list(match.new),
        "increases_30_percent": increases,
        "clinical_progression": clinical_progression,
        "matching": match.to_dict(),
    }
    texts = rules["rules"]
    if n_new >= rules["new_lesions_alone"]:
        category, rule = "PPP", f"{texts['new2']} ({n_new} new: {', '.join(match.new)})"
    elif n_new == 1 and clinical_progression:
        category, rule = "PPP", f"{texts['new1']} ({match.new[0]})"
    elif increases and clinical_progression:
        category, rule = "PPP", f"{texts['increase']} ({'; '.join(increases)})"
    else:
        why = []
        if n_new == 1:
            why.append("1 new lesion without consistent clinical or laboratory data")
        if increases:
            why.append("increase >= 30 % without consistent clinical or laboratory data")
        category = "no PPP"
        rule = f"{texts['none']}" + (f" ({'; '.join(why)}: confirm)" if why else "")
    return ResponseResult("PSMA PET progression", category, f"{category}: {rule} [{key}]", key, details)


def assess_response(
    baseline: LesionTable,
    followup: LesionTable,
    *,
    criteria: Criteria,
    match_by: MatchBy = "auto",
    max_distance_mm: float = DEFAULT_MAX_DISTANCE_MM,
    nadir_sum_mm: float | None = None,
    clinical_progression: bool = False,
) -> ResponseResult:
    """Match lesions, then apply ``criteria`` (``recist``, ``percist``, ``recip`` or ``ppp``)."""
    match = match_lesions(baseline, followup, by=match_by, max_distance_mm=max_distance_mm)
    if criteria == "recist":
        return recist(baseline, followup, match=match, nadir_sum_mm=nadir_sum_mm)
    if criteria == "percist":
        return percist(baseline, followup, match=match)
    if criteria == "recip":
        return recip(baseline, followup, match=match)
    if criteria == "ppp":
        return ppp(baseline, followup, match=match, clinical_progression=clinical_progression)
    raise InputError(f"criteria must be recist, percist, recip or ppp; got {criteria!r}")
