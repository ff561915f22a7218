"""Pre-cycle criteria: go, delay or reduce the next cycle from the latest laboratory values.

Rules are data (``data/safety/precycle_<protocol>.toml``), typed in from the prescribing information of
each radiopharmaceutical (cited in the file). Which rule file a protocol uses is stated once, in the
protocol registry (``precycle_rules`` of :func:`theradose.planning.protocols.load_protocol`); callers pass
that file (or their own) as ``rules_path``. No rule file is ever chosen by default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from theradose.errors import InputError
from theradose.safety.ctcae import Grade, grade_lab
from theradose.safety.labs import LabValue, Sex
from theradose.safety.markers import TrendAlert, creatinine_trend_alert
from theradose.safety.renal import cockcroft_gault_ml_min

Decision = Literal["go", "delay", "reduce", "stop"]
_PRECEDENCE: dict[str, int] = {"go": 0, "reduce": 1, "delay": 2, "stop": 3}


@dataclass(frozen=True)
class CycleDecision:
    """Outcome of the pre-cycle check.

    ``decision``: ``go``; ``reduce`` (give the next cycle at ``activity_factor`` × standard);
    ``delay`` (withhold until the toxicity resolves, then give ``activity_factor`` × standard);
    ``stop`` (permanent discontinuation recommended).
    """

    decision: Decision
    reasons: tuple[str, ...]
    activity_factor: float
    recommended_activity_mbq: float | None
    grades: tuple[Grade, ...]
    rules_fired: tuple[str, ...]
    alerts: tuple[str, ...] = field(default=())
    source: str = ""


def load_rules(path: Path) -> dict[str, Any]:
    """Load and check a pre-cycle rule file (a protocol's ``precycle_rules`` or a user file)."""
    try:
        rules = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read rule file {path} ({exc.strerror}): check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"rule file {path}: {exc}") from None
    for i, rule in enumerate(rules.get("rules", []), start=1):
        for key in ("id", "kind", "decision", "reason"):
            if key not in rule:
                raise InputError(f"rule {i} in {path}: key {key!r} is missing")
        if rule["decision"] not in _PRECEDENCE:
            raise InputError(f"rule {rule['id']}: decision must be go, delay, reduce or stop")
    return rules


def _latest_and_baseline(labs: Sequence[LabValue]) -> dict[str, tuple[LabValue, float | None]]:
    by_test: dict[str, list[LabValue]] = {}
    for lab in labs:
        by_test.setdefault(lab.test, []).append(lab)
    out = {}
    for test, values in by_test.items():
        ordered = sorted(values, key=lambda v: v.on)
        latest = ordered[-1]
        baseline = (
            latest.baseline
            if latest.baseline is not None
            else (ordered[0].value if len(ordered) > 1 else None)
        )
        out[test] = (latest, baseline)
    return out


def check_cycle(
    labs: Sequence[LabValue],
    *,
    rules_path: Path,
    sex: Sex | None = None,
    age_y: float | None = None,
    weight_kg: float | None = None,
    previously_reduced_for: Sequence[str] = (),
    standard_activity_mbq: float | None = None,
) -> CycleDecision:
    """Decide whether the next cycle goes ahead, from the latest value of each test.

    Parameters
    ----------
    labs
        Values in canonical units (see :func:`theradose.safety.labs.to_canonical`), any order.
    rules_path
        Rule file: the protocol's (``load_protocol(name).precycle_rules``) or a user file.
    previously_reduced_for
        Rule ids for which the dose was already reduced in an earlier cycle: a rule marked
        ``stop_if_recurrent`` then recommends permanent discontinuation.
    sex, age_y, weight_kg
        Needed for creatinine clearance (Cockcroft-Gault) rules; those rules are skipped with a reason
        when missing.
    """
    if not labs:
        raise InputError(
            "no laboratory values given: the pre-cycle check needs recent blood counts and creatinine"
        )
    rules = load_rules(rules_path)
    standard = standard_activity_mbq or float(rules.get("standard_activity_mbq", 0.0)) or None
    latest = _latest_and_baseline(labs)
    grades: dict[str, Grade] = {}
    for test, (lab, baseline) in latest.items():
        graded = LabValue(lab.test, lab.value, lab.unit, lab.on, baseline, lab.lln, lab.uln)
        grades[test] = grade_lab(graded, sex=sex)
    crcl = crcl_baseline = None
    notes: list[str] = []
    if "creatinine" in latest:
        lab, baseline = latest["creatinine"]
        if sex is not None and age_y is not None and weight_kg is not None:
            crcl = cockcroft_gault_ml_min(lab.value, age_y=age_y, sex=sex, weight_kg=weight_kg)
            if baseline is not None:
                crcl_baseline = cockcroft_gault_ml_min(baseline, age_y=age_y, sex=sex, weight_kg=weight_kg)
    decision: Decision = "go"
    factor = 1.0
    reasons: list[str] = []
    fired: list[str] = []
    for rule in rules.get("rules", []):
        kind = rule["kind"]
        hit = ""
        if kind in ("grade", "symptom"):
            for test in rule["tests"]:
                g = grades.get(test)
                if g is None:
                    continue
                if g.grade >= int(rule["min_grade"]) and g.grade <= int(rule.get("max_grade", 5)):
                    hit = g.rule
                    break
        elif kind == "below":
            for test in rule["tests"]:
                if test in latest and latest[test][0].value < float(rule["threshold"]):
                    hit = f"{test} {latest[test][0].value:g} < {float(rule['threshold']):g}"
        elif kind == "crcl_below":
            if crcl is None:
                if "creatinine" in latest:
                    notes.append(
                        f"rule {rule['id']} not evaluated: give sex, age and weight for creatinine clearance"
                    )
                continue
            if crcl < float(rule["threshold"]):
                hit = f"creatinine clearance {crcl:.0f} mL/min < {float(rule['threshold']):g}"
        elif kind == "creatinine_rise":
            if "creatinine" not in latest or latest["creatinine"][1] is None:
                continue
            lab, baseline = latest["creatinine"]
            assert baseline is not None
            rise = 100.0 * (lab.value / baseline - 1.0)
            if rise >= float(rule["creatinine_rise_percent"]):
                if "crcl_fall_percent" in rule:
                    if crcl is None or crcl_baseline is None:
                        notes.append(
                            f"rule {rule['id']}: creatinine rose {rise:.0f} %; "
                            "give sex, age and weight to check clearance"
                        )
                        continue
                    fall = 100.0 * (1.0 - crcl / crcl_baseline)
                    if fall <= float(rule["crcl_fall_percent"]):
                        continue
                    hit = f"creatinine +{rise:.0f} % and clearance −{fall:.0f} % from baseline"
                else:
                    hit = f"creatinine +{rise:.0f} % from baseline {baseline:g} mg/dL"
        else:
            raise InputError(f"rule {rule['id']}: unknown kind {kind!r}")
        if not hit:
            continue
        fired.append(rule["id"])
        rule_decision: Decision = rule["decision"]
        if rule.get("stop_if_recurrent") and rule["id"] in previously_reduced_for:
            rule_decision = "stop"
            reasons.append(
                f"{hit}: recurred after a dose reduction → permanently discontinue "
                f"[{rule['id']}, {rules.get('source', '')}]"
            )
        else:
            reasons.append(f"{hit}: {rule['reason']} [{rule['id']}, {rules.get('source', '')}]")
        factor = min(factor, float(rule.get("activity_factor", 1.0)))
        if _PRECEDENCE[rule_decision] > _PRECEDENCE[decision]:
            decision = rule_decision
    if decision == "go" and factor < 1.0:
        decision = "reduce"
    alerts: list[str] = []
    creat = [lab for lab in labs if lab.test == "creatinine"]
    alert: TrendAlert | None = creatinine_trend_alert([c.on for c in creat], [c.value for c in creat])
    if alert is not None:
        alerts.append(alert.message)
    if decision == "go":
        reasons.append("no pre-cycle criterion met: go")
    return CycleDecision(
        decision=decision,
        reasons=tuple(reasons + notes),
        activity_factor=factor if decision != "stop" else 0.0,
        recommended_activity_mbq=None if standard is None or decision == "stop" else standard * factor,
        grades=tuple(grades.values()),
        rules_fired=tuple(fired),
        alerts=tuple(alerts),
        source=str(rules.get("source", "")),
    )
