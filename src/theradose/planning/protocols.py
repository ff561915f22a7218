"""Treatment protocols: activity range, schedule, organ-at-risk limits, tumour targets.

A protocol is a TOML file. The shipped ones (``psma``, ``dotatate``) live in
``theradose/data/protocols/``; a user may write their own with the same keys (see that folder's
README). Every number is an inline table ``{ value = ..., citation = "..." }`` so that the source of
each limit travels with it. Loading validates everything and raises :class:`~theradose.errors.InputError`
with a one-line message naming the key, the value and the fix.

Organ limits may be given as absorbed dose (``dose_limit_gy``), as biologically effective dose
(``bed_limit_gy``) or both; a stricter BED limit may apply when the patient has one of the organ's
``risk_factors`` (``bed_limit_with_risk_factors_gy``, e.g. Bodei et al. 2008, EJNMMI 35:1847, for the
kidneys). A BED limit needs the organ's linear-quadratic parameters (``alpha_beta_gy``,
``repair_half_time_h``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theradose.errors import DataError, InputError

#: Folder of the shipped protocol files.
PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "data" / "protocols"

SCHEMA_VERSION = 1

#: Response categories a protocol may stop on (RECIST 1.1 / PERCIST / PSMA-PET vocabulary).
RESPONSE_STATUSES = (
    "complete_response",
    "partial_response",
    "stable_disease",
    "progressive_disease",
)


@dataclass(frozen=True)
class Cited:
    """A number with the source it comes from."""

    value: float
    citation: str


@dataclass(frozen=True)
class OrganLimit:
    """Limits and radiobiological parameters of one organ at risk.

    Attributes
    ----------
    name : str
        Canonical organ name (key in the protocol, e.g. ``"kidneys"``).
    aliases : tuple of str
        Other region names that mean this organ (matched case-insensitively).
    dose_limit_gy, bed_limit_gy, bed_limit_with_risk_factors_gy : Cited or None
        Cumulative absorbed-dose and BED limits (Gy).
    risk_factors : tuple of str
        Patient risk factors that switch to ``bed_limit_with_risk_factors_gy``.
    alpha_beta_gy, repair_half_time_h : Cited or None
        Linear-quadratic parameters for BED (required when a BED limit is given).
    dose_method : str or None
        For the red marrow: which dose the planner uses, ``"blood"`` (EANM blood-based method) or
        ``"image"`` (vertebral VOI scaled by the ICRP fraction), with ``dose_method_citation``.
    """

    name: str
    aliases: tuple[str, ...]
    dose_limit_gy: Cited | None
    bed_limit_gy: Cited | None
    bed_limit_with_risk_factors_gy: Cited | None
    risk_factors: tuple[str, ...]
    alpha_beta_gy: Cited | None
    repair_half_time_h: Cited | None
    dose_method: str | None = None

    @property
    def has_radiobiology(self) -> bool:
        """Whether BED can be computed for this organ."""
        return self.alpha_beta_gy is not None and self.repair_half_time_h is not None

    def bed_limit_for(self, patient_risk_factors: tuple[str, ...]) -> Cited | None:
        """The BED limit that applies to a patient with the given risk factors."""
        present = {r.lower() for r in patient_risk_factors} & {r.lower() for r in self.risk_factors}
        if present and self.bed_limit_with_risk_factors_gy is not None:
            return self.bed_limit_with_risk_factors_gy
        return self.bed_limit_gy

    def matches(self, region_name: str) -> bool:
        """Whether a region name (from dosimetry) refers to this organ."""
        key = _normalise(region_name)
        return key == _normalise(self.name) or key in {_normalise(a) for a in self.aliases}


@dataclass(frozen=True)
class TumourTarget:
    """Tumour radiobiology and cumulative target (dose and/or BED)."""

    alpha_beta_gy: Cited | None
    repair_half_time_h: Cited | None
    target_dose_gy: Cited | None
    target_bed_gy: Cited | None


@dataclass(frozen=True)
class Protocol:
    """A validated treatment protocol (see module docstring for the file format)."""

    name: str
    title: str
    nuclide: str
    standard_activity_mbq: Cited
    min_activity_mbq: Cited
    max_activity_mbq: Cited
    max_cycles: Cited
    interval_weeks: Cited
    organs: tuple[OrganLimit, ...]
    tumour: TumourTarget
    stop_on_response: tuple[str, ...]
    response_citation: str
    source: str

    def organ(self, name: str) -> OrganLimit:
        """The organ whose name or alias is ``name``."""
        for organ in self.organs:
            if organ.matches(name):
                return organ
        known = ", ".join(o.name for o in self.organs)
        raise InputError(f"organ {name!r} is not in protocol {self.name!r}: use one of {known}")


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def available_protocols() -> tuple[str, ...]:
    """Names of the protocols shipped with theradose."""
    if not PROTOCOL_DIR.is_dir():
        raise DataError(f"protocol folder {PROTOCOL_DIR} is missing: reinstall theradose")
    return tuple(sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml")))


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load and validate a protocol by shipped name (``"psma"``) or from a TOML file path.

    Parameters
    ----------
    name_or_path : str or Path
        A shipped protocol name (see :func:`available_protocols`) or the path of a TOML file.

    Returns
    -------
    Protocol

    Raises
    ------
    InputError
        Unknown name, unreadable file, invalid TOML or an invalid/missing key (the message names it).
    """
    text: str
    source: str
    candidate = str(name_or_path)
    if candidate in available_protocols():
        text = (PROTOCOL_DIR / f"{candidate}.toml").read_text(encoding="utf-8")
        source = f"theradose:{candidate}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            shipped = ", ".join(available_protocols())
            raise InputError(
                f"protocol {candidate!r} is neither a shipped protocol ({shipped}) nor an existing file: "
                "give a shipped name or the path of a protocol TOML"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"protocol file {str(path)!r} cannot be read ({exc}): check the file") from exc
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"protocol {source!r} is not valid TOML ({exc}): fix the syntax") from exc
    return parse_protocol(data, source=source)


def parse_protocol(data: dict[str, Any], *, source: str = "<dict>") -> Protocol:
    """Validate a protocol given as a parsed TOML mapping (see :func:`load_protocol`)."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(
            f"schema_version must be {SCHEMA_VERSION}; got {version!r} in {source}: "
            f"add 'schema_version = {SCHEMA_VERSION}'"
        )
    _no_unknown(data, _TOP_KEYS, "", source)
    name = _string(data, "name", source)
    title = _string(data, "title", source)
    nuclide = _string(data, "nuclide", source)
    activity = _table(data, "activity", source)
    schedule = _table(data, "schedule", source)
    _no_unknown(activity, {"standard_mbq", "min_mbq", "max_mbq"}, "activity.", source)
    _no_unknown(schedule, {"max_cycles", "interval_weeks"}, "schedule.", source)
    standard = _cited(activity, "activity.standard_mbq", source, positive=True)
    minimum = _cited(activity, "activity.min_mbq", source, positive=True)
    maximum = _cited(activity, "activity.max_mbq", source, positive=True)
    if not minimum.value <= standard.value <= maximum.value:
        raise InputError(
            f"activity.min_mbq <= activity.standard_mbq <= activity.max_mbq must hold; got {minimum.value}, "
            f"{standard.value}, {maximum.value} in {source}: fix the activity range"
        )
    max_cycles = _cited(schedule, "schedule.max_cycles", source, positive=True)
    if max_cycles.value != int(max_cycles.value):
        raise InputError(
            f"schedule.max_cycles must be a whole number; got {max_cycles.value} in {source}: use an integer"
        )
    interval = _cited(schedule, "schedule.interval_weeks", source, positive=True)

    organs_table = _table(data, "organs", source)
    if not organs_table:
        raise InputError(f"organs must list at least one organ at risk in {source}: add [organs.<name>]")
    organs = tuple(_organ(key, value, source) for key, value in organs_table.items())

    tumour_table = data.get("tumour", {})
    if not isinstance(tumour_table, dict):
        raise InputError(f"tumour must be a table in {source}: write [tumour]")
    _no_unknown(
        tumour_table,
        {"alpha_beta_gy", "repair_half_time_h", "target_dose_gy", "target_bed_gy"},
        "tumour.",
        source,
    )
    tumour = TumourTarget(
        alpha_beta_gy=_optional_cited(tumour_table, "tumour.alpha_beta_gy", source),
        repair_half_time_h=_optional_cited(tumour_table, "tumour.repair_half_time_h", source),
        target_dose_gy=_optional_cited(tumour_table, "tumour.target_dose_gy", source),
        target_bed_gy=_optional_cited(tumour_table, "tumour.target_bed_gy", source),
    )
    if tumour.target_bed_gy is not None and (
        tumour.alpha_beta_gy is None or tumour.repair_half_time_h is None
    ):
        raise InputError(
            f"tumour.target_bed_gy needs tumour.alpha_beta_gy and tumour.repair_half_time_h in {source}: "
            "add them with citations"
        )

    response = data.get("response", {})
    if not isinstance(response, dict):
        raise InputError(f"response must be a table in {source}: write [response]")
    _no_unknown(response, {"stop_on", "citation"}, "response.", source)
    stop_on = response.get("stop_on", [])
    if not isinstance(stop_on, list) or any(s not in RESPONSE_STATUSES for s in stop_on):
        raise InputError(
            f"response.stop_on must be a list drawn from {list(RESPONSE_STATUSES)}; got {stop_on!r} "
            f"in {source}: fix the list"
        )
    response_citation = ""
    if stop_on:
        response_citation = _string(response, "citation", source, prefix="response.")
    return Protocol(
        name=name,
        title=title,
        nuclide=nuclide,
        standard_activity_mbq=standard,
        min_activity_mbq=minimum,
        max_activity_mbq=maximum,
        max_cycles=max_cycles,
        interval_weeks=interval,
        organs=organs,
        tumour=tumour,
        stop_on_response=tuple(stop_on),
        response_citation=response_citation,
        source=source,
    )


_ORGAN_KEYS = {
    "aliases",
    "dose_limit_gy",
    "bed_limit_gy",
    "bed_limit_with_risk_factors_gy",
    "risk_factors",
    "risk_factors_citation",
    "alpha_beta_gy",
    "repair_half_time_h",
    "dose_method",
    "dose_method_citation",
}

#: Methods a protocol may name for the red marrow dose the planner uses (theradose.dosimetry.marrow).
MARROW_DOSE_METHODS = ("blood", "image")


def _organ(name: str, table: Any, source: str) -> OrganLimit:
    prefix = f"organs.{name}"
    if not isinstance(table, dict):
        raise InputError(f"{prefix} must be a table in {source}: write [{prefix}]")
    unknown = sorted(set(table) - _ORGAN_KEYS)
    if unknown:
        raise InputError(
            f"{prefix}.{unknown[0]} is not a known key in {source}: use one of {sorted(_ORGAN_KEYS)}"
        )
    aliases = table.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InputError(f"{prefix}.aliases must be a list of strings in {source}: fix the list")
    risk_factors = table.get("risk_factors", [])
    if not isinstance(risk_factors, list) or not all(isinstance(a, str) for a in risk_factors):
        raise InputError(f"{prefix}.risk_factors must be a list of strings in {source}: fix the list")
    organ = OrganLimit(
        name=name,
        aliases=tuple(aliases),
        dose_limit_gy=_optional_cited(table, f"{prefix}.dose_limit_gy", source),
        bed_limit_gy=_optional_cited(table, f"{prefix}.bed_limit_gy", source),
        bed_limit_with_risk_factors_gy=_optional_cited(
            table, f"{prefix}.bed_limit_with_risk_factors_gy", source
        ),
        risk_factors=tuple(risk_factors),
        alpha_beta_gy=_optional_cited(table, f"{prefix}.alpha_beta_gy", source),
        repair_half_time_h=_optional_cited(table, f"{prefix}.repair_half_time_h", source),
        dose_method=_dose_method(table, prefix, source),
    )
    if organ.dose_limit_gy is None and organ.bed_limit_gy is None:
        raise InputError(
            f"{prefix} needs dose_limit_gy or bed_limit_gy in {source}: add a limit with its citation"
        )
    if organ.bed_limit_with_risk_factors_gy is not None:
        if organ.bed_limit_gy is None:
            raise InputError(
                f"{prefix}.bed_limit_with_risk_factors_gy needs {prefix}.bed_limit_gy in {source}: add it"
            )
        if not risk_factors:
            raise InputError(
                f"{prefix}.risk_factors is empty but bed_limit_with_risk_factors_gy is set in {source}: "
                "list the risk factors"
            )
        _string(table, "risk_factors_citation", source, prefix=f"{prefix}.")
    if organ.bed_limit_gy is not None and not organ.has_radiobiology:
        raise InputError(
            f"{prefix}.bed_limit_gy needs {prefix}.alpha_beta_gy and {prefix}.repair_half_time_h in "
            f"{source}: add them with citations"
        )
    return organ


def _dose_method(table: dict[str, Any], prefix: str, source: str) -> str | None:
    if "dose_method" not in table:
        return None
    method = table["dose_method"]
    if method not in MARROW_DOSE_METHODS:
        raise InputError(
            f"{prefix}.dose_method = {method!r} in {source}: choose one of {', '.join(MARROW_DOSE_METHODS)}"
        )
    _string(table, "dose_method_citation", source, prefix=f"{prefix}.")
    return str(method)


_TOP_KEYS = {
    "schema_version",
    "name",
    "title",
    "nuclide",
    "activity",
    "schedule",
    "organs",
    "tumour",
    "response",
}


def _no_unknown(table: dict[str, Any], known: set[str], prefix: str, source: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(f"{prefix}{unknown[0]} is not a known key in {source}: use one of {sorted(known)}")


def _table(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise InputError(f"{key} is missing or not a table in {source}: add a [{key}] section")
    return value


def _string(data: dict[str, Any], key: str, source: str, *, prefix: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{prefix}{key} must be a non-empty string; got {value!r} in {source}: set it")
    return value


def _optional_cited(table: dict[str, Any], dotted: str, source: str) -> Cited | None:
    if dotted.rsplit(".", 1)[-1] not in table:
        return None
    return _cited(table, dotted, source, positive=True)


def _cited(table: dict[str, Any], dotted: str, source: str, *, positive: bool) -> Cited:
    key = dotted.rsplit(".", 1)[-1]
    entry = table.get(key)
    if entry is None:
        raise InputError(
            f"{dotted} is missing in {source}: add '{key} = {{ value = ..., citation = \"...\" }}'"
        )
    if not isinstance(entry, dict):
        raise InputError(
            f'{dotted} must be a table {{ value = ..., citation = "..." }}; got {entry!r} in {source}: '
            "add the citation"
        )
    value = entry.get("value")
    citation = entry.get("citation")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{dotted}.value must be a finite number; got {value!r} in {source}: fix the value")
    if positive and value <= 0:
        raise InputError(f"{dotted}.value must be > 0; got {value!r} in {source}: fix the value")
    if not isinstance(citation, str) or not citation.strip():
        raise InputError(f"{dotted}.citation must be a non-empty string in {source}: cite the source")
    extra = sorted(set(entry) - {"value", "citation"})
    if extra:
        raise InputError(f"{dotted}.{extra[0]} is not a known key in {source}: use only value and citation")
    return Cited(float(value), citation)
