"""Structured output of a PET read: a JSON-ready mapping and a Markdown summary for the pipeline report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from theradose.reading.criteria import Decision, Eligibility
from theradose.reading.lesions import LesionTable
from theradose.reading.response import ResponseResult
from theradose.reading.suv import SuvScale


@dataclass(frozen=True)
class ReadingReport:
    """Everything one PET read produced: SUV conversion, lesion scores, eligibility and response."""

    lesions: LesionTable
    suv: SuvScale | None = None
    scores: Mapping[str, Sequence[Decision]] = field(default_factory=dict)
    eligibility: Sequence[Eligibility] = ()
    responses: Sequence[ResponseResult] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (``theradose.cli._output.to_json`` serialises it)."""
        return {
            "source": self.lesions.source,
            "suv": None if self.suv is None else self.suv.to_dict(),
            "lesions": [dict(les.__dict__) for les in self.lesions.lesions],
            "references": {name: dict(ref.__dict__) for name, ref in self.lesions.references.items()},
            "scores": {fw: [d.to_dict() for d in decisions] for fw, decisions in self.scores.items()},
            "eligibility": [e.to_dict() for e in self.eligibility],
            "responses": [r.to_dict() for r in self.responses],
        }

    def to_markdown(self) -> str:
        """Human-readable summary (Markdown) with every decision and the rule that decided it."""
        out: list[str] = [f"## PET read{f': {self.lesions.source}' if self.lesions.source else ''}", ""]
        if self.suv is not None:
            s = self.suv
            sul = "n/a" if s.sul_scale is None else f"{s.sul_scale:.6g}"
            out += [
                "### SUV conversion",
                "",
                f"- SUVbw scale: {s.suv_bw_scale:.6g} g/Bq; SUL scale: {sul} g/Bq",
                f"- reference time: {s.reference_time.isoformat()} ({s.method})",
                f"- injected {s.injected_activity_mbq:.4g} MBq at {s.administration_time.isoformat()}, "
                f"weight {s.weight_kg:g} kg",
            ]
            out += [f"- note: {n}" for n in s.notes]
            out.append("")
        refs = self.lesions.references
        if refs:
            out += ["### Reference regions", "", "| region | SUVmean | SD |", "|---|---|---|"]
            for name, ref in refs.items():
                out.append(f"| {name} | {_num(ref.suv_mean)} | {_num(ref.suv_sd)} |")
            out.append("")
        if self.lesions.lesions:
            out += [
                "### Lesions",
                "",
                "| lesion | site | SUVmax | SUVpeak | volume (mL) | short axis (mm) |",
                "|---|---|---|---|---|---|",
            ]
            for les in self.lesions.lesions:
                out.append(
                    f"| {les.lesion_id} | {les.site or les.organ or les.tissue} | {_num(les.suv_max)} | "
                    f"{_num(les.suv_peak)} | {_num(les.volume_ml)} | {_num(les.short_axis_mm)} |"
                )
            out.append("")
        for framework, decisions in self.scores.items():
            out += [f"### {framework}", "", "| lesion | category | rule |", "|---|---|---|"]
            out += [f"| {d.lesion_id} | {d.category} | {_cell(d.rule)} |" for d in decisions]
            out.append("")
        for e in self.eligibility:
            out += [f"### Eligibility: {e.trial} — {'eligible' if e.eligible else 'not eligible'}", ""]
            out += [f"- {r}" for r in e.reasons]
            out.append("")
        for r in self.responses:
            out += [f"### Response: {r.criteria} — {r.category}", "", f"- {r.rule}"]
            new = r.details.get("new_lesions")
            if new:
                out.append(f"- new lesions: {', '.join(new)}")
            out.append("")
        return "\n".join(out).rstrip() + "\n"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
