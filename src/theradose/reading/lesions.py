"""The lesion table: one row per lesion or reference region, read from CSV.

Columns (header names are case-insensitive; only ``lesion_id`` is required, every other column is read
when present and needed by the framework that uses it):

==========================  ==========================================================================
column                      meaning
==========================  ==========================================================================
lesion_id                   unique identifier (text); matched across time points when present in both
kind                        ``lesion`` (default) or ``reference`` (a reference region: liver, spleen,
                            parotid, blood_pool; named in ``organ``)
site                        free-text location (e.g. ``left external iliac node``)
organ                       organ name (``liver``, ``lung``, ``bone``, ...); RECIST uses it for the
                            two-lesions-per-organ rule; for reference rows the region name
tissue                      ``lymph_node``, ``bone``, ``solid_organ``, ``soft_tissue``, ``prostate`` or
                            ``other`` (VISION size limits, RECIST node rules, PSMA-RADS 3A/3B)
suv_max, suv_peak, suv_mean SUVbw of the lesion (reference rows: ``suv_mean`` is the reference value)
suv_sd                      reference rows: standard deviation of SUV in the reference region
sul_peak, sul_mean, sul_sd  SUL (lean-body-mass SUV): lesion SULpeak; liver SULmean and SD (PERCIST)
volume_ml                   PSMA-positive / metabolic tumour volume of the lesion in mL (RECIP PSMA-VOL)
short_axis_mm               short-axis diameter (lymph nodes; VISION solid-organ limits)
long_axis_mm                longest diameter (RECIST non-nodal lesions)
soft_tissue_short_axis_mm   short axis of the soft-tissue component of a bone lesion (VISION)
x_mm, y_mm, z_mm            lesion centroid in patient coordinates (DICOM LPS, mm); lesion matching
uptake                      reader's visual uptake: ``none``, ``equivocal`` (alias ``low``) or ``intense``
site_typical                ``yes``/``no``: site typical of the disease (PCa for PSMA-RADS, NET for
                            SSTR-RADS)
anatomic_correlate          ``yes``/``no``: corresponding finding on anatomic imaging (CT/MR)
benign                      ``yes``/``no``: definitively benign (biopsy or pathognomonic on CT/MR)
fdg_positive                ``yes``/``no``: FDG-avid (TheraP discordance)
target                      ``yes``/``no``: RECIST target lesion / NETTER-1 target lesion
measurable                  ``yes``/``no``: overrides the RECIST 1.1 measurability rule (TheraP)
nontarget_response          follow-up rows: the reader's RECIST 1.1 assessment of a non-target lesion:
                            ``absent`` (alias ``cr``), ``present`` (alias ``non-cr/non-pd``),
                            ``progression`` (unequivocal progression; alias ``pd``) or ``ne`` (not
                            evaluated); empty: ``present`` when the row is there (a lymph node with
                            short axis < 10 mm counts as ``absent``), ``absent`` when the row is gone
tlg_sul_ml                  total lesion glycolysis / PSMA uptake of the lesion, SULmean x volume (SUL·mL)
                            (PERCIST 1.0 secondary PMD rule)
distant                     follow-up rows: ``yes``/``no``: a new lesion is distant in the sense of the PSMA
                            PET progression criteria (reader's judgement); empty counts as distant
==========================  ==========================================================================

Example (``examples/reading/baseline.csv``)::

    lesion_id,kind,organ,tissue,suv_max,suv_mean,short_axis_mm,long_axis_mm,x_mm,y_mm,z_mm,uptake
    L1,lesion,pelvic node,lymph_node,24.1,,18,22,-40,20,-300,intense
    liver,reference,liver,,,5.2,,,,,,
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, get_args

from theradose.errors import InputError

Tissue = Literal["lymph_node", "bone", "solid_organ", "soft_tissue", "prostate", "other"]
Uptake = Literal["none", "equivocal", "intense"]
ReferenceName = Literal["liver", "spleen", "parotid", "blood_pool"]

REFERENCE_NAMES: tuple[str, ...] = get_args(ReferenceName)
_UPTAKE_ALIASES = {
    "none": "none",
    "absent": "none",
    "low": "equivocal",
    "equivocal": "equivocal",
    "intense": "intense",
    "high": "intense",
}
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}

_FLOAT_COLUMNS = (
    "suv_max",
    "suv_peak",
    "suv_mean",
    "suv_sd",
    "sul_peak",
    "sul_mean",
    "sul_sd",
    "volume_ml",
    "short_axis_mm",
    "long_axis_mm",
    "soft_tissue_short_axis_mm",
    "tlg_sul_ml",
    "x_mm",
    "y_mm",
    "z_mm",
)
_BOOL_COLUMNS = (
    "site_typical",
    "anatomic_correlate",
    "benign",
    "fdg_positive",
    "target",
    "measurable",
    "distant",
)
NontargetResponse = Literal["absent", "present", "progression", "ne"]
_NONTARGET_ALIASES = {
    "absent": "absent",
    "cr": "absent",
    "present": "present",
    "non-cr/non-pd": "present",
    "non-cr-non-pd": "present",
    "progression": "progression",
    "unequivocal_progression": "progression",
    "pd": "progression",
    "ne": "ne",
    "not_evaluated": "ne",
}


@dataclass(frozen=True)
class Lesion:
    """One lesion row. Values not given are ``None``."""

    lesion_id: str
    site: str = ""
    organ: str = ""
    tissue: str = ""
    suv_max: float | None = None
    suv_peak: float | None = None
    suv_mean: float | None = None
    sul_peak: float | None = None
    volume_ml: float | None = None
    short_axis_mm: float | None = None
    long_axis_mm: float | None = None
    soft_tissue_short_axis_mm: float | None = None
    x_mm: float | None = None
    y_mm: float | None = None
    z_mm: float | None = None
    uptake: str | None = None
    site_typical: bool | None = None
    anatomic_correlate: bool | None = None
    benign: bool | None = None
    fdg_positive: bool | None = None
    target: bool | None = None
    measurable: bool | None = None
    nontarget_response: str | None = None
    tlg_sul_ml: float | None = None
    distant: bool | None = None

    @property
    def centroid_mm(self) -> tuple[float, float, float] | None:
        """(x, y, z) in mm when all three are given."""
        if self.x_mm is None or self.y_mm is None or self.z_mm is None:
            return None
        return (self.x_mm, self.y_mm, self.z_mm)


@dataclass(frozen=True)
class Reference:
    """A reference region (liver, spleen, parotid, blood pool): mean and SD of SUV and SUL."""

    name: str
    suv_mean: float | None = None
    suv_sd: float | None = None
    sul_mean: float | None = None
    sul_sd: float | None = None


@dataclass(frozen=True)
class LesionTable:
    """Lesions and reference regions of one PET scan."""

    lesions: tuple[Lesion, ...]
    references: Mapping[str, Reference] = field(default_factory=dict)
    source: str = ""

    def reference_suv(self, name: str, *, needed_for: str) -> float:
        """Mean SUV of reference region ``name``; InputError naming the missing row otherwise."""
        ref = self.references.get(name)
        if ref is None or ref.suv_mean is None:
            raise InputError(
                f"reference region {name!r} has no suv_mean in {self.source or 'the lesion table'}: "
                f"{needed_for} needs it; add a row 'kind=reference, organ={name}, suv_mean=...' "
                f"or the --{name.replace('_', '-')}-suv option"
            )
        return ref.suv_mean

    def with_reference(self, name: str, suv_mean: float) -> LesionTable:
        """A copy with reference ``name`` set to ``suv_mean`` (other fields kept)."""
        refs = dict(self.references)
        old = refs.get(name, Reference(name))
        refs[name] = replace(old, suv_mean=suv_mean)
        return replace(self, references=refs)


def _parse_bool(value: str, *, column: str, where: str) -> bool | None:
    v = value.strip().lower()
    if v == "":
        return None
    if v in _YES:
        return True
    if v in _NO:
        return False
    raise InputError(f"{column} must be yes or no; got {value!r} at {where}: use yes/no")


def _parse_float(value: str, *, column: str, where: str) -> float | None:
    v = value.strip()
    if v == "":
        return None
    try:
        number = float(v)
    except ValueError:
        raise InputError(f"{column} must be a number; got {value!r} at {where}: fix the value") from None
    if number != number:  # NaN
        return None
    return number


def lesion_table_from_rows(rows: Iterable[Mapping[str, str]], *, source: str = "") -> LesionTable:
    """Build a :class:`LesionTable` from mappings of column name to text (as from :class:`csv.DictReader`).

    Raises
    ------
    InputError
        Missing ``lesion_id``, duplicate ids, non-numeric numbers, unknown ``kind``/``tissue``/``uptake``.
    """
    lesions: list[Lesion] = []
    references: dict[str, Reference] = {}
    seen: set[str] = set()
    known = {f.name for f in fields(Lesion)} | {"kind", "suv_sd", "sul_mean", "sul_sd"}
    for number, raw in enumerate(rows, start=2):
        row = {str(k).strip().lower(): ("" if v is None else str(v)) for k, v in raw.items() if k is not None}
        where = f"{source or 'table'} line {number}"
        if "lesion_id" not in row:
            raise InputError(
                f"column lesion_id is missing in {source or 'the table'}: add a lesion_id column"
            )
        unknown = sorted(set(row) - known)
        if unknown:
            raise InputError(
                f"unknown column(s) {', '.join(unknown)} in {source or 'the table'}: see the lesion table "
                "columns in theradose.reading.lesions"
            )
        lesion_id = row["lesion_id"].strip()
        if not lesion_id:
            raise InputError(f"lesion_id is empty at {where}: give every row an identifier")
        if lesion_id in seen:
            raise InputError(f"lesion_id {lesion_id!r} is repeated at {where}: identifiers must be unique")
        seen.add(lesion_id)
        numbers = {c: _parse_float(row.get(c, ""), column=c, where=where) for c in _FLOAT_COLUMNS}
        kind = row.get("kind", "").strip().lower() or "lesion"
        if kind == "reference":
            name = (row.get("organ", "").strip() or lesion_id).lower().replace(" ", "_")
            if name not in REFERENCE_NAMES:
                raise InputError(
                    f"reference region {name!r} at {where} is not one of {', '.join(REFERENCE_NAMES)}: "
                    "name it in the organ column"
                )
            references[name] = Reference(
                name,
                suv_mean=numbers["suv_mean"],
                suv_sd=numbers["suv_sd"],
                sul_mean=numbers["sul_mean"],
                sul_sd=numbers["sul_sd"],
            )
            continue
        if kind != "lesion":
            raise InputError(f"kind must be lesion or reference; got {kind!r} at {where}")
        tissue = row.get("tissue", "").strip().lower()
        if tissue and tissue not in get_args(Tissue):
            raise InputError(
                f"tissue must be one of {', '.join(get_args(Tissue))}; got {tissue!r} at {where}"
            )
        uptake_raw = row.get("uptake", "").strip().lower()
        uptake: str | None = None
        if uptake_raw:
            if uptake_raw not in _UPTAKE_ALIASES:
                raise InputError(
                    f"uptake must be none, equivocal (low) or intense; got {uptake_raw!r} at {where}"
                )
            uptake = _UPTAKE_ALIASES[uptake_raw]
        for c in (
            "suv_max",
            "suv_peak",
            "suv_mean",
            "sul_peak",
            "volume_ml",
            "short_axis_mm",
            "long_axis_mm",
            "tlg_sul_ml",
        ):
            value = numbers[c]
            if value is not None and value < 0:
                raise InputError(f"{c} must be >= 0; got {value} at {where}")
        bools = {c: _parse_bool(row.get(c, ""), column=c, where=where) for c in _BOOL_COLUMNS}
        nt_raw = row.get("nontarget_response", "").strip().lower().replace(" ", "_")
        nontarget: str | None = None
        if nt_raw:
            if nt_raw not in _NONTARGET_ALIASES:
                raise InputError(
                    f"nontarget_response must be absent, present, progression or ne; got {nt_raw!r} at "
                    f"{where}: use one of these (RECIST 1.1 non-target assessment)"
                )
            nontarget = _NONTARGET_ALIASES[nt_raw]
        lesions.append(
            Lesion(
                lesion_id=lesion_id,
                site=row.get("site", "").strip(),
                organ=row.get("organ", "").strip().lower(),
                tissue=tissue,
                suv_max=numbers["suv_max"],
                suv_peak=numbers["suv_peak"],
                suv_mean=numbers["suv_mean"],
                sul_peak=numbers["sul_peak"],
                volume_ml=numbers["volume_ml"],
                short_axis_mm=numbers["short_axis_mm"],
                long_axis_mm=numbers["long_axis_mm"],
                soft_tissue_short_axis_mm=numbers["soft_tissue_short_axis_mm"],
                x_mm=numbers["x_mm"],
                y_mm=numbers["y_mm"],
                z_mm=numbers["z_mm"],
                uptake=uptake,
                nontarget_response=nontarget,
                tlg_sul_ml=numbers["tlg_sul_ml"],
                **bools,
            )
        )
    return LesionTable(lesions=tuple(lesions), references=references, source=source)


def read_lesion_csv(path: str | Path) -> LesionTable:
    """Read a lesion table from a CSV file (see the module docstring for the columns).

    Raises
    ------
    InputError
        File missing or unreadable, not CSV, or any row invalid (one line naming file, line and column).
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                raise InputError(f"{str(p)!r} is empty: give a CSV with a header row")
            rows = list(reader)
    except FileNotFoundError:
        raise InputError(f"lesion table {str(p)!r} does not exist: give the path of a CSV file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read lesion table {str(p)!r} ({exc}): give a UTF-8 CSV file") from None
    for number, row in enumerate(rows, start=2):
        if None in row:
            raise InputError(f"{p.name} line {number} has more fields than the header: fix the CSV row")
    return lesion_table_from_rows(rows, source=p.name)


def write_lesion_csv(table: LesionTable, path: str | Path) -> Path:
    """Write ``table`` as CSV (lesion rows, then reference rows) in the columns :func:`read_lesion_csv` reads.

    Only columns with at least one value are written. Booleans are written as ``yes``/``no``.
    """
    lesion_columns = [f.name for f in fields(Lesion)]
    reference_columns = ["suv_mean", "suv_sd", "sul_mean", "sul_sd"]
    rows: list[dict[str, str]] = []
    for les in table.lesions:
        row = {"kind": "lesion"}
        for name in lesion_columns:
            value = getattr(les, name)
            if value is None or value == "":
                continue
            row[name] = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        rows.append(row)
    for name, ref in table.references.items():
        row = {"lesion_id": name, "kind": "reference", "organ": name}
        for column in reference_columns:
            value = getattr(ref, column)
            if value is not None:
                row[column] = str(value)
        rows.append(row)
    ordered = ["lesion_id", "kind", *lesion_columns[1:], *reference_columns]
    used = [c for c in ordered if any(c in r for r in rows)]
    p = Path(path)
    try:
        with p.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=used, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise InputError(f"cannot write lesion table {str(p)!r} ({exc}): give a writable path") from None
    return p
