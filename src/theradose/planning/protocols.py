"""The protocol/product registry: treatment protocols and the radiopharmaceuticals they are for.

A protocol is a TOML file. The shipped ones live in ``theradose/data/protocols/`` (one file per protocol,
:func:`available_protocols`); a user may write their own with the same keys (see that folder's README).
Each names its radiopharmaceutical by its code in the product registry (``product``;
:mod:`theradose.products` holds the names and spellings; :func:`protocol_for_product`),
the pre-cycle laboratory rule file it uses (``precycle_rules``), its activity range, schedule, organ-at-risk
limits and tumour target. Every number is an inline table ``{ value = ..., citation = "..." }`` so that the
source of each limit travels with it. Loading validates everything and raises
:class:`~theradose.errors.InputError` with a one-line message naming the key, the value and the fix. An
unknown protocol or product is an error naming the choices, never a fallback to another protocol.

Organs are named as in the organ registry (:mod:`theradose.organs`), which also gives the region names that
mean each organ. Organ limits may be given as absorbed dose (``dose_limit_gy``), as biologically effective
dose (``bed_limit_gy``) or both; a stricter BED limit may apply when the patient has one of the organ's
``risk_factors`` (``bed_limit_with_risk_factors_gy``, e.g. Bodei et al. 2008, EJNMMI 35:1847, for the
kidneys). The linear-quadratic parameters of an organ and of the tumour come from the tissue registry
(:mod:`theradose.tissues`) through the organ's tissue (``[tumour] tissue``); a protocol may override them
with cited values (``alpha_beta_gy``, ``repair_half_time_h``).
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theradose.errors import DataError, InputError
from theradose.products import Product, load_products

#: Folder of the shipped protocol files.
PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "data" / "protocols"
#: Folder of the shipped pre-cycle rule files a protocol's ``precycle_rules`` may name.
PRECYCLE_RULES_DIR = Path(__file__).resolve().parent.parent / "data" / "safety"

SCHEMA_VERSION = 2

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
        Canonical organ name of the organ registry (key in the protocol, e.g. ``"kidneys"``).
    aliases : tuple of str
        Other region names that mean this organ (from the organ registry).
    dose_limit_gy, bed_limit_gy, bed_limit_with_risk_factors_gy : Cited or None
        Cumulative absorbed-dose and BED limits (Gy).
    risk_factors : tuple of str
        Patient risk factors that switch to ``bed_limit_with_risk_factors_gy``.
    alpha_beta_gy, repair_half_time_h : Cited or None
        Linear-quadratic parameters for BED: the organ tissue's (tissue registry) unless the protocol
        overrides them; None for a tissue without them (then no BED limit is allowed).
    tissue : str
        Tissue of the organ (tissue registry).
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
    tissue: str = ""
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
        """Whether a region name (from dosimetry) means this organ in the organ registry."""
        from theradose.organs import find_organ

        organ = find_organ(region_name)
        return organ is not None and organ.name == self.name


@dataclass(frozen=True)
class TumourTarget:
    """Tumour radiobiology (from the tissue registry through ``tissue``) and cumulative target."""

    alpha_beta_gy: Cited | None
    repair_half_time_h: Cited | None
    target_dose_gy: Cited | None
    target_bed_gy: Cited | None
    tissue: str = "tumour"


@dataclass(frozen=True)
class Protocol:
    """A validated treatment protocol (see module docstring for the file format).

    ``precycle_rules`` is the laboratory rule file of :func:`theradose.safety.check_cycle` for this
    protocol (None: the protocol has no pre-cycle rules, and a plan with laboratory values is refused).
    """

    name: str
    title: str
    nuclide: str
    product: Product
    precycle_rules: Path | None
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


def available_protocols() -> tuple[str, ...]:
    """Names of the protocols shipped with theradose."""
    if not PROTOCOL_DIR.is_dir():
        raise DataError(f"protocol folder {PROTOCOL_DIR} is missing: reinstall theradose")
    return tuple(sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml")))


@functools.lru_cache(maxsize=1)
def shipped_protocols() -> tuple[Protocol, ...]:
    """Every shipped protocol, loaded and validated."""
    return tuple(load_protocol(name) for name in available_protocols())


def product_names() -> tuple[str, ...]:
    """Names of the radiopharmaceuticals of the shipped protocols."""
    return tuple(p.product.name for p in shipped_protocols())


def find_protocol_for_product(radiopharmaceutical: str) -> Protocol | None:
    """The shipped protocol whose product ``radiopharmaceutical`` is (any listed spelling), or None."""
    for protocol in shipped_protocols():
        if protocol.product.matches(radiopharmaceutical):
            return protocol
    return None


def protocol_for_product(radiopharmaceutical: str) -> Protocol:
    """The shipped protocol for ``radiopharmaceutical``.

    Raises
    ------
    InputError
        No shipped protocol is for this product; the message names the known products.
    """
    protocol = find_protocol_for_product(radiopharmaceutical)
    if protocol is None:
        known = "; ".join(f"{p.product.name} ({p.name})" for p in shipped_protocols())
        raise InputError(
            f"radiopharmaceutical {radiopharmaceutical!r} has no protocol: known products are {known}; "
            "write a protocol file for it"
        )
    return protocol


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
    base_dir = PROTOCOL_DIR
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
        base_dir = path.resolve().parent
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"protocol {source!r} is not valid TOML ({exc}): fix the syntax") from exc
    return parse_protocol(data, source=source, base_dir=base_dir)


def parse_protocol(data: dict[str, Any], *, source: str = "<dict>", base_dir: Path | None = None) -> Protocol:
    """Validate a protocol given as a parsed TOML mapping (see :func:`load_protocol`).

    ``precycle_rules`` is a file of the shipped rule folder or a path relative to ``base_dir`` (the
    protocol file's folder).
    """
    version = data.get("schema_version")
    if version == 1:
        raise InputError(
            f"schema_version 1 protocols are no longer read ({source}): set schema_version = 2, add "
            "product = <code of the product registry> and precycle_rules, remove organs.*.aliases (region "
            'names come from the organ registry) and write [tumour] tissue = "tumour" instead of its '
            "alpha_beta_gy and repair_half_time_h (see data/protocols/README.md)"
        )
    if version != SCHEMA_VERSION:
        raise InputError(
            f"schema_version must be {SCHEMA_VERSION}; got {version!r} in {source}: "
            f"add 'schema_version = {SCHEMA_VERSION}'"
        )
    _no_unknown(data, _TOP_KEYS, "", source)
    name = _string(data, "name", source)
    title = _string(data, "title", source)
    nuclide = _string(data, "nuclide", source)
    product = _product(data, source)
    precycle_rules = _precycle_rules(data, source, base_dir)
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
    names = [o.name for o in organs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"organs names {twice[0]!r} twice (as two spellings) in {source}: keep one table")

    tumour_table = data.get("tumour", {})
    if not isinstance(tumour_table, dict):
        raise InputError(f"tumour must be a table in {source}: write [tumour]")
    _no_unknown(
        tumour_table,
        {"tissue", "alpha_beta_gy", "repair_half_time_h", "target_dose_gy", "target_bed_gy"},
        "tumour.",
        source,
    )
    tumour_tissue = tumour_table.get("tissue", "tumour")
    if not isinstance(tumour_tissue, str):
        raise InputError(f'tumour.tissue must be a tissue name in {source}: e.g. tissue = "tumour"')
    tumour_ab, tumour_rep, tumour_tissue = _radiobiology(tumour_table, tumour_tissue, "tumour", source)
    tumour = TumourTarget(
        alpha_beta_gy=tumour_ab,
        repair_half_time_h=tumour_rep,
        target_dose_gy=_optional_cited(tumour_table, "tumour.target_dose_gy", source),
        target_bed_gy=_optional_cited(tumour_table, "tumour.target_bed_gy", source),
        tissue=tumour_tissue,
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
        product=product,
        precycle_rules=precycle_rules,
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
    from theradose.organs import get_organ

    prefix = f"organs.{name}"
    if not isinstance(table, dict):
        raise InputError(f"{prefix} must be a table in {source}: write [{prefix}]")
    unknown = sorted(set(table) - _ORGAN_KEYS)
    if unknown:
        raise InputError(
            f"{prefix}.{unknown[0]} is not a known key in {source}: use one of {sorted(_ORGAN_KEYS)}"
        )
    try:
        registered = get_organ(name)
    except InputError as exc:
        raise InputError(f"{prefix} in {source}: {exc}") from None
    alpha_beta, repair, tissue = _radiobiology(table, registered.tissue, prefix, source)
    risk_factors = table.get("risk_factors", [])
    if not isinstance(risk_factors, list) or not all(isinstance(a, str) for a in risk_factors):
        raise InputError(f"{prefix}.risk_factors must be a list of strings in {source}: fix the list")
    organ = OrganLimit(
        name=registered.name,
        aliases=registered.aliases,
        dose_limit_gy=_optional_cited(table, f"{prefix}.dose_limit_gy", source),
        bed_limit_gy=_optional_cited(table, f"{prefix}.bed_limit_gy", source),
        bed_limit_with_risk_factors_gy=_optional_cited(
            table, f"{prefix}.bed_limit_with_risk_factors_gy", source
        ),
        risk_factors=tuple(risk_factors),
        alpha_beta_gy=alpha_beta,
        repair_half_time_h=repair,
        tissue=tissue,
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
            f"{prefix}.bed_limit_gy needs linear-quadratic parameters, but tissue {tissue!r} has none in the "
            f"tissue registry ({source}): add {prefix}.alpha_beta_gy and {prefix}.repair_half_time_h with "
            "citations"
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


def _radiobiology(
    table: dict[str, Any], tissue_name: str, prefix: str, source: str
) -> tuple[Cited | None, Cited | None, str]:
    """α/β and repair half-time of an organ or the tumour: the protocol's cited override, else the tissue
    registry's value cited with the tissue's source."""
    from theradose.tissues import get_tissue

    try:
        tissue = get_tissue(tissue_name)
    except InputError as exc:
        raise InputError(f"{prefix}.tissue in {source}: {exc}") from None
    alpha_beta = _optional_cited(table, f"{prefix}.alpha_beta_gy", source)
    repair = _optional_cited(table, f"{prefix}.repair_half_time_h", source)
    citation = f"tissue registry, {tissue.name}: {tissue.radiobiology_source}"
    if alpha_beta is None and tissue.alpha_beta_gy is not None:
        alpha_beta = Cited(tissue.alpha_beta_gy, citation)
    if repair is None and tissue.repair_half_time_h is not None:
        repair = Cited(tissue.repair_half_time_h, citation)
    return alpha_beta, repair, tissue.name


def _product(data: dict[str, Any], source: str) -> Product:
    """The product the protocol names by its code in the product registry (:mod:`theradose.products`)."""
    code = data.get("product")
    if not isinstance(code, str) or not code.strip():
        codes = ", ".join(load_products())
        raise InputError(f'product must be a product code in {source}: one of {codes} (e.g. product = "...")')
    if code not in load_products():
        codes = ", ".join(load_products())
        raise InputError(
            f"product {code!r} in {source} is not in the product registry: use one of {codes}, or add the "
            "product to data/products/products.toml"
        )
    return load_products()[code]


def _precycle_rules(data: dict[str, Any], source: str, base_dir: Path | None) -> Path | None:
    value = data.get("precycle_rules")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f'precycle_rules must be a rule file name in {source}: e.g. "precycle_psma.toml"')
    shipped = PRECYCLE_RULES_DIR / value
    local = (base_dir / value) if base_dir is not None else None
    for candidate in (local, shipped):
        if candidate is not None and candidate.is_file():
            return candidate.resolve()
    known = ", ".join(sorted(p.name for p in PRECYCLE_RULES_DIR.glob("precycle_*.toml")))
    raise InputError(
        f"precycle_rules {value!r} in {source} is neither a shipped rule file ({known}) nor a file next to "
        "the protocol: fix the name"
    )


_TOP_KEYS = {
    "schema_version",
    "name",
    "title",
    "nuclide",
    "product",
    "precycle_rules",
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
