"""Analytic stylised adult anatomy on any voxel grid.

The organ shapes follow the mathematical (stylised) adult phantoms of the MIRD committee — Snyder, Ford
& Warner 1978 (MIRD Pamphlet 5 revised) and Cristy & Eckerman 1987 (ORNL/TM-8381, Vol. I, "Specific
absorbed fractions of energy at various ages from internal photon sources") — with these documented
changes, made so that the phantom fits a clinical SPECT/CT field of view and carries the organs of
177Lu radioligand therapy:

* trunk semi-axes 175 mm (lateral) × 110 mm (antero-posterior) instead of 200 × 100 mm, a more
  CT-like adult abdominal outline; the neck is 80 mm long instead of 140 mm;
* liver: the Cristy–Eckerman elliptic cylinder with its oblique cut plane, semi-axes reduced from
  165 × 120 mm to 135 × 100 mm so that its volume (~1.7 L) matches the ICRP 89 reference mass 1.8 kg;
* lungs are upper half-ellipsoids without the heart cut-out; spleen semi-axes are scaled so that its
  volume is close to the ICRP 89 reference mass;
* kidneys have a cortex and a medulla (medulla = the kidney ellipsoid scaled by 0.67, i.e. ~30 % of the
  kidney volume, close to the cortex fraction ~70 % reported in anatomy texts);
* salivary glands (parotid, submandibular) and lacrimal glands are ellipsoids sized to the ICRP 89
  reference masses (ICRP Publication 89, 2002, Table 2.8: parotid 25 g each, submandibular 12.5 g each;
  lacrimal glands 0.7 g each) and placed at their anatomical sites;
* the skeleton is reduced to a thoraco-lumbar spine (elliptic cylinder) and a pelvic ring (hollow
  elliptic cylinder), each a cortical shell around red marrow (spongiosa);
* the bowel is a single ellipsoid in the lower abdomen (small + large intestine with contents).

Coordinates are DICOM patient coordinates (LPS, mm): x towards the patient's left, y posterior, z
towards the head; z = 0 is the pelvic floor (base of the trunk), as in the MIRD phantoms. Arrays are in
the order (slice, row, column) = (z, y, x) with slice index increasing towards the head.

Tissue CT numbers are in ``src/theradose/data/phantoms/tissues.toml``; densities come from the tissue
registry (:mod:`theradose.tissues`, ``data/tissues.toml``), both cited there.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import DataError, InputError
from theradose.units import mm3_to_ml

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
LabelArray = npt.NDArray[np.int16]

TumourSite = Literal["liver", "bone", "lymph_node"]
TUMOUR_SITES: tuple[TumourSite, ...] = ("liver", "bone", "lymph_node")

#: Stable label table (name → integer). Never renumber: files written by older versions stay readable.
ORGAN_LABELS: Mapping[str, int] = {
    "background": 0,
    "body": 1,
    "lungs": 2,
    "liver": 3,
    "spleen": 4,
    "kidney_left_cortex": 5,
    "kidney_left_medulla": 6,
    "kidney_right_cortex": 7,
    "kidney_right_medulla": 8,
    "bladder": 9,
    "parotid_left": 10,
    "parotid_right": 11,
    "submandibular_left": 12,
    "submandibular_right": 13,
    "lacrimal_left": 14,
    "lacrimal_right": 15,
    "bone": 16,
    "red_marrow": 17,
    "bowel": 18,
}
#: Label of the first tumour; tumour ``n`` (1-based) has label ``TUMOUR_LABEL_OFFSET + n``.
TUMOUR_LABEL_OFFSET = 100

#: Named groups of labels reported as regions in addition to the single labels.
REGION_GROUPS: Mapping[str, tuple[str, ...]] = {
    "kidney_left": ("kidney_left_cortex", "kidney_left_medulla"),
    "kidney_right": ("kidney_right_cortex", "kidney_right_medulla"),
    "kidneys": ("kidney_left_cortex", "kidney_left_medulla", "kidney_right_cortex", "kidney_right_medulla"),
    "parotids": ("parotid_left", "parotid_right"),
    "submandibulars": ("submandibular_left", "submandibular_right"),
    "salivary_glands": ("parotid_left", "parotid_right", "submandibular_left", "submandibular_right"),
    "lacrimal_glands": ("lacrimal_left", "lacrimal_right"),
}

#: Extent of the anatomy along z (mm): pelvic floor minus a margin to the vertex.
ANATOMY_Z_RANGE_MM: tuple[float, float] = (-30.0, 1000.0)


# --------------------------------------------------------------------------- shapes (reference frame)
Predicate = Callable[[FloatArray, FloatArray, FloatArray], BoolArray]


@dataclass(frozen=True)
class _Shape:
    """A solid in the reference frame: predicate on (x, y, z) mm plus its bounding box (lo, hi)."""

    inside: Predicate
    lo_mm: tuple[float, float, float]
    hi_mm: tuple[float, float, float]


def _ellipsoid(
    centre: tuple[float, float, float],
    semi: tuple[float, float, float],
    extra: Predicate | None = None,
) -> _Shape:
    cx, cy, cz = centre
    ax, ay, az = semi

    def inside(x: FloatArray, y: FloatArray, z: FloatArray) -> BoolArray:
        mask: BoolArray = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2 <= 1.0
        if extra is not None:
            mask = mask & extra(x, y, z)
        return mask

    return _Shape(inside, (cx - ax, cy - ay, cz - az), (cx + ax, cy + ay, cz + az))


def _elliptic_cylinder(
    centre_xy: tuple[float, float],
    semi_xy: tuple[float, float],
    z_range: tuple[float, float],
    extra: Predicate | None = None,
) -> _Shape:
    cx, cy = centre_xy
    ax, ay = semi_xy
    z0, z1 = z_range

    def inside(x: FloatArray, y: FloatArray, z: FloatArray) -> BoolArray:
        mask: BoolArray = (((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0) & (z >= z0) & (z <= z1)
        if extra is not None:
            mask = mask & extra(x, y, z)
        return mask

    return _Shape(inside, (cx - ax, cy - ay, z0), (cx + ax, cy + ay, z1))


def _ring(
    centre_xy: tuple[float, float],
    outer_xy: tuple[float, float],
    inner_xy: tuple[float, float],
    z_range: tuple[float, float],
    y_min_mm: float,
) -> _Shape:
    cx, cy = centre_xy
    ix, iy = inner_xy

    def outside_inner(x: FloatArray, y: FloatArray, z: FloatArray) -> BoolArray:
        keep: BoolArray = (((x - cx) / ix) ** 2 + ((y - cy) / iy) ** 2 > 1.0) & (y >= y_min_mm)
        return keep

    return _elliptic_cylinder(centre_xy, outer_xy, z_range, outside_inner)


# Reference geometry (mm). Sources: Cristy & Eckerman 1987 (ORNL/TM-8381) adult phantom, modified as
# described in the module docstring.
_TRUNK_SEMI_MM = (175.0, 110.0)
_TRUNK_Z_MM = (0.0, 700.0)
_NECK_RADIUS_MM = 55.0
_NECK_Z_MM = (700.0, 780.0)
_HEAD_SEMI_MM = (70.0, 100.0)
_HEAD_CYL_Z_MM = (780.0, 910.0)
_HEAD_CAP_HEIGHT_MM = 80.0


def _liver_cut(x: FloatArray, y: FloatArray, z: FloatArray) -> BoolArray:
    # Cristy & Eckerman 1987 liver: x/35 + y/45 - z/43 <= -1 (cm), 27 <= z <= 43 cm.
    cut: BoolArray = (x / 350.0 + y / 450.0 - z / 430.0 <= -1.0) & (z >= 270.0) & (z <= 430.0)
    return cut


def _half_above(z0: float) -> Predicate:
    def above(x: FloatArray, y: FloatArray, z: FloatArray) -> BoolArray:
        keep: BoolArray = z >= z0
        return keep

    return above


def _abs_x_at_least(x0: float) -> Predicate:
    def lateral(x: FloatArray, y: FloatArray, z: FloatArray) -> BoolArray:
        keep: BoolArray = np.abs(x) >= x0
        return keep

    return lateral


def _reference_organs() -> dict[str, tuple[str, tuple[float, float, float], _Shape]]:
    """Organ name → (size group, reference centre mm, shape). Painted in this order (later wins)."""
    kidney_semi = (45.0, 15.0, 55.0)
    medulla_semi = tuple(0.67 * s for s in kidney_semi)
    organs: dict[str, tuple[str, tuple[float, float, float], _Shape]] = {}

    def add(name: str, group: str, centre: tuple[float, float, float], shape: _Shape) -> None:
        organs[name] = (group, centre, shape)

    add("bowel", "bowel", (0.0, -25.0, 200.0), _ellipsoid((0.0, -25.0, 200.0), (110.0, 55.0, 70.0)))
    add("bladder", "bladder", (0.0, -45.0, 80.0), _ellipsoid((0.0, -45.0, 80.0), (49.6, 34.6, 34.6)))
    add(
        "liver",
        "liver",
        (-60.0, 0.0, 350.0),
        _elliptic_cylinder((0.0, 0.0), (135.0, 100.0), (270.0, 430.0), _liver_cut),
    )
    add("spleen", "spleen", (110.0, 30.0, 370.0), _ellipsoid((110.0, 30.0, 370.0), (35.0, 20.0, 50.0)))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        centre = (sign * 60.0, 60.0, 325.0)
        add(
            f"kidney_{side}_cortex",
            f"kidney_{side}",
            centre,
            _ellipsoid(centre, kidney_semi, _abs_x_at_least(30.0)),
        )
        add(
            f"kidney_{side}_medulla",
            f"kidney_{side}",
            centre,
            _ellipsoid(centre, (medulla_semi[0], medulla_semi[1], medulla_semi[2]), _abs_x_at_least(30.0)),
        )
    lung_centre_z = 435.0
    for side, sign in (("left", 1.0), ("right", -1.0)):
        centre = (sign * 85.0, 0.0, lung_centre_z)
        add(
            f"lung_{side}",
            "lungs",
            centre,
            _ellipsoid(centre, (50.0, 75.0, 240.0), _half_above(lung_centre_z)),
        )
    for side, sign in (("left", 1.0), ("right", -1.0)):
        parotid = (sign * 55.0, 10.0, 830.0)
        add(f"parotid_{side}", "salivary", parotid, _ellipsoid(parotid, (13.0, 22.0, 20.0)))
        subm = (sign * 35.0, -30.0, 800.0)
        add(f"submandibular_{side}", "salivary", subm, _ellipsoid(subm, (13.0, 18.0, 12.0)))
        lacrimal = (sign * 30.0, -75.0, 880.0)
        add(f"lacrimal_{side}", "lacrimal", lacrimal, _ellipsoid(lacrimal, (9.0, 5.0, 3.6)))
    spine_z = (220.0, 700.0)
    add("spine_bone", "skeleton", (0.0, 55.0, 460.0), _elliptic_cylinder((0.0, 55.0), (20.0, 25.0), spine_z))
    add(
        "spine_marrow", "skeleton", (0.0, 55.0, 460.0), _elliptic_cylinder((0.0, 55.0), (14.0, 18.0), spine_z)
    )
    pelvis_z = (60.0, 220.0)
    add(
        "pelvis_bone",
        "skeleton",
        (0.0, 0.0, 110.0),
        _ring((0.0, 0.0), (125.0, 95.0), (110.0, 80.0), pelvis_z, -30.0),
    )
    add(
        "pelvis_marrow",
        "skeleton",
        (0.0, 0.0, 110.0),
        _ring((0.0, 0.0), (121.0, 91.0), (114.0, 84.0), pelvis_z, -25.0),
    )
    return organs


#: Which label each painted reference part receives.
_PART_LABEL: Mapping[str, str] = {
    "lung_left": "lungs",
    "lung_right": "lungs",
    "spine_bone": "bone",
    "pelvis_bone": "bone",
    "spine_marrow": "red_marrow",
    "pelvis_marrow": "red_marrow",
}

#: Candidate lymph-node stations (reference frame, mm): para-aortic, iliac, mediastinal.
_LYMPH_NODE_STATIONS_MM: tuple[tuple[float, float, float], ...] = (
    (30.0, 20.0, 260.0),
    (-30.0, 20.0, 280.0),
    (60.0, 0.0, 150.0),
    (-60.0, 0.0, 140.0),
    (0.0, 0.0, 560.0),
    (25.0, 15.0, 320.0),
)


# --------------------------------------------------------------------------- tissue table
@dataclass(frozen=True)
class Tissue:
    """Physical properties of one tissue used by the phantom.

    Attributes
    ----------
    name : str
        Tissue of the tissue registry (:mod:`theradose.tissues`).
    density_g_per_ml : float
        Mass density, from the tissue registry.
    hu : float
        CT number in Hounsfield units at ~120 kVp (typical clinical values, ``data/phantoms/tissues.toml``).
    """

    name: str
    density_g_per_ml: float
    hu: float


def _read_toml(name: str) -> dict[str, object]:
    try:
        text = resources.files("theradose.data.phantoms").joinpath(name).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise DataError(f"phantom data file {name} is missing: reinstall theradose") from exc
    return tomllib.loads(text)


def load_tissues() -> dict[str, Tissue]:
    """Tissues of the phantom: CT numbers from ``data/phantoms/tissues.toml`` (cited there), densities from
    the tissue registry (:func:`theradose.tissues.get_tissue`)."""
    from theradose.tissues import get_tissue

    raw = _read_toml("tissues.toml")
    table = raw.get("tissue")
    if not isinstance(table, dict):
        raise DataError("tissues.toml has no [tissue.*] tables: reinstall theradose")
    out: dict[str, Tissue] = {}
    for name, entry in table.items():
        out[name] = Tissue(
            name=name,
            density_g_per_ml=get_tissue(name).density_g_per_ml,
            hu=float(entry["hu"]),
        )
    return out


#: Tissue of every organ label (tumours use ``"tumour"``).
LABEL_TISSUE: Mapping[str, str] = {
    "background": "air",
    "body": "soft_tissue",
    "lungs": "lung",
    "liver": "liver",
    "spleen": "spleen",
    "kidney_left_cortex": "kidney",
    "kidney_left_medulla": "kidney",
    "kidney_right_cortex": "kidney",
    "kidney_right_medulla": "kidney",
    "bladder": "urine",
    "parotid_left": "salivary_glands",
    "parotid_right": "salivary_glands",
    "submandibular_left": "salivary_glands",
    "submandibular_right": "salivary_glands",
    "lacrimal_left": "lacrimal_glands",
    "lacrimal_right": "lacrimal_glands",
    "bone": "cortical_bone",
    "red_marrow": "spongiosa",
    "bowel": "bowel",
}


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Tumour:
    """One spherical tumour of the phantom.

    Attributes
    ----------
    name : str
        ``"tumour_<n>"``.
    label : int
        Label value in the label map (``TUMOUR_LABEL_OFFSET + n``).
    site : {"liver", "bone", "lymph_node"}
        Where it was placed.
    centre_mm : tuple of float
        Centre in LPS mm (x, y, z).
    diameter_mm : float
        Sphere diameter.
    """

    name: str
    label: int
    site: TumourSite
    centre_mm: tuple[float, float, float]
    diameter_mm: float


@dataclass(frozen=True)
class Grid:
    """A regular axis-aligned grid: shape (slices, rows, columns) and isotropic-or-not spacing.

    Attributes
    ----------
    shape : tuple of int
        (n_z, n_y, n_x).
    spacing_mm : tuple of float
        Voxel size along (z, y, x) in mm.
    origin_mm : tuple of float
        LPS position (x, y, z) of the centre of voxel (0, 0, 0).
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL."""
        return float(mm3_to_ml(float(np.prod(self.spacing_mm))))

    def axes_mm(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Voxel-centre coordinates (x along columns, y along rows, z along slices) in mm."""
        nz, ny, nx = self.shape
        sz, sy, sx = self.spacing_mm
        x0, y0, z0 = self.origin_mm
        return (
            np.asarray(x0 + sx * np.arange(nx), dtype=np.float64),
            np.asarray(y0 + sy * np.arange(ny), dtype=np.float64),
            np.asarray(z0 + sz * np.arange(nz), dtype=np.float64),
        )

    def affine(self) -> FloatArray:
        """4×4 affine mapping (slice, row, column, 1) to LPS mm (see :mod:`theradose.imaging.volume`)."""
        sz, sy, sx = self.spacing_mm
        x0, y0, z0 = self.origin_mm
        return np.array(
            [[0.0, 0.0, sx, x0], [0.0, sy, 0.0, y0], [sz, 0.0, 0.0, z0], [0.0, 0.0, 0.0, 1.0]],
            dtype=np.float64,
        )


def make_grid(
    shape: Sequence[int],
    spacing_mm: float | Sequence[float],
    *,
    centre_mm: Sequence[float] = (0.0, 0.0, sum(ANATOMY_Z_RANGE_MM) / 2.0),
) -> Grid:
    """A grid of ``shape`` (z, y, x) voxels centred at ``centre_mm`` (LPS x, y, z).

    Parameters
    ----------
    shape : sequence of 3 int
        Number of slices, rows and columns.
    spacing_mm : float or sequence of 3 float
        Voxel size (isotropic if a single number), along (z, y, x).
    centre_mm : sequence of 3 float
        LPS point at the centre of the grid; default: the body axis at mid-height of the anatomy.
    """
    if len(shape) != 3 or any(int(n) < 1 for n in shape):
        raise InputError(f"shape must be 3 positive integers (slices, rows, columns); got {tuple(shape)}")
    spacing = (
        (float(spacing_mm),) * 3 if isinstance(spacing_mm, (int, float)) else tuple(map(float, spacing_mm))
    )
    if len(spacing) != 3 or any(not math.isfinite(s) or s <= 0.0 for s in spacing):
        raise InputError(f"spacing_mm must be positive; got {spacing_mm!r}: pass e.g. 4.8")
    nz, ny, nx = (int(n) for n in shape)
    cx, cy, cz = (float(c) for c in centre_mm)
    origin = (
        cx - spacing[2] * (nx - 1) / 2.0,
        cy - spacing[1] * (ny - 1) / 2.0,
        cz - spacing[0] * (nz - 1) / 2.0,
    )
    return Grid((nz, ny, nx), (spacing[0], spacing[1], spacing[2]), origin)


def slices_to_cover_anatomy(spacing_mm: float) -> int:
    """Number of slices of thickness ``spacing_mm`` that covers the whole anatomy (pelvis to vertex)."""
    if spacing_mm <= 0.0:
        raise InputError(f"spacing_mm must be positive; got {spacing_mm}")
    return math.ceil((ANATOMY_Z_RANGE_MM[1] - ANATOMY_Z_RANGE_MM[0]) / spacing_mm)


@dataclass(frozen=True)
class Anatomy:
    """A voxelised stylised patient.

    Attributes
    ----------
    grid : Grid
        Geometry of every array.
    labels : ndarray of int16, shape grid.shape
        Label map (values from :attr:`label_table`; tumours outside the grid are not listed).
    hu : ndarray of float32, shape grid.shape
        CT in Hounsfield units.
    density_g_per_ml : ndarray of float32, shape grid.shape
        Mass density.
    label_table : dict
        Name → label, organs from :data:`ORGAN_LABELS` that are present plus tumours.
    tumours : tuple of Tumour
        The tumours that were placed.
    seed : int or None
        Seed of the size variation (None: reference size).
    scales : dict
        Scale factors drawn from the seed (``body_xy``, ``body_z`` and per size group).
    """

    grid: Grid
    labels: LabelArray
    hu: npt.NDArray[np.float32]
    density_g_per_ml: npt.NDArray[np.float32]
    label_table: Mapping[str, int]
    tumours: tuple[Tumour, ...]
    seed: int | None
    scales: Mapping[str, float] = field(default_factory=dict)

    def region_labels(self, name: str) -> tuple[int, ...]:
        """Label values of a region: a single label, a group from :data:`REGION_GROUPS` or ``"tumours"``."""
        if name in self.label_table:
            return (self.label_table[name],)
        if name in REGION_GROUPS:
            return tuple(self.label_table[n] for n in REGION_GROUPS[name] if n in self.label_table)
        if name == "tumours":
            return tuple(t.label for t in self.tumours)
        known = sorted([*self.label_table, *REGION_GROUPS, "tumours"])
        raise InputError(f"region {name!r} is unknown; choose one of {', '.join(known)}")

    def mask(self, name: str) -> BoolArray:
        """Boolean mask of a region (see :meth:`region_labels`)."""
        return np.isin(self.labels, self.region_labels(name))

    def region_names(self) -> list[str]:
        """All regions with at least one voxel: single labels (no background), groups, tumours."""
        present = set(np.unique(self.labels).tolist())
        names = [n for n, v in self.label_table.items() if v != 0 and v in present]
        for group, members in REGION_GROUPS.items():
            if any(self.label_table.get(m, -1) in present for m in members):
                names.append(group)
        if self.tumours:
            names.append("tumours")
        return names

    def mass_g(self, name: str) -> float:
        """Mass of a region in g: Σ density × voxel volume."""
        mask = self.mask(name)
        return float(self.density_g_per_ml[mask].sum(dtype=np.float64) * self.grid.voxel_volume_ml)

    def volume_ml(self, name: str) -> float:
        """Volume of a region in mL."""
        return float(np.count_nonzero(self.mask(name)) * self.grid.voxel_volume_ml)


# --------------------------------------------------------------------------- generation
def _paint(
    labels: LabelArray,
    value: int,
    shape: _Shape,
    axes: tuple[FloatArray, FloatArray, FloatArray],
    to_reference: Callable[[FloatArray, FloatArray, FloatArray], tuple[FloatArray, FloatArray, FloatArray]],
    to_actual_box: Callable[
        [tuple[float, float, float], tuple[float, float, float]], tuple[FloatArray, FloatArray]
    ],
) -> None:
    x_mm, y_mm, z_mm = axes
    lo, hi = to_actual_box(shape.lo_mm, shape.hi_mm)
    ix = np.nonzero((x_mm >= lo[0]) & (x_mm <= hi[0]))[0]
    iy = np.nonzero((y_mm >= lo[1]) & (y_mm <= hi[1]))[0]
    iz = np.nonzero((z_mm >= lo[2]) & (z_mm <= hi[2]))[0]
    if ix.size == 0 or iy.size == 0 or iz.size == 0:
        return
    sx = slice(int(ix[0]), int(ix[-1]) + 1)
    sy = slice(int(iy[0]), int(iy[-1]) + 1)
    sz = slice(int(iz[0]), int(iz[-1]) + 1)
    xr, yr, zr = to_reference(x_mm[sx][None, None, :], y_mm[sy][None, :, None], z_mm[sz][:, None, None])
    inside = shape.inside(xr, yr, zr)
    block = labels[sz, sy, sx]
    block[inside] = value


def _lognormal_factor(rng: np.random.Generator, cv: float) -> float:
    """Mean-one log-normal factor with coefficient of variation ``cv``."""
    sigma = math.sqrt(math.log1p(cv * cv))
    z = float(np.clip(rng.standard_normal(), -_CLIP_SIGMAS, _CLIP_SIGMAS))
    return math.exp(-0.5 * sigma * sigma + sigma * z)


#: Size factors are truncated at ±2.5 standard deviations (no implausible organs).
_CLIP_SIGMAS = 2.5


#: Coefficients of variation of the seeded size variation (modelling choice; adult height varies
#: ~4 %, trunk girth ~6 %, organ volumes ~15 % between adults, ICRP 89 Section 2).
_SIZE_CV: Mapping[str, float] = {"body_xy": 0.06, "body_z": 0.04, "organ": 0.15}


def make_anatomy(
    grid: Grid,
    *,
    seed: int | None = None,
    tumours: int | Sequence[tuple[TumourSite, float]] = 0,
) -> Anatomy:
    """Voxelise the stylised adult anatomy on ``grid``.

    Parameters
    ----------
    grid : Grid
        Target grid (see :func:`make_grid`); organs outside it are simply absent.
    seed : int or None
        Seed of the inter-patient size variation (log-normal scale factors of body and organs, and of
        tumour placement). ``None`` gives the reference size and deterministic tumour positions.
    tumours : int or sequence of (site, diameter_mm)
        Number of tumours (sites cycle liver → bone → lymph node, diameters 15–35 mm drawn from the
        seed) or an explicit list of (site, diameter_mm).

    Returns
    -------
    Anatomy
        Labels, CT (HU), density (g/mL), label table and tumour list.

    Notes
    -----
    Shapes after Cristy & Eckerman 1987 (ORNL/TM-8381); see the module docstring for the changes. Each
    voxel takes the label of the last organ whose surface contains its centre (no partial volume).
    Generation is vectorised and evaluated only inside each organ's bounding box.
    """
    rng = np.random.default_rng(seed)
    scales: dict[str, float] = {"body_xy": 1.0, "body_z": 1.0}
    organs = _reference_organs()
    groups = sorted({g for g, _, _ in organs.values()})
    if seed is not None:
        scales["body_xy"] = _lognormal_factor(rng, _SIZE_CV["body_xy"])
        scales["body_z"] = _lognormal_factor(rng, _SIZE_CV["body_z"])
        for group in groups:
            scales[group] = _lognormal_factor(rng, _SIZE_CV["organ"])
    else:
        for group in groups:
            scales[group] = 1.0
    bxy, bz = scales["body_xy"], scales["body_z"]

    axes = grid.axes_mm()
    labels: LabelArray = np.zeros(grid.shape, dtype=np.int16)

    def body_transforms(
        centre_ref: tuple[float, float, float], s: tuple[float, float, float]
    ) -> tuple[
        Callable[[FloatArray, FloatArray, FloatArray], tuple[FloatArray, FloatArray, FloatArray]],
        Callable[[tuple[float, float, float], tuple[float, float, float]], tuple[FloatArray, FloatArray]],
    ]:
        # actual centre = reference centre scaled by the body; size scaled by s about the centre.
        c_act = np.array([centre_ref[0] * bxy, centre_ref[1] * bxy, centre_ref[2] * bz])
        c_ref = np.array(centre_ref)
        sv = np.array(s)

        def to_ref(x: FloatArray, y: FloatArray, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
            return (
                (x - c_act[0]) / sv[0] + c_ref[0],
                (y - c_act[1]) / sv[1] + c_ref[1],
                (z - c_act[2]) / sv[2] + c_ref[2],
            )

        def box(
            lo: tuple[float, float, float], hi: tuple[float, float, float]
        ) -> tuple[FloatArray, FloatArray]:
            return (np.array(lo) - c_ref) * sv + c_act, (np.array(hi) - c_ref) * sv + c_act

        return to_ref, box

    # Body outline: trunk, neck, head (scaled by the body factors only).
    body_value = ORGAN_LABELS["body"]
    body_scale = (bxy, bxy, bz)
    for shape in (
        _elliptic_cylinder((0.0, 0.0), _TRUNK_SEMI_MM, _TRUNK_Z_MM),
        _elliptic_cylinder((0.0, 0.0), (_NECK_RADIUS_MM, _NECK_RADIUS_MM), _NECK_Z_MM),
        _elliptic_cylinder((0.0, 0.0), _HEAD_SEMI_MM, _HEAD_CYL_Z_MM),
        _ellipsoid(
            (0.0, 0.0, _HEAD_CYL_Z_MM[1]),
            (_HEAD_SEMI_MM[0], _HEAD_SEMI_MM[1], _HEAD_CAP_HEIGHT_MM),
            _half_above(_HEAD_CYL_Z_MM[1]),
        ),
    ):
        to_ref, box = body_transforms((0.0, 0.0, 0.0), body_scale)
        _paint(labels, body_value, shape, axes, to_ref, box)

    for part, (group, centre, shape) in organs.items():
        organ_factor = scales[group] ** (1.0 / 3.0)
        to_ref, box = body_transforms(centre, (bxy * organ_factor, bxy * organ_factor, bz * organ_factor))
        label_name = _PART_LABEL.get(part, part)
        _paint(labels, ORGAN_LABELS[label_name], shape, axes, to_ref, box)

    label_table = {n: v for n, v in ORGAN_LABELS.items()}
    placed: list[Tumour] = []
    for tumour in _place_tumours(tumours, rng, seed, scales, organs):
        radius = tumour.diameter_mm / 2.0
        shape = _ellipsoid(tumour.centre_mm, (radius, radius, radius))
        # tumour centres are already in actual coordinates: identity transform
        _paint(labels, tumour.label, shape, axes, lambda x, y, z: (x, y, z), _identity_box)
        if np.any(labels == tumour.label):  # tumours outside the field of view are dropped
            label_table[tumour.name] = tumour.label
            placed.append(tumour)

    tissues = load_tissues()
    max_label = int(max(label_table.values()))
    density_lut = np.zeros(max_label + 1, dtype=np.float32)
    hu_lut = np.full(max_label + 1, tissues["air"].hu, dtype=np.float32)
    for name, value in label_table.items():
        tissue = tissues["tumour"] if name.startswith("tumour_") else tissues[LABEL_TISSUE[name]]
        density_lut[value] = tissue.density_g_per_ml
        hu_lut[value] = tissue.hu
    return Anatomy(
        grid=grid,
        labels=labels,
        hu=hu_lut[labels],
        density_g_per_ml=density_lut[labels],
        label_table=label_table,
        tumours=tuple(placed),
        seed=seed,
        scales=scales,
    )


def _identity_box(
    lo: tuple[float, float, float], hi: tuple[float, float, float]
) -> tuple[FloatArray, FloatArray]:
    return np.array(lo), np.array(hi)


def _place_tumours(
    tumours: int | Sequence[tuple[TumourSite, float]],
    rng: np.random.Generator,
    seed: int | None,
    scales: Mapping[str, float],
    organs: Mapping[str, tuple[str, tuple[float, float, float], _Shape]],
) -> list[Tumour]:
    if isinstance(tumours, int):
        if tumours < 0:
            raise InputError(f"tumours must be >= 0; got {tumours}")
        specs: list[tuple[TumourSite, float]] = [
            (
                TUMOUR_SITES[i % len(TUMOUR_SITES)],
                float(rng.uniform(15.0, 35.0)) if seed is not None else 25.0,
            )
            for i in range(tumours)
        ]
    else:
        specs = [(site, float(d)) for site, d in tumours]
    bxy, bz = scales["body_xy"], scales["body_z"]
    placed: list[Tumour] = []
    liver_group, liver_centre, liver_shape = organs["liver"]
    liver_factor = scales[liver_group] ** (1.0 / 3.0)
    for n, (site, diameter) in enumerate(specs, start=1):
        if site not in TUMOUR_SITES:
            raise InputError(f"tumour site must be one of {', '.join(TUMOUR_SITES)}; got {site!r}")
        if not (2.0 <= diameter <= 120.0):
            raise InputError(f"tumour diameter_mm must be within 2-120 mm; got {diameter}")
        radius = diameter / 2.0
        if site == "liver":
            centre = _sample_inside_liver(
                rng, seed, n, radius, liver_centre, liver_shape, liver_factor, bxy, bz
            )
        elif site == "bone":
            z_ref = float(rng.uniform(280.0, 640.0)) if seed is not None else 300.0 + 90.0 * ((n - 1) % 4)
            centre = (0.0, 55.0 * bxy, z_ref * bz)
        else:
            station = _LYMPH_NODE_STATIONS_MM[
                int(rng.integers(len(_LYMPH_NODE_STATIONS_MM))) if seed is not None else (n - 1) % 6
            ]
            centre = (station[0] * bxy, station[1] * bxy, station[2] * bz)
        placed.append(Tumour(f"tumour_{n}", TUMOUR_LABEL_OFFSET + n, site, centre, diameter))
    return placed


def _sample_inside_liver(
    rng: np.random.Generator,
    seed: int | None,
    n: int,
    radius_mm: float,
    liver_centre: tuple[float, float, float],
    liver_shape: _Shape,
    factor: float,
    bxy: float,
    bz: float,
) -> tuple[float, float, float]:
    """A centre such that the sphere lies inside the (scaled) liver; falls back to the deepest point."""
    s = np.array([bxy * factor, bxy * factor, bz * factor])
    c_ref = np.array(liver_centre)
    c_act = c_ref * np.array([bxy, bxy, bz])
    directions = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
        + [[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)],
        dtype=np.float64,
    )
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    lo, hi = np.array(liver_shape.lo_mm), np.array(liver_shape.hi_mm)
    # deterministic candidates for seed None: a fixed lattice of points in the right lobe
    candidates = (
        rng.uniform(lo, hi, size=(400, 3))
        if seed is not None
        else np.array([[-90.0 + 25.0 * ((n - 1) % 3), -20.0 + 20.0 * ((n - 1) // 3 % 3), 350.0]])
    )
    for cand_ref in candidates:
        pts_ref = cand_ref + radius_mm * directions / s
        all_pts = np.vstack([cand_ref[None, :], pts_ref])
        inside = liver_shape.inside(all_pts[:, 0], all_pts[:, 1], all_pts[:, 2])
        if bool(np.all(inside)):
            actual = (cand_ref - c_ref) * s + c_act
            return (float(actual[0]), float(actual[1]), float(actual[2]))
    actual = (np.array([-80.0, -10.0, 360.0]) - c_ref) * s + c_act
    return (float(actual[0]), float(actual[1]), float(actual[2]))
