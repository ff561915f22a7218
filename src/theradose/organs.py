"""The organ registry: canonical organ names, their aliases, SNOMED CT codes, tissue and display colour.

One table (``theradose/data/organs.toml``, sources in the README beside it) names every organ or body
region that dosimetry, planning, the segmentation writers and the plots refer to. Everything that
matches a region name to an organ (the planner's organ limits, the tissue of a region for BED, the
segment codes of a DICOM SEG) goes through :func:`find_organ` / :func:`get_organ`, so the same name means
the same organ everywhere.

Names are matched after :func:`normalise_name` (case-insensitive; spaces and hyphens read as
underscores). An organ with ``numbered = true`` (the tumour) also answers to numbered instances of its
name or aliases: ``tumour_3``, ``lesion_12``, ``tumor-2``.

Public API::

    from theradose.organs import Organ, get_organ, find_organ, organ_names, organs

    get_organ("Left Kidney").name          # 'kidney_left'
    get_organ("kidney_left").part_of       # 'kidneys'
    get_organ("kidneys").code.value        # '64033007' (SNOMED CT, DICOM PS3.16 CID 7154)
    get_organ("spleeen")                   # InputError naming the choices
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from theradose.errors import DataError, InputError

#: File of the registry inside the ``theradose.data`` package.
ORGAN_DATA_FILE = "organs.toml"
SCHEMA_VERSION = 1

#: Coding scheme designator of SNOMED CT in DICOM (PS3.16 section 8).
SNOMED_SCHEME = "SCT"


class Laterality(StrEnum):
    """Side of an organ (DICOM PS3.16 CID 244 Laterality)."""

    LEFT = "left"
    RIGHT = "right"
    BILATERAL = "bilateral"


class Category(StrEnum):
    """DICOM SEG segmented property category of an organ (DICOM PS3.16 CID 7150)."""

    ANATOMICAL_STRUCTURE = "anatomical_structure"
    MORPHOLOGICALLY_ABNORMAL_STRUCTURE = "morphologically_abnormal_structure"


@dataclass(frozen=True)
class Code:
    """A coded concept: value, coding scheme designator and meaning (DICOM PS3.3 section 8.8)."""

    value: str
    scheme: str
    meaning: str


#: SNOMED CT codes of the categories (DICOM PS3.16 CID 7150 Segmentation Property Categories).
CATEGORY_CODES: Mapping[Category, Code] = {
    Category.ANATOMICAL_STRUCTURE: Code("91723000", SNOMED_SCHEME, "Anatomical Structure"),
    Category.MORPHOLOGICALLY_ABNORMAL_STRUCTURE: Code(
        "49755003", SNOMED_SCHEME, "Morphologically Abnormal Structure"
    ),
}
#: SNOMED CT codes of the lateralities (DICOM PS3.16 CID 244 Laterality).
LATERALITY_CODES: Mapping[Laterality, Code] = {
    Laterality.LEFT: Code("7771000", SNOMED_SCHEME, "Left"),
    Laterality.RIGHT: Code("24028007", SNOMED_SCHEME, "Right"),
    Laterality.BILATERAL: Code("51440002", SNOMED_SCHEME, "Bilateral"),
}


@dataclass(frozen=True)
class Organ:
    """One organ of the registry.

    Attributes
    ----------
    name : str
        Canonical name (``kidneys``, ``kidney_left``, ``tumour`` ...).
    title : str
        Display name.
    aliases : tuple of str
        Other spellings meaning this organ (normalised, see :func:`normalise_name`).
    code : Code
        SNOMED CT concept of the structure (DICOM PS3.16; the CIDs listing it are in ``code_cids``).
    code_cids : str
        DICOM PS3.16 context groups that list ``code`` (documentation).
    category : Category
    laterality : Laterality or None
        None for an unpaired organ.
    paired : bool
        Whether the organ is made of a left and a right part.
    parts : tuple of str
        Canonical names of the organs it is made of (empty for a leaf).
    part_of : str or None
        The organ this one is a part of (``kidney_left`` → ``kidneys``).
    tissue : str
        Tissue of its voxels in the tissue registry (:mod:`theradose.tissues`).
    display_rgb : tuple of 3 int
        Recommended display colour, sRGB 0-255.
    numbered : bool
        Numbered instances (``tumour_3``) name this organ too.
    """

    name: str
    title: str
    aliases: tuple[str, ...]
    code: Code
    code_cids: str
    category: Category
    laterality: Laterality | None
    paired: bool
    parts: tuple[str, ...]
    part_of: str | None
    tissue: str
    display_rgb: tuple[int, int, int]
    numbered: bool = False

    @property
    def category_code(self) -> Code:
        """SNOMED CT code of :attr:`category` (SEG Segmented Property Category Code Sequence)."""
        return CATEGORY_CODES[self.category]

    @property
    def laterality_code(self) -> Code | None:
        """SNOMED CT code of :attr:`laterality` (SEG Segmented Property Type Modifier), or None."""
        return None if self.laterality is None else LATERALITY_CODES[self.laterality]

    @property
    def display_cielab(self) -> tuple[int, int, int]:
        """Recommended Display CIELab Value (0062,000D) of :attr:`display_rgb` (see :func:`dicom_cielab`)."""
        return dicom_cielab(self.display_rgb)

    @property
    def display_hex(self) -> str:
        """:attr:`display_rgb` as ``#rrggbb`` (for plots and web pages)."""
        return "#{:02x}{:02x}{:02x}".format(*self.display_rgb)

    @property
    def is_tumour(self) -> bool:
        """Whether this is the tumour entry (a morphologically abnormal structure)."""
        return self.category is Category.MORPHOLOGICALLY_ABNORMAL_STRUCTURE


def normalise_name(name: str) -> str:
    """Lower case, surrounding blanks dropped, spaces and hyphens read as underscores."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


_NUMBERED = re.compile(r"^(?P<base>[a-z_]+?)_?(?P<number>\d+)$")


@dataclass(frozen=True)
class _Registry:
    organs: Mapping[str, Organ]
    index: Mapping[str, str]  # normalised name or alias -> canonical name


def _fail(where: str, problem: str) -> DataError:
    return DataError(f"{ORGAN_DATA_FILE}: {where} {problem}: reinstall theradose or fix the file")


def _code(entry: Any, where: str) -> tuple[Code, str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), str) or not entry.get("meaning"):
        raise _fail(f"{where}.code", "must be { value = '...', meaning = '...' }")
    return Code(str(entry["value"]), SNOMED_SCHEME, str(entry["meaning"])), str(entry.get("cid", ""))


def _rgb(value: Any, where: str) -> tuple[int, int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    ):
        raise _fail(f"{where}.display_rgb", "must be three integers 0-255")
    return (value[0], value[1], value[2])


def _organ(name: str, entry: Any) -> Organ:
    if not isinstance(entry, dict):
        raise _fail(name, "must be a table")
    code, cids = _code(entry.get("code"), name)
    laterality = entry.get("laterality")
    try:
        category = Category(str(entry.get("category")))
        side = None if laterality is None else Laterality(laterality)
    except ValueError as exc:
        raise _fail(name, f"has an unknown category or laterality ({exc})") from None
    aliases = entry.get("aliases", [])
    parts = entry.get("parts", [])
    for key, value in (("aliases", aliases), ("parts", parts)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(f"{name}.{key}", "must be a list of strings")
    tissue = entry.get("tissue")
    if not isinstance(tissue, str) or not tissue:
        raise _fail(f"{name}.tissue", "must name a tissue of the tissue registry")
    return Organ(
        name=name,
        title=str(entry.get("title", name)),
        aliases=tuple(normalise_name(a) for a in aliases),
        code=code,
        code_cids=cids,
        category=category,
        laterality=side,
        paired=bool(entry.get("paired", False)),
        parts=tuple(parts),
        part_of=None,
        tissue=tissue,
        display_rgb=_rgb(entry.get("display_rgb"), name),
        numbered=bool(entry.get("numbered", False)),
    )


@functools.lru_cache(maxsize=1)
def _registry() -> _Registry:
    try:
        text = resources.files("theradose.data").joinpath(ORGAN_DATA_FILE).read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"cannot read {ORGAN_DATA_FILE} ({exc}): reinstall theradose") from None
    if raw.pop("schema_version", None) != SCHEMA_VERSION:
        raise _fail("schema_version", f"must be {SCHEMA_VERSION}")
    built = {name: _organ(name, entry) for name, entry in raw.items()}
    parent: dict[str, str] = {}
    for organ in built.values():
        for part in organ.parts:
            if part not in built:
                raise _fail(f"{organ.name}.parts", f"names {part!r}, which is not an organ")
            if part in parent:
                raise _fail(f"{organ.name}.parts", f"names {part!r}, already a part of {parent[part]!r}")
            parent[part] = organ.name
        if organ.paired and not organ.parts:
            raise _fail(organ.name, "is paired but lists no parts")
    organs_out = {name: dataclasses.replace(organ, part_of=parent.get(name)) for name, organ in built.items()}
    index: dict[str, str] = {}
    for organ in organs_out.values():
        for key in (normalise_name(organ.name), *organ.aliases):
            if key in index and index[key] != organ.name:
                raise _fail(organ.name, f"alias {key!r} also names {index[key]!r}")
            index[key] = organ.name
    return _Registry(organs_out, index)


def organs() -> tuple[Organ, ...]:
    """Every organ of the registry, in file order."""
    return tuple(_registry().organs.values())


def organ_names() -> tuple[str, ...]:
    """Canonical names of the organs, in file order."""
    return tuple(_registry().organs)


def find_organ(name: str) -> Organ | None:
    """The organ that ``name`` (canonical, alias or numbered instance) means, or None.

    Use for region names that may legitimately be no organ (a user's own region); use
    :func:`get_organ` where an unknown name is an error.
    """
    registry = _registry()
    key = normalise_name(name)
    canonical = registry.index.get(key)
    if canonical is None:
        numbered = _NUMBERED.match(key)
        if numbered is not None:
            base = registry.index.get(numbered.group("base").rstrip("_"))
            if base is not None and registry.organs[base].numbered:
                canonical = base
    return None if canonical is None else registry.organs[canonical]


def get_organ(name: str) -> Organ:
    """The organ that ``name`` means.

    Raises
    ------
    InputError
        ``name`` is no organ of the registry; the message lists the canonical names (and a close match).
    """
    organ = find_organ(name)
    if organ is not None:
        return organ
    registry = _registry()
    close = difflib.get_close_matches(normalise_name(name), list(registry.index), n=1, cutoff=0.6)
    hint = f" (did you mean {registry.index[close[0]]!r}?)" if close else ""
    raise InputError(
        f"organ {name!r} is not in the organ registry{hint}: use one of {', '.join(registry.organs)} "
        "or one of their aliases"
    )


def leaf_parts(name: str) -> tuple[Organ, ...]:
    """The organs without parts that ``name`` is made of (itself when it has none).

    ``leaf_parts("salivary_glands")`` → the left and right parotid and submandibular glands.
    """
    organ = get_organ(name)
    if not organ.parts:
        return (organ,)
    return tuple(leaf for part in organ.parts for leaf in leaf_parts(part))


def is_part_of(part: str, whole: str) -> bool:
    """Whether organ ``part`` lies within organ ``whole`` (through any number of ``part_of`` steps)."""
    organ: Organ | None = get_organ(part)
    target = get_organ(whole).name
    while organ is not None and organ.part_of is not None:
        if organ.part_of == target:
            return True
        organ = get_organ(organ.part_of)
    return False


# ------------------------------------------------------------------------------------------ colour
#: CIE 1931 tristimulus values of the D65 white point, Y = 100 (IEC 61966-2-1:1999, sRGB).
D65_WHITE_XYZ = (95.047, 100.0, 108.883)


def _srgb_to_linear(channel: float) -> float:
    """sRGB transfer function inverted (IEC 61966-2-1:1999, section 5.2)."""
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def srgb_to_cielab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour given as 0-255 integers.

    sRGB → linear RGB → XYZ with the matrix of the sRGB primaries and D65 white (IEC 61966-2-1:1999
    section 5.2 gives it to 4 digits; here to 7, so that white maps to a* = b* = 0) → L*a*b*
    (CIE 15:2004, section 8.2.1) relative to the D65 white.
    """
    r, g, b = (_srgb_to_linear(v / 255.0) for v in rgb)
    x = 100.0 * (0.4124564 * r + 0.3575761 * g + 0.1804375 * b)
    y = 100.0 * (0.2126729 * r + 0.7151522 * g + 0.0721750 * b)
    z = 100.0 * (0.0193339 * r + 0.1191920 * g + 0.9503041 * b)

    def f(t: float) -> float:
        epsilon = (6.0 / 29.0) ** 3
        return (
            math.copysign(abs(t) ** (1.0 / 3.0), t) if t > epsilon else t / (3 * (6.0 / 29.0) ** 2) + 4 / 29
        )

    fx, fy, fz = (f(v / w) for v, w in zip((x, y, z), D65_WHITE_XYZ, strict=True))
    return (116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz))


def dicom_cielab(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """DICOM Recommended Display CIELab Value of an sRGB colour.

    L* 0..100 is scaled to 0..65535 and a*, b* -128..127 to 0..65535 (DICOM PS3.3 section C.10.7.1.1).
    """
    lightness, a_star, b_star = srgb_to_cielab(rgb)
    scale = 0xFFFF
    return (
        round(min(max(lightness, 0.0), 100.0) * scale / 100.0),
        round((min(max(a_star, -128.0), 127.0) + 128.0) * scale / 255.0),
        round((min(max(b_star, -128.0), 127.0) + 128.0) * scale / 255.0),
    )


__all__ = [
    "CATEGORY_CODES",
    "LATERALITY_CODES",
    "Category",
    "Code",
    "Laterality",
    "Organ",
    "dicom_cielab",
    "find_organ",
    "get_organ",
    "is_part_of",
    "leaf_parts",
    "normalise_name",
    "organ_names",
    "organs",
    "srgb_to_cielab",
]
