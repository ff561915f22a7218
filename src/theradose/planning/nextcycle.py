"""Next-cycle activity from the cycle history: cumulative dose/BED, projection, limiting organ, stop rules.

Method
------
1. **Delivered so far.** Per organ, the absorbed dose of each cycle is ``D_i = g_i A_i`` (``g_i`` the
   measured Gy/GBq, ``A_i`` the administered GBq); the cumulative dose is ``Σ D_i`` with
   ``σ = sqrt(Σ (σ_g,i A_i)²)`` (independent cycles). The cumulative BED is the sum of per-cycle BEDs,
   each computed by :func:`theradose.radiobiology.bed_gy` with that cycle's effective half-life; cycles
   weeks apart allow complete repair between them, so per-cycle BEDs add (Dale 1985 BJR 58:515;
   Wessels et al. 2008 JNM 49:1884). A cycle in which an organ was not measured is given the
   expected Gy/GBq of the cycles in which it was (step 2) and a note says so.
2. **Expected Gy/GBq next cycle** (:func:`expected_gy_per_gbq`): ``"last"`` takes the most recent
   measurement and its σ (default: organ uptake per GBq drifts between cycles, e.g. as tumour sink
   changes, so the latest is the best predictor). ``"inverse_variance"`` takes the weighted mean
   ``ĝ = Σ w_i g_i / Σ w_i`` with ``w_i = 1/σ_i²`` and ``σ_ĝ = (Σ w_i)^(-1/2)`` (Bevington & Robinson
   2003, eq. 4.17-4.19); it assumes the cycles measure one constant value. The effective half-life
   for the next cycle is the latest measured one.
3. **Recommended activity.** With ``z`` the one-sided standard-normal quantile of the confidence
   (1.645 at 95 %), the organ's conservative Gy/GBq is ``g_u = ĝ + z σ_ĝ``. Its largest allowed activity
   ``A_max`` satisfies ``D_cum + g_u A ≤ D_limit`` and ``BED_cum + BED(g_u A) ≤ BED_limit`` (BED increases
   monotonically with dose; the root is found numerically with the radiobiology BED function). The
   recommendation is the smallest ``A_max`` over organs (the limiting organ), clipped to the
   protocol's maximum; if it falls below the protocol's minimum, treatment stops.
4. **Stop rules**: a limit already reached; the minimum activity would exceed a limit; the protocol's
   number of cycles given; all tumours reached their target; a response status the protocol stops on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from theradose.errors import InputError
from theradose.planning._bed import BedFunction, radiobiology_bed_gy
from theradose.planning.cycles import Cycle, Estimate, RegionDose, TreatmentPlan
from theradose.planning.protocols import OrganLimit
from theradose.units import gbq_to_mbq, mbq_to_gbq


@dataclass(frozen=True)
class Expected:
    """Predicted Gy/GBq for the next cycle with its 1-sigma uncertainty and effective half-life."""

    dose_gy_per_gbq: float
    sigma_gy_per_gbq: float
    effective_half_life_h: float | None
    n_cycles: int


@dataclass(frozen=True)
class OrganProjection:
    """Delivered and projected dose/BED of one organ at risk (all doses in Gy, activities in MBq).

    ``projected_*`` are cumulative after the recommended next cycle using the expected Gy/GBq;
    ``projected_*_upper`` use the conservative Gy/GBq at the plan's confidence. BED values are
    ``None`` when the organ has no radiobiological parameters in the protocol. ``regions_used`` names,
    per given cycle, the dose regions the organ's dose came from (:func:`match_organ`; empty where the
    cycle had none and the expected Gy/GBq was used).
    """

    organ: str
    delivered_dose_gy: float
    delivered_dose_sigma_gy: float
    delivered_bed_gy: float | None
    expected: Expected
    limit_dose_gy: float | None
    limit_bed_gy: float | None
    limit_citation: str
    allowed_activity_mbq: float
    binding_limit: str | None
    projected_dose_gy: float
    projected_dose_upper_gy: float
    projected_bed_gy: float | None
    projected_bed_upper_gy: float | None
    regions_used: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class TumourProjection:
    """Delivered and expected tumour dose/BED (Gy)."""

    name: str
    delivered_dose_gy: float
    delivered_bed_gy: float | None
    expected: Expected
    next_cycle_dose_gy: float
    next_cycle_bed_gy: float | None
    projected_dose_gy: float
    projected_bed_gy: float | None
    target_dose_gy: float | None
    target_bed_gy: float | None


@dataclass(frozen=True)
class NextCycleResult:
    """The recommendation for the next cycle.

    Attributes
    ----------
    recommended_activity_mbq : float
        Activity to give (MBq); 0 when ``stop`` is true.
    allowed_activity_mbq : float
        Largest activity within all limits before clipping to the protocol (MBq; ``inf`` if unconstrained).
    limiting_organ : str or None
        Organ whose limit sets the recommended activity (None when the protocol's maximum or standard
        activity does).
    most_constrained_organ : str or None
        Organ with the smallest allowed activity, even when the protocol maximum binds.
    organs, tumours : tuples of projections
    stop : bool
    reasons : tuple of str
        Why this activity, or why treatment stops, in words.
    notes : tuple of str
        Assumptions made (missing measurements, organs without dosimetry).
    cycle_number : int
        Number of the next cycle (1-based).
    z : float
        One-sided normal quantile used.
    """

    recommended_activity_mbq: float
    allowed_activity_mbq: float
    limiting_organ: str | None
    most_constrained_organ: str | None
    organs: tuple[OrganProjection, ...]
    tumours: tuple[TumourProjection, ...]
    stop: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    cycle_number: int
    confidence: float
    z: float
    safety: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape used by ``theradose plan next-cycle --json`` and the report."""
        return {
            "recommended_activity_mbq": self.recommended_activity_mbq,
            "allowed_activity_mbq": self.allowed_activity_mbq,
            "limiting_organ": self.limiting_organ,
            "most_constrained_organ": self.most_constrained_organ,
            "cycle_number": self.cycle_number,
            "confidence": self.confidence,
            "z": self.z,
            "projected": {
                o.organ: {
                    "cumulative_bed_gy": o.projected_bed_gy,
                    "cumulative_bed_upper_gy": o.projected_bed_upper_gy,
                    "limit_bed_gy": o.limit_bed_gy,
                    "cumulative_dose_gy": o.projected_dose_gy,
                    "cumulative_dose_upper_gy": o.projected_dose_upper_gy,
                    "limit_dose_gy": o.limit_dose_gy,
                    "delivered_dose_gy": o.delivered_dose_gy,
                    "delivered_dose_sigma_gy": o.delivered_dose_sigma_gy,
                    "delivered_bed_gy": o.delivered_bed_gy,
                    "expected_gy_per_gbq": o.expected.dose_gy_per_gbq,
                    "expected_sigma_gy_per_gbq": o.expected.sigma_gy_per_gbq,
                    "effective_half_life_h": o.expected.effective_half_life_h,
                    "allowed_activity_mbq": o.allowed_activity_mbq,
                    "binding_limit": o.binding_limit,
                    "limit_citation": o.limit_citation,
                    "regions_used": [list(r) for r in o.regions_used],
                }
                for o in self.organs
            },
            "tumour": {
                t.name: {
                    "expected_bed_gy": t.next_cycle_bed_gy,
                    "expected_dose_gy": t.next_cycle_dose_gy,
                    "cumulative_bed_gy": t.projected_bed_gy,
                    "cumulative_dose_gy": t.projected_dose_gy,
                    "delivered_bed_gy": t.delivered_bed_gy,
                    "delivered_dose_gy": t.delivered_dose_gy,
                    "target_dose_gy": t.target_dose_gy,
                    "target_bed_gy": t.target_bed_gy,
                }
                for t in self.tumours
            },
            "stop": self.stop,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "safety": self.safety,
        }


def one_sided_z(confidence: float) -> float:
    """One-sided standard-normal quantile Φ⁻¹(confidence), e.g. 1.6449 for 0.95."""
    from scipy.stats import norm

    return float(norm.ppf(confidence))


def expected_gy_per_gbq(measurements: list[RegionDose], *, estimate: Estimate = "last") -> Expected:
    """Predict the next cycle's Gy/GBq from the measured cycles (oldest first).

    Parameters
    ----------
    measurements : list of RegionDose
        Measurements of one region, oldest first (at least one).
    estimate : {"last", "inverse_variance"}
        See the module docstring (step 2).

    Returns
    -------
    Expected
    """
    if not measurements:
        raise InputError("measurements is empty: at least one measured cycle is needed to predict Gy/GBq")
    half_lives = [m.effective_half_life_h for m in measurements if m.effective_half_life_h is not None]
    half_life = half_lives[-1] if half_lives else None
    if estimate == "last" or len(measurements) == 1:
        last = measurements[-1]
        return Expected(last.dose_gy_per_gbq, last.dose_sigma_gy_per_gbq, half_life, len(measurements))
    if estimate != "inverse_variance":
        raise InputError(f"estimate must be 'last' or 'inverse_variance'; got {estimate!r}: pick one")
    zero = [m for m in measurements if m.dose_sigma_gy_per_gbq <= 0]
    if zero:
        raise InputError(
            f"dose_sigma_gy_per_gbq of region {zero[0].name!r} is 0: inverse-variance weighting needs "
            "every sigma > 0 (use estimate = 'last' or give the uncertainty)"
        )
    weights = [1.0 / m.dose_sigma_gy_per_gbq**2 for m in measurements]
    total = sum(weights)
    mean = sum(w * m.dose_gy_per_gbq for w, m in zip(weights, measurements, strict=True)) / total
    return Expected(mean, 1.0 / math.sqrt(total), half_life, len(measurements))


def _bed(
    dose_gy: float,
    half_life_h: float | None,
    alpha_beta_gy: float,
    repair_half_time_h: float,
    bed_function: BedFunction,
    what: str,
) -> float:
    if dose_gy <= 0:
        return 0.0
    if half_life_h is None:
        raise InputError(
            f"effective_half_life_h is missing for {what}: BED needs it; add it to the cycle's region doses"
        )
    return float(
        bed_function(
            dose_gy,
            effective_half_life_h=half_life_h,
            alpha_beta_gy=alpha_beta_gy,
            repair_half_time_h=repair_half_time_h,
        )
    )


def _dose_for_bed(
    target_bed_gy: float,
    half_life_h: float,
    alpha_beta_gy: float,
    repair_half_time_h: float,
    bed_function: BedFunction,
) -> float:
    """Absorbed dose whose single-administration BED equals ``target_bed_gy`` (BED ≥ D, monotonic)."""
    from scipy.optimize import brentq

    if target_bed_gy <= 0:
        return 0.0

    def residual(dose_gy: float) -> float:
        return _bed(dose_gy, half_life_h, alpha_beta_gy, repair_half_time_h, bed_function, "") - target_bed_gy

    if residual(target_bed_gy) <= 0:  # BED(D) == D (no quadratic term): dose equals the BED headroom
        return target_bed_gy
    return float(brentq(residual, 0.0, target_bed_gy, xtol=1e-10, rtol=1e-12))


@dataclass(frozen=True)
class RegionMatch:
    """The dose used for one organ (or tumour) in one cycle and the regions it came from.

    Attributes
    ----------
    dose : RegionDose
        The region's dose, or the mass-weighted aggregate of the organ's parts.
    regions : tuple of str
        Names of the regions used, as written in the cycle's doses.
    rule : {"exact", "alias", "parts"}
        How they were found (see :func:`match_organ`).
    """

    dose: RegionDose
    regions: tuple[str, ...]
    rule: str


def match_organ(cycle: Cycle, organ: OrganLimit) -> RegionMatch | None:
    """Find the dose of a protocol organ among a cycle's organ regions (tumour regions never match).

    Region names are read with the organ registry (:func:`theradose.organs.find_organ`), the same table
    the pipeline and the segmentation writers use. Rules, first that applies:

    1. ``"exact"``: a region named like the organ (case, spaces and hyphens ignored), e.g. ``kidneys``.
    2. ``"alias"``: a region named by one of the organ's aliases in the registry, e.g. ``kidneys_total``.
    3. ``"parts"``: regions that are parts of the organ in the registry (``kidney_left`` + ``kidney_right``
       → ``kidneys``; ``parotid_left`` or ``parotids`` → ``salivary_glands``); of nested parts the
       outermost present is used (``parotids`` rather than ``parotid_left``). Their Gy/GBq is the
       mass-weighted mean ``Σ m_i g_i / Σ m_i`` (the mean dose of the combined organ, MIRD Pamphlet 21
       mean absorbed dose over a region's mass; equal weights when a mass is missing); the σ is
       ``Σ w_i σ_i`` (errors fully correlated: the SPECT calibration is shared, so this is the
       conservative choice); the effective half-life is the dose-weighted mean ``Σ w_i g_i T_i / Σ w_i g_i``
       (an approximation: the sum of two exponentials is not one exponential).

    Returns None when no region matches.
    """
    from theradose.organs import find_organ, is_part_of, normalise_name

    resolved = []
    for region in cycle.regions:
        found = find_organ(region.name) if region.kind == "organ" else None
        if found is not None:
            resolved.append((region, found.name))
    for region, name in resolved:
        if name == organ.name and normalise_name(region.name) == organ.name:
            return RegionMatch(region, (region.name,), "exact")
    for region, name in resolved:
        if name == organ.name:
            return RegionMatch(region, (region.name,), "alias")
    parts: dict[str, RegionDose] = {}
    for region, name in resolved:
        if is_part_of(name, organ.name):
            parts.setdefault(name, region)  # two spellings of one part: the first
    outermost = [r for n, r in parts.items() if not any(is_part_of(n, o) for o in parts if o != n)]
    if not outermost:
        return None
    return RegionMatch(_aggregate(organ.name, outermost), tuple(r.name for r in outermost), "parts")


def _aggregate(name: str, parts: list[RegionDose]) -> RegionDose:
    """Mass-weighted mean dose of an organ's parts (rule 3 of :func:`match_organ`)."""
    masses = [r.mass_g for r in parts]
    if all(m is not None and m > 0 for m in masses):
        total = sum(m for m in masses if m is not None)
        weights = [(m or 0.0) / total for m in masses]
    else:
        weights = [1.0 / len(parts)] * len(parts)
    per_gbq = sum(w * r.dose_gy_per_gbq for w, r in zip(weights, parts, strict=True))
    sigma = sum(w * r.dose_sigma_gy_per_gbq for w, r in zip(weights, parts, strict=True))
    half_life: float | None = None
    if all(r.effective_half_life_h is not None for r in parts) and per_gbq > 0:
        half_life = (
            sum(
                w * r.dose_gy_per_gbq * (r.effective_half_life_h or 0.0)
                for w, r in zip(weights, parts, strict=True)
            )
            / per_gbq
        )
    mass = sum(m for m in masses if m is not None) if all(m is not None for m in masses) else None
    return RegionDose(
        name=name,
        dose_gy_per_gbq=per_gbq,
        dose_sigma_gy_per_gbq=sigma,
        effective_half_life_h=half_life,
        kind="organ",
        mass_g=mass,
        source=",".join(sorted({r.source for r in parts if r.source})),
    )


def _organ_finder(organ: OrganLimit) -> Callable[[Cycle], RegionMatch | None]:
    def find(cycle: Cycle) -> RegionMatch | None:
        return match_organ(cycle, organ)

    return find


def _name_finder(name: str) -> Callable[[Cycle], RegionMatch | None]:
    def find(cycle: Cycle) -> RegionMatch | None:
        for region in cycle.regions:
            if region.name.lower() == name.lower():
                return RegionMatch(region, (region.name,), "exact")
        return None

    return find


def _cycle_dose(activity_gbq: float, region: RegionDose) -> float:
    """A cycle's absorbed dose of a region (Gy): the dose record's when the region came from one (so the
    plan shows the record's number), else the measured Gy/GBq × the cycle's activity."""
    return region.dose_gy if region.dose_gy is not None else activity_gbq * region.dose_gy_per_gbq


def _cycle_bed(
    activity_gbq: float,
    region: RegionDose,
    alpha_beta_gy: float,
    repair_half_time_h: float,
    bed_function: BedFunction,
    what: str,
) -> float:
    """A cycle's BED of a region (Gy): the dose record's BED when it was computed from the same dose, with
    the same α/β, repair and effective half-life and the default BED function; else computed here."""
    bed = region.bed
    dose = _cycle_dose(activity_gbq, region)
    if (
        bed is not None
        and bed_function is radiobiology_bed_gy
        and bed.dose_gy == dose
        and bed.alpha_beta_gy == alpha_beta_gy
        and bed.repair_half_time_h == repair_half_time_h
        and bed.effective_half_life_h == region.effective_half_life_h
    ):
        return bed.bed_gy
    return _bed(dose, region.effective_half_life_h, alpha_beta_gy, repair_half_time_h, bed_function, what)


@dataclass(frozen=True)
class _History:
    per_cycle: tuple[tuple[float, RegionDose], ...]  # (activity_gbq, measurement or estimate)
    measured: tuple[RegionDose, ...]
    estimated_cycles: tuple[str, ...]
    regions_used: tuple[tuple[str, ...], ...]  # per cycle; () where estimated
    aggregated_cycles: tuple[str, ...]
    equal_weight_cycles: tuple[str, ...]


def _history(plan: TreatmentPlan, find: Callable[[Cycle], RegionMatch | None], name: str) -> _History | None:
    measured: list[RegionDose] = []
    found: list[tuple[Cycle, RegionMatch | None]] = []
    for cycle in plan.cycles:
        match = find(cycle)
        found.append((cycle, match))
        if match is not None:
            measured.append(match.dose)
    if not measured:
        return None
    fill = expected_gy_per_gbq(measured, estimate=plan.estimate)
    per_cycle = []
    estimated = []
    used: list[tuple[str, ...]] = []
    aggregated = []
    equal_weight = []
    for number, (cycle, match) in enumerate(found, start=1):
        if match is None:
            region = RegionDose(name, fill.dose_gy_per_gbq, fill.sigma_gy_per_gbq, fill.effective_half_life_h)
            estimated.append(str(number))
            used.append(())
        else:
            region = match.dose
            used.append(match.regions)
            if match.rule == "parts":
                aggregated.append(str(number))
                if region.mass_g is None:
                    equal_weight.append(str(number))
        per_cycle.append((mbq_to_gbq(cycle.administered_activity_mbq), region))
    return _History(
        per_cycle=tuple(per_cycle),
        measured=tuple(measured),
        estimated_cycles=tuple(estimated),
        regions_used=tuple(used),
        aggregated_cycles=tuple(aggregated),
        equal_weight_cycles=tuple(equal_weight),
    )


def plan_next_cycle(plan: TreatmentPlan, *, bed_function: BedFunction | None = None) -> NextCycleResult:
    """Recommend the next cycle's activity and decide whether to stop (method in the module docstring).

    Parameters
    ----------
    plan : TreatmentPlan
    bed_function : BedFunction, optional
        Single-administration BED function; default :func:`theradose.radiobiology.bed_gy`.

    Returns
    -------
    NextCycleResult
    """
    bed_fn: BedFunction = bed_function if bed_function is not None else radiobiology_bed_gy
    protocol = plan.protocol
    z = one_sided_z(plan.confidence)
    notes: list[str] = []
    stop_reasons: list[str] = []
    organ_states: list[
        tuple[OrganLimit, _History, Expected, float, float, float | None, float, str | None]
    ] = []

    for organ in protocol.organs:
        history = _history(plan, _organ_finder(organ), organ.name)
        if history is None:
            if plan.cycles:
                notes.append(f"{organ.name}: no dosimetry in any cycle, its limit was not checked")
            continue
        if history.estimated_cycles:
            notes.append(
                f"{organ.name}: not measured in cycle(s) {', '.join(history.estimated_cycles)}; "
                "the expected Gy/GBq of the measured cycles was used"
            )
        if history.aggregated_cycles:
            notes.append(
                f"{organ.name}: cycle(s) {', '.join(history.aggregated_cycles)} give only regions that are "
                "its parts (e.g. left and right); their mass-weighted mean dose was used"
                + (
                    f" (equal weights in cycle(s) {', '.join(history.equal_weight_cycles)}: mass missing)"
                    if history.equal_weight_cycles
                    else ""
                )
            )
        delivered_dose = sum(_cycle_dose(a, r) for a, r in history.per_cycle)
        delivered_sigma = math.sqrt(sum((a * r.dose_sigma_gy_per_gbq) ** 2 for a, r in history.per_cycle))
        delivered_bed: float | None = None
        half_lives_known = all(r.effective_half_life_h is not None for _a, r in history.per_cycle)
        if organ.has_radiobiology and not half_lives_known and organ.bed_limit_gy is None:
            notes.append(f"{organ.name}: effective half-life missing in a cycle, BED not computed")
        elif organ.has_radiobiology:
            assert organ.alpha_beta_gy is not None and organ.repair_half_time_h is not None
            delivered_bed = sum(
                _cycle_bed(
                    a,
                    r,
                    organ.alpha_beta_gy.value,
                    organ.repair_half_time_h.value,
                    bed_fn,
                    f"organ {organ.name!r}",
                )
                for a, r in history.per_cycle
            )
        expected = expected_gy_per_gbq(list(history.measured), estimate=plan.estimate)
        upper = expected.dose_gy_per_gbq + z * expected.sigma_gy_per_gbq
        allowed_gbq = math.inf
        binding: str | None = None
        bed_limit = organ.bed_limit_for(plan.risk_factors)
        if organ.dose_limit_gy is not None:
            if delivered_dose >= organ.dose_limit_gy.value:
                stop_reasons.append(
                    f"{organ.name}: cumulative absorbed dose {delivered_dose:.2f} Gy has reached the limit "
                    f"{organ.dose_limit_gy.value:g} Gy ({organ.dose_limit_gy.citation})"
                )
            if upper > 0:
                allowed_gbq = max(organ.dose_limit_gy.value - delivered_dose, 0.0) / upper
                binding = f"absorbed dose {organ.dose_limit_gy.value:g} Gy"
        if bed_limit is not None and delivered_bed is not None:
            assert organ.alpha_beta_gy is not None and organ.repair_half_time_h is not None
            if delivered_bed >= bed_limit.value:
                stop_reasons.append(
                    f"{organ.name}: cumulative BED {delivered_bed:.2f} Gy has reached the limit "
                    f"{bed_limit.value:g} Gy ({bed_limit.citation})"
                )
            if upper > 0:
                if expected.effective_half_life_h is None:
                    raise InputError(
                        f"effective_half_life_h is missing for organ {organ.name!r}: its BED limit needs it; "
                        "add it to the region doses"
                    )
                dose_headroom = _dose_for_bed(
                    bed_limit.value - delivered_bed,
                    expected.effective_half_life_h,
                    organ.alpha_beta_gy.value,
                    organ.repair_half_time_h.value,
                    bed_fn,
                )
                if dose_headroom / upper < allowed_gbq:
                    allowed_gbq = dose_headroom / upper
                    binding = f"BED {bed_limit.value:g} Gy"
        organ_states.append(
            (organ, history, expected, delivered_dose, delivered_sigma, delivered_bed, allowed_gbq, binding)
        )

    allowed_mbq = math.inf
    limiting: str | None = None
    limiting_binding: str | None = None
    for organ, _h, _e, _d, _s, _b, allowed_gbq, binding in organ_states:
        if gbq_to_mbq(allowed_gbq) < allowed_mbq:
            allowed_mbq = gbq_to_mbq(allowed_gbq)
            limiting = organ.name
            limiting_binding = binding

    reasons: list[str] = []
    minimum = protocol.min_activity_mbq.value
    maximum = protocol.max_activity_mbq.value
    given = len(plan.cycles)
    if given >= protocol.max_cycles.value:
        stop_reasons.append(
            f"{given} cycles given: the protocol allows {int(protocol.max_cycles.value)} "
            f"({protocol.max_cycles.citation})"
        )
    if plan.response is not None and plan.response in protocol.stop_on_response:
        stop_reasons.append(
            f"response {plan.response.replace('_', ' ')}: the protocol stops on it "
            f"({protocol.response_citation})"
        )
    if not stop_reasons and allowed_mbq < minimum:
        stop_reasons.append(
            f"{limiting}: the largest activity within its {limiting_binding} limit at "
            f"{plan.confidence:.0%} confidence is "
            f"{allowed_mbq:.0f} MBq, below the protocol minimum {minimum:.0f} MBq "
            f"({protocol.min_activity_mbq.citation})"
        )

    tumour_regions = _tumour_names(plan)
    tumour_histories = []
    for name in tumour_regions:
        history = _history(plan, _name_finder(name), name)
        if history is not None:
            tumour_histories.append((name, history))
    target_dose = protocol.tumour.target_dose_gy
    target_bed = protocol.tumour.target_bed_gy
    tumour_rb = protocol.tumour.alpha_beta_gy is not None and protocol.tumour.repair_half_time_h is not None
    delivered_tumour: list[tuple[str, _History, float, float | None]] = []
    for name, history in tumour_histories:
        dose = sum(_cycle_dose(a, r) for a, r in history.per_cycle)
        bed = None
        if tumour_rb and not all(r.effective_half_life_h is not None for _a, r in history.per_cycle):
            notes.append(f"tumour {name}: effective half-life missing in a cycle, BED not computed")
        elif tumour_rb:
            assert (
                protocol.tumour.alpha_beta_gy is not None and protocol.tumour.repair_half_time_h is not None
            )
            bed = sum(
                _cycle_bed(
                    a,
                    r,
                    protocol.tumour.alpha_beta_gy.value,
                    protocol.tumour.repair_half_time_h.value,
                    bed_fn,
                    f"tumour {name!r}",
                )
                for a, r in history.per_cycle
            )
        delivered_tumour.append((name, history, dose, bed))
    if delivered_tumour and (target_dose is not None or target_bed is not None):
        reached = []
        for _name, _h, dose, bed in delivered_tumour:
            ok_dose = target_dose is None or dose >= target_dose.value
            ok_bed = target_bed is None or (bed is not None and bed >= target_bed.value)
            reached.append(ok_dose and ok_bed)
        if all(reached):
            target = target_dose if target_dose is not None else target_bed
            assert target is not None
            stop_reasons.append(
                f"tumour target reached in all {len(reached)} tumour region(s) "
                f"(target {target.value:g} Gy; {target.citation})"
            )

    stop = bool(stop_reasons)
    if stop:
        recommended = 0.0
        reasons = stop_reasons
    else:
        recommended = min(allowed_mbq, maximum)
        if allowed_mbq >= maximum:
            reasons.append(
                f"protocol maximum {maximum:.0f} MBq given: all organs stay within their limits at "
                f"{plan.confidence:.0%} confidence ({protocol.max_activity_mbq.citation})"
            )
        else:
            reasons.append(
                f"{limiting} ({limiting_binding} limit) limits the activity to {allowed_mbq:.0f} MBq at "
                f"{plan.confidence:.0%} confidence "
                f"(protocol range {minimum:.0f}-{maximum:.0f} MBq)"
            )
        if not plan.cycles:
            reasons.append("no dosimetry yet: the protocol standard applies to the first cycle")
            recommended = protocol.standard_activity_mbq.value
    most_constrained = limiting
    if not stop and (not plan.cycles or allowed_mbq >= maximum):
        limiting = None  # the protocol (standard first activity or maximum), not an organ, sets the activity

    safety_summary = None
    if plan.safety is not None:
        was_stopped = stop
        stop, recommended, limiting, safety_summary = _join_precycle_check(
            plan, stop=stop, recommended=recommended, limiting=limiting, reasons=reasons
        )
        if stop and not was_stopped:  # only the laboratory check stops: drop the dosimetric reasoning
            reasons[:] = [r for r in reasons if r.startswith("pre-cycle")]
    next_gbq = mbq_to_gbq(recommended)
    organs_out = []
    for organ, organ_history, expected, d_dose, d_sigma, d_bed, allowed_gbq, binding in organ_states:
        upper = expected.dose_gy_per_gbq + z * expected.sigma_gy_per_gbq
        bed_limit = organ.bed_limit_for(plan.risk_factors)
        p_bed = p_bed_u = None
        if d_bed is not None:
            assert organ.alpha_beta_gy is not None and organ.repair_half_time_h is not None
            what = f"organ {organ.name!r}"
            args = (expected.effective_half_life_h, organ.alpha_beta_gy.value, organ.repair_half_time_h.value)
            p_bed = d_bed + _bed(expected.dose_gy_per_gbq * next_gbq, *args, bed_fn, what)
            p_bed_u = d_bed + _bed(upper * next_gbq, *args, bed_fn, what)
        citations = [c.citation for c in (organ.dose_limit_gy, bed_limit) if c is not None]
        organs_out.append(
            OrganProjection(
                organ=organ.name,
                delivered_dose_gy=d_dose,
                delivered_dose_sigma_gy=d_sigma,
                delivered_bed_gy=d_bed,
                expected=expected,
                limit_dose_gy=None if organ.dose_limit_gy is None else organ.dose_limit_gy.value,
                limit_bed_gy=None if bed_limit is None else bed_limit.value,
                limit_citation="; ".join(citations),
                allowed_activity_mbq=gbq_to_mbq(allowed_gbq),
                binding_limit=binding,
                projected_dose_gy=d_dose + expected.dose_gy_per_gbq * next_gbq,
                projected_dose_upper_gy=d_dose + upper * next_gbq,
                projected_bed_gy=p_bed,
                projected_bed_upper_gy=p_bed_u,
                regions_used=organ_history.regions_used,
            )
        )
    tumours_out = []
    for name, history, dose, bed in delivered_tumour:
        expected = expected_gy_per_gbq(list(history.measured), estimate=plan.estimate)
        next_dose = expected.dose_gy_per_gbq * next_gbq
        next_bed = None
        if bed is not None:
            assert (
                protocol.tumour.alpha_beta_gy is not None and protocol.tumour.repair_half_time_h is not None
            )
            next_bed = _bed(
                next_dose,
                expected.effective_half_life_h,
                protocol.tumour.alpha_beta_gy.value,
                protocol.tumour.repair_half_time_h.value,
                bed_fn,
                f"tumour {name!r}",
            )
        tumours_out.append(
            TumourProjection(
                name=name,
                delivered_dose_gy=dose,
                delivered_bed_gy=bed,
                expected=expected,
                next_cycle_dose_gy=next_dose,
                next_cycle_bed_gy=next_bed,
                projected_dose_gy=dose + next_dose,
                projected_bed_gy=None if bed is None or next_bed is None else bed + next_bed,
                target_dose_gy=None if target_dose is None else target_dose.value,
                target_bed_gy=None if target_bed is None else target_bed.value,
            )
        )
    return NextCycleResult(
        recommended_activity_mbq=recommended,
        allowed_activity_mbq=allowed_mbq,
        limiting_organ=limiting,
        most_constrained_organ=most_constrained,
        organs=tuple(organs_out),
        tumours=tuple(tumours_out),
        stop=stop,
        reasons=tuple(reasons),
        notes=tuple(notes),
        cycle_number=given + 1,
        confidence=plan.confidence,
        z=z,
        safety=safety_summary,
    )


def _join_precycle_check(
    plan: TreatmentPlan, *, stop: bool, recommended: float, limiting: str | None, reasons: list[str]
) -> tuple[bool, float, str | None, dict[str, Any]]:
    """Apply the laboratory pre-cycle check (:func:`theradose.safety.check_cycle`) to the recommendation.

    ``stop`` → treatment stops; ``delay`` → the cycle is withheld until the toxicity resolves, then given
    at no more than the rule's activity factor × the protocol standard; ``reduce`` → the activity is
    capped the same way. Reasons are appended in words, prefixed "pre-cycle check".
    """
    from theradose.safety import check_cycle

    assert plan.safety is not None
    protocol = plan.protocol
    rules_path = plan.safety.rules_path or protocol.precycle_rules
    if rules_path is None:
        raise InputError(
            f"protocol {protocol.name!r} names no pre-cycle rule file (precycle_rules) and the plan's "
            "[safety] gives none (rules): add one of them; rules of another protocol are never applied"
        )
    decision = check_cycle(
        plan.safety.labs,
        rules_path=rules_path,
        sex=plan.safety.sex,
        age_y=plan.safety.age_y,
        weight_kg=plan.safety.weight_kg,
        previously_reduced_for=plan.safety.previously_reduced_for,
        standard_activity_mbq=protocol.standard_activity_mbq.value,
    )
    for reason in decision.reasons:
        reasons.append(f"pre-cycle check ({decision.decision}): {reason}")
    reasons.extend(f"pre-cycle alert: {alert}" for alert in decision.alerts)
    if decision.decision == "stop":
        stop, recommended = True, 0.0
    elif not stop:
        cap = decision.activity_factor * protocol.standard_activity_mbq.value
        if cap < recommended:
            recommended = cap
            limiting = None
            reasons.append(
                f"pre-cycle check limits the activity to {cap:.0f} MBq "
                f"({decision.activity_factor:g} × the protocol standard)"
            )
        if decision.decision == "delay":
            reasons.append("pre-cycle check: withhold this cycle until the toxicity resolves, then give it")
    summary = {
        "decision": decision.decision,
        "activity_factor": decision.activity_factor,
        "rules_fired": list(decision.rules_fired),
        "reasons": list(decision.reasons),
        "alerts": list(decision.alerts),
        "grades": {g.test: {"value": g.value, "unit": g.unit, "grade": g.grade} for g in decision.grades},
        "source": decision.source,
    }
    return stop, recommended, limiting, summary


def organ_history_gy(
    plan: TreatmentPlan, organ: OrganLimit, *, bed_function: BedFunction | None = None
) -> tuple[tuple[float, ...], tuple[float, ...] | None] | None:
    """Cumulative absorbed dose and BED (Gy) of ``organ`` after each given cycle.

    Returns ``None`` when the organ was never measured; BED is ``None`` without BED parameters.
    """
    bed_fn = bed_function if bed_function is not None else radiobiology_bed_gy
    history = _history(plan, _organ_finder(organ), organ.name)
    if history is None:
        return None
    doses: list[float] = []
    beds: list[float] = []
    with_bed = organ.has_radiobiology and all(
        r.effective_half_life_h is not None for _a, r in history.per_cycle
    )
    for activity_gbq, region in history.per_cycle:
        dose = _cycle_dose(activity_gbq, region)
        doses.append((doses[-1] if doses else 0.0) + dose)
        if with_bed:
            assert organ.alpha_beta_gy is not None and organ.repair_half_time_h is not None
            bed = _cycle_bed(
                activity_gbq,
                region,
                organ.alpha_beta_gy.value,
                organ.repair_half_time_h.value,
                bed_fn,
                f"organ {organ.name!r}",
            )
            beds.append((beds[-1] if beds else 0.0) + bed)
    return tuple(doses), (tuple(beds) if with_bed else None)


def _tumour_names(plan: TreatmentPlan) -> tuple[str, ...]:
    names: list[str] = []
    for cycle in plan.cycles:
        for region in cycle.regions:
            is_tumour = region.kind == "tumour" or region.name.lower() in {t.lower() for t in plan.tumours}
            if is_tumour and region.name.lower() not in {n.lower() for n in names}:
                names.append(region.name)
    return tuple(names)
