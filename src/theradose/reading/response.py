"""Response between a baseline and a follow-up lesion table.

Criteria (thresholds in ``src/theradose/data/reading/response.json``):

- RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228): sum of target-lesion diameters (short axis
  for lymph nodes, longest diameter otherwise); targets PR: ≥ 30 % decrease from baseline; PD: ≥ 20 % and
  ≥ 5 mm increase from the nadir; CR: all targets gone and every target node < 10 mm. Every other
  baseline lesion is a non-target lesion: CR when all have gone (nodes < 10 mm), PD on the reader's
  unequivocal progression (``nontarget_response``), else non-CR/non-PD. Overall response from target,
  non-target and new lesions by Table 1 (Table 2 for non-target disease only).
- PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50:122S): SULpeak of the hottest lesion of each scan (not
  necessarily the same lesion); PMR: ≥ 30 % and ≥ 0.8 SUL decrease; PMD: > 30 % and > 0.8 SUL increase,
  > 75 % increase in TLG of the 5 most active lesions (≤ 2 per organ; when ``tlg_sul_ml`` is given), or
  a new lesion; CMR: every lesion below mean liver SUL (and at blood-pool level when that reference is
  given). Visual progression is not assessed.
- RECIP 1.0 (Gafita et al., J Nucl Med 2022;63:1651): PSMA-VOL (total PSMA-positive tumour volume) and
  new lesions; CR: no PSMA uptake; PR: ≥ 30 % decrease without new lesions; PD: ≥ 20 % increase with
  new lesions; SD otherwise.
- PSMA PET progression, PPP (Fanti et al., J Nucl Med 2020;61:678): ≥ 2 new distant lesions; or a new
  lesion, or ≥ 30 % increase in size or uptake of a lesion, with consistent clinical or laboratory data.

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


def recist_nontarget(
    followup: LesionTable,
    *,
    match: LesionMatch,
    nontargets: list[Lesion],
) -> tuple[str, list[dict[str, Any]]]:
    """RECIST 1.1 non-target response (Eisenhauer 2009, section 4.3.2) from the reader's assessment.

    Each baseline non-target lesion is ``absent`` (no follow-up row, or ``nontarget_response=absent``, or
    a lymph node whose follow-up short axis is < 10 mm), ``present``, ``progression`` (the reader judged
    unequivocal progression) or ``ne`` (not evaluated), from the follow-up row's ``nontarget_response``.

    Returns
    -------
    (status, per_lesion)
        ``status``: ``none`` (no non-target lesion at baseline), ``PD`` (unequivocal progression),
        ``NE`` (some lesion not evaluated, no progression), ``CR`` (all absent) or ``non-CR/non-PD``.
    """
    rules = load_table("response.json")["criteria"]["recist"]
    if not nontargets:
        return "none", []
    fu = _by_id(followup)
    pair = dict(match.pairs)
    per_lesion: list[dict[str, Any]] = []
    for les in nontargets:
        fu_les = fu.get(pair[les.lesion_id]) if les.lesion_id in pair else None
        if fu_les is None:
            status, why = "absent", "no follow-up row"
        elif fu_les.nontarget_response is not None:
            status, why = fu_les.nontarget_response, "reader's nontarget_response"
        elif (
            fu_les.tissue == "lymph_node"
            and fu_les.short_axis_mm is not None
            and fu_les.short_axis_mm < rules["normal_node_short_axis_mm"]
        ):
            status, why = "absent", f"node short axis {fu_les.short_axis_mm:g} mm < 10 mm (non-pathological)"
        else:
            status, why = "present", "follow-up row present, no nontarget_response given"
        per_lesion.append(
            {
                "lesion_id": les.lesion_id,
                "followup_id": None if fu_les is None else fu_les.lesion_id,
                "status": status,
                "from": why,
            }
        )
    statuses = {item["status"] for item in per_lesion}
    if "progression" in statuses:
        return "PD", per_lesion
    if "ne" in statuses:
        return "NE", per_lesion
    if statuses == {"absent"}:
        return "CR", per_lesion
    return "non-CR/non-PD", per_lesion


def recist_overall(target: str, nontarget: str, *, new_lesions: bool) -> tuple[str, str]:
    """RECIST 1.1 time-point response from target, non-target and new lesions (Eisenhauer 2009, Tables 1-2).

    Parameters
    ----------
    target : {"CR", "PR", "SD", "PD", "none"}
        Target-lesion response; ``none`` when the baseline has no target lesion (Table 2).
    nontarget : {"CR", "non-CR/non-PD", "NE", "PD", "none"}
        Non-target response; ``none`` when the baseline has no non-target lesion.
    new_lesions : bool

    Returns
    -------
    (category, row)
        The overall response and the table row that decided it, in words.
    """
    table_rows = load_table("response.json")["criteria"]["recist"]["overall_table"]
    if target == "none" and nontarget == "none":
        raise InputError("baseline has no target and no non-target lesion: RECIST 1.1 has nothing to follow")
    for row in table_rows:
        if (
            target in row["target"]
            and nontarget in row["nontarget"]
            and (row["new"] == "any" or row["new"] == ("yes" if new_lesions else "no"))
        ):
            text = (
                f"target {target}, non-target {nontarget}, new lesions {'yes' if new_lesions else 'no'} "
                f"-> {row['overall']} ({row['table']})"
            )
            return str(row["overall"]), text
    raise InputError(
        f"RECIST 1.1 has no overall response for target {target!r} and non-target {nontarget!r}: "
        "check the target and nontarget_response columns"
    )


def recist(
    baseline: LesionTable,
    followup: LesionTable,
    *,
    match: LesionMatch,
    nadir_sum_mm: float | None = None,
) -> ResponseResult:
    """RECIST 1.1 overall response from target lesions, non-target lesions and new lesions.

    Target lesions: :func:`select_recist_targets`; every other baseline lesion is a non-target lesion
    (Eisenhauer 2009, section 4.2) assessed by :func:`recist_nontarget`; the overall response follows
    Table 1 (targets at baseline) or Table 2 (non-target disease only) via :func:`recist_overall`.

    Parameters
    ----------
    nadir_sum_mm : float, optional
        Smallest sum of diameters recorded so far (baseline included); default: the baseline sum.
    """
    rules = load_table("response.json")["criteria"]["recist"]
    key = rules["citation_key"]
    targets = select_recist_targets(baseline)
    target_ids = {les.lesion_id for les in targets}
    nontargets = [les for les in baseline.lesions if les.lesion_id not in target_ids]
    if not targets and not nontargets:
        raise InputError("baseline has no lesion: RECIST 1.1 needs at least one target or non-target lesion")
    nt_status, nt_lesions = recist_nontarget(followup, match=match, nontargets=nontargets)
    details: dict[str, Any] = {
        "targets": [],
        "nontargets": nt_lesions,
        "nontarget_response": nt_status,
        "new_lesions": list(match.new),
        "matching": match.to_dict(),
        "note": (
            "tumour-marker normalisation (needed for non-target CR) and confirmation of response are not "
            "assessed"
        ),
    }
    if not targets:
        details["target_response"] = "none"
        category, row = recist_overall("none", nt_status, new_lesions=bool(match.new))
        rule = f"{row}; no target lesion at baseline"
        if match.new:
            rule += f"; new lesion(s) {', '.join(match.new)}"
        return ResponseResult("RECIST 1.1", category, f"{category}: {rule} [{key}]", key, details)
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
    details.update(
        {
            "targets": per_lesion,
            "baseline_sum_mm": base_sum,
            "followup_sum_mm": fu_sum,
            "nadir_sum_mm": nadir,
            "change_from_baseline_percent": 100.0 * change_from_baseline,
            "change_from_nadir_percent": 100.0 * increase_mm / nadir if nadir > 0 else None,
        }
    )
    if (
        nadir > 0
        and _at_least(increase_mm / nadir, rules["pd_increase_fraction"])
        and _at_least(increase_mm, rules["pd_absolute_increase_mm"])
    ):
        target_cat, why = (
            "PD",
            (
                f"sum {fu_sum:g} mm is {100 * increase_mm / nadir:.1f} % and {increase_mm:g} mm above "
                f"the nadir {nadir:g} mm (>= 20 % and >= 5 mm)"
            ),
        )
    elif all_gone and nodes_normal:
        target_cat, why = "CR", "all non-nodal targets disappeared and every target node < 10 mm short axis"
    elif _at_least(-change_from_baseline, rules["pr_decrease_fraction"]):
        target_cat, why = "PR", f"sum decreased {100 * -change_from_baseline:.1f} % from baseline (>= 30 %)"
    else:
        target_cat, why = (
            "SD",
            (
                f"sum changed {100 * change_from_baseline:+.1f} % from baseline and "
                f"{increase_mm:+g} mm from the nadir: neither PR nor PD"
            ),
        )
    details["target_response"] = target_cat
    category, row = recist_overall(target_cat, nt_status, new_lesions=bool(match.new))
    reasons = [f"targets {target_cat}: {why}"]
    if nt_status == "PD":
        progressing = [i["lesion_id"] for i in nt_lesions if i["status"] == "progression"]
        reasons.append(f"unequivocal progression of non-target lesion(s) {', '.join(progressing)}")
    if match.new:
        reasons.append(f"new lesion(s) {', '.join(match.new)}")
    rule = f"{row}; {'; '.join(reasons)}"
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


def _most_active(table: LesionTable, *, n: int, per_organ: int) -> list[Lesion]:
    """Up to ``n`` lesions with the highest SULpeak, no more than ``per_organ`` per organ."""
    ordered = sorted(table.lesions, key=lambda les: -(les.sul_peak or 0.0))
    chosen: list[Lesion] = []
    counts: dict[str, int] = {}
    for les in ordered:
        organ = les.organ or les.tissue or les.lesion_id
        if counts.get(organ, 0) >= per_organ:
            continue
        chosen.append(les)
        counts[organ] = counts.get(organ, 0) + 1
        if len(chosen) == n:
            break
    return chosen


def percist_tlg_change(baseline: LesionTable, followup: LesionTable) -> dict[str, Any] | None:
    """PERCIST 1.0 secondary measure: TLG summed over the 5 most active lesions of each scan.

    Lesions are chosen by SULpeak on each scan separately, up to 5 and no more than 2 per organ
    (Wahl et al. 2009, as reproduced in J Cancer 2010;1:80 Table 3). TLG comes from the ``tlg_sul_ml``
    column (SULmean x volume, SUL·mL).

    Returns
    -------
    dict or None
        ``None`` when a chosen lesion has no ``tlg_sul_ml`` (the rule is then not assessed) or the
        baseline sum is 0; otherwise the sums (SUL·mL), lesion ids and ``change_fraction``.
    """
    rules = load_table("response.json")["criteria"]["percist"]
    n, per_organ = int(rules["tlg_max_lesions"]), int(rules["tlg_max_lesions_per_organ"])
    chosen0 = _most_active(baseline, n=n, per_organ=per_organ)
    chosen1 = _most_active(followup, n=n, per_organ=per_organ)
    if not chosen0 or any(les.tlg_sul_ml is None for les in (*chosen0, *chosen1)):
        return None
    tlg0 = sum(les.tlg_sul_ml or 0.0 for les in chosen0)
    tlg1 = sum(les.tlg_sul_ml or 0.0 for les in chosen1)
    if not tlg0 > 0:
        return None
    return {
        "baseline_lesions": len(chosen0),
        "followup_lesions": len(chosen1),
        "baseline_ids": [les.lesion_id for les in chosen0],
        "followup_ids": [les.lesion_id for les in chosen1],
        "baseline_tlg_sul_ml": tlg0,
        "followup_tlg_sul_ml": tlg1,
        "change_fraction": (tlg1 - tlg0) / tlg0,
    }


def percist(baseline: LesionTable, followup: LesionTable, *, match: LesionMatch) -> ResponseResult:
    """PERCIST 1.0 response: SULpeak of the hottest lesion of each scan, TLG of the 5 most active lesions
    (when ``tlg_sul_ml`` is given), new lesions and complete metabolic response vs liver and blood pool."""
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
    blood1 = followup.references.get("blood_pool")
    blood1_mean = blood1.sul_mean if blood1 is not None else None
    tlg = percist_tlg_change(baseline, followup)
    details["tlg"] = tlg
    tlg_pmd = tlg is not None and _more_than(tlg["change_fraction"], rules["tlg_increase_fraction"])
    if match.new:
        category, rule = "PMD", f"new lesion(s) {', '.join(match.new)}"
    elif fu is None:
        category, rule = "CMR", "no lesion on the follow-up scan"
    elif (
        liver1_mean is not None and fu_peak < liver1_mean and (blood1_mean is None or fu_peak <= blood1_mean)
    ):
        blood_text = "" if blood1_mean is None else f" and <= blood-pool SUL {blood1_mean:g}"
        category, rule = (
            "CMR",
            f"hottest follow-up SULpeak {fu_peak:g} < mean liver SUL {liver1_mean:g}{blood_text}",
        )
    elif _more_than(fraction, rules["change_fraction"]) and _more_than(delta, rules["change_sul_units"]):
        category, rule = "PMD", f"SULpeak +{100 * fraction:.1f} % and +{delta:.3g} SUL (> 30 % and > 0.8)"
    elif tlg_pmd and tlg is not None:
        category, rule = (
            "PMD",
            (
                f"TLG of the {tlg['baseline_lesions']}/{tlg['followup_lesions']} most active lesions "
                f"{tlg['baseline_tlg_sul_ml']:g} -> {tlg['followup_tlg_sul_ml']:g} SUL·mL "
                f"({100 * tlg['change_fraction']:+.1f} %, > 75 %)"
            ),
        )
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
    distant = [i for i in match.new if fu[i].distant is not False]
    assumed = [i for i in match.new if fu[i].distant is None]
    details: dict[str, Any] = {
        "new_lesions": list(match.new),
        "new_distant_lesions": distant,
        "distant_assumed": assumed,
        "increases_30_percent": increases,
        "clinical_progression": clinical_progression,
        "matching": match.to_dict(),
    }
    texts = rules["rules"]
    if len(distant) >= rules["new_lesions_alone"]:
        category, rule = "PPP", f"{texts['new2']} ({len(distant)} new distant: {', '.join(distant)})"
    elif n_new >= 1 and clinical_progression:
        category, rule = "PPP", f"{texts['new1']} ({', '.join(match.new)})"
    elif increases and clinical_progression:
        category, rule = "PPP", f"{texts['increase']} ({'; '.join(increases)})"
    else:
        why = []
        if n_new >= 1:
            why.append(
                f"{n_new} new lesion(s), {len(distant)} distant, "
                "without consistent clinical or laboratory data"
            )
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
