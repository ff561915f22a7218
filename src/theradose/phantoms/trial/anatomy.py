"""Virtual trial patients from implicit surfaces, voxelised with sub-voxel partial volume in any pose.

Every organ is a solid given by an inside-test on patient coordinates (LPS mm; z = 0 at the pelvic floor,
increasing towards the head): deformed ellipsoids (a radial factor 1 + Σ d_k P_k(n) of low-order
polynomials of the direction n, so that no two patients share a shape), rotated, moved and scaled so that
each organ's mass is a draw around its ICRP 89 reference (adult male, ICRP Publication 89, 2002, Table 2.8
and section 7: liver 1800 g, kidneys 310 g, spleen 150 g, parotid glands 50 g, submandibular glands 25 g,
lacrimal glands 1.4 g), log-normal, truncated at ±2 σ. The body outline is a super-ellipse whose axes
vary along z, with a subcutaneous fat layer of random thickness; the kidneys are beans (a hilum notch cut
out) in perirenal fat, with a cortex 6-8 mm thick around the medulla; the spine's vertebral bodies
(T9-L5) are elliptic cylinders of spongiosa (red marrow) in a cortical shell, separated by discs; iliac
wings and sacrum likewise; the skull is a cortical shell. Lesions of 10-50 mm lie in the liver, in bone
(thoracic vertebrae or iliac wing) and in lymph-node stations. Tissue densities are ICRU Report 44 (1989)
values of the tissue registry (:mod:`theradose.tissues`); CT numbers are typical 120 kVp values (cited in
``data/phantoms/trial_tissues.toml``).

The shapes, sizes and placement rules here share nothing with :mod:`theradose.phantoms.anatomy`.

Voxelisation (:func:`voxelise`) samples ``supersampling``³ points per voxel, so a voxel on an organ edge
holds the organ's exact fraction: the activity, the CT number (linear mixture) and the density are partial-
volume correct, while the segmentation handed to the pipeline is the region at each voxel's centre: what
nearest-neighbour resampling of a contour drawn on a fine CT onto the SPECT grid gives, and unbiased in
volume on average. (A majority rule over the samples shrinks convex organs, by 2-3 % for kidneys and
spleen at 4.8 mm, and with ties at one half given to the first region it had made lesions inside the liver
10-17 % too small and lymph nodes 6-12 % too large.)
A rigid :class:`Pose` moves the patient (motion between scans).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
import numpy.typing as npt

from theradose.errors import DataError, InputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Points = FloatArray  # shape (N, 3): x, y, z in mm


# ------------------------------------------------------------------------------------------ tissues
@dataclass(frozen=True)
class TrialTissue:
    """Density (g/mL) and CT number (HU) of a tissue of the trial's patients."""

    name: str
    density_g_per_ml: float
    hu: float


@lru_cache(maxsize=1)
def trial_tissues() -> dict[str, TrialTissue]:
    """Tissues of the trial: CT numbers of ``data/phantoms/trial_tissues.toml`` (sources there), densities
    of the tissue registry (:mod:`theradose.tissues`)."""
    from theradose.tissues import get_tissue

    try:
        raw = tomllib.loads(
            resources.files("theradose").joinpath("data", "phantoms", "trial_tissues.toml").read_text("utf-8")
        )
        return {
            name: TrialTissue(name, get_tissue(name).density_g_per_ml, float(e["hu"]))
            for name, e in raw["tissue"].items()
        }
    except (OSError, KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"trial_tissues.toml is missing or malformed ({exc}): reinstall theradose") from exc


# ------------------------------------------------------------------------------------------ solids
class Solid:
    """A solid in patient coordinates: :meth:`inside` on (N, 3) points and a bounding box."""

    def inside(self, q: Points) -> BoolArray:  # pragma: no cover - interface
        raise NotImplementedError

    def bounds(self) -> tuple[FloatArray, FloatArray]:  # pragma: no cover - interface
        raise NotImplementedError


def rotation(z_deg: float = 0.0, y_deg: float = 0.0, x_deg: float = 0.0) -> FloatArray:
    """Rotation matrix R = Rz·Ry·Rx (degrees)."""
    a, b, c = (math.radians(v) for v in (z_deg, y_deg, x_deg))
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rx = np.array([[1, 0, 0], [0, math.cos(c), -math.sin(c)], [0, math.sin(c), math.cos(c)]])
    return np.asarray(rz @ ry @ rx, dtype=np.float64)


@dataclass(frozen=True)
class Ellipsoid(Solid):
    """A deformed, rotated ellipsoid: inside when |u| ≤ 1 + Σ d_k P_k(u/|u|), u = Rᵀ(q − c)/semi.

    ``deform`` holds five coefficients of the direction polynomials n_x n_y, n_y n_z, n_x n_z,
    n_z² − 1/3, n_x² − n_y² (kept below 0.25 in sum so the factor stays positive).
    """

    centre: tuple[float, float, float]
    semi: tuple[float, float, float]
    rot: FloatArray = field(default_factory=lambda: np.eye(3))
    deform: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def inside(self, q: Points) -> BoolArray:
        u = (q - np.asarray(self.centre)) @ self.rot / np.asarray(self.semi)
        r = np.sqrt(np.sum(u * u, axis=1))
        n = u / np.maximum(r, 1e-12)[:, None]
        d = self.deform
        g = (
            1.0
            + d[0] * n[:, 0] * n[:, 1]
            + d[1] * n[:, 1] * n[:, 2]
            + d[2] * n[:, 0] * n[:, 2]
            + d[3] * (n[:, 2] ** 2 - 1.0 / 3.0)
            + d[4] * (n[:, 0] ** 2 - n[:, 1] ** 2)
        )
        result: BoolArray = r <= g
        return result

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        reach = max(self.semi) * (1.0 + sum(abs(v) for v in self.deform))
        c = np.asarray(self.centre)
        return c - reach, c + reach

    def scaled(self, factor: float) -> Ellipsoid:
        """Same shape scaled about its centre by ``factor`` (volume × factor³)."""
        a, b, c = (s * factor for s in self.semi)
        return Ellipsoid(self.centre, (a, b, c), self.rot, self.deform)

    def shrunk(self, depth_mm: float) -> Ellipsoid:
        """Semi-axes reduced by ``depth_mm`` (an inner surface about ``depth_mm`` deep)."""
        a, b, c = (max(s - depth_mm, 0.5) for s in self.semi)
        return Ellipsoid(self.centre, (a, b, c), self.rot, self.deform)

    @property
    def nominal_volume_mm3(self) -> float:
        """Volume of the undeformed ellipsoid."""
        return 4.0 / 3.0 * math.pi * float(np.prod(self.semi))


@dataclass(frozen=True)
class Cylinder(Solid):
    """Elliptic cylinder along z, cross-section rotated by ``angle_deg`` about z."""

    centre_xy: tuple[float, float]
    semi_xy: tuple[float, float]
    z_range: tuple[float, float]
    angle_deg: float = 0.0

    def inside(self, q: Points) -> BoolArray:
        a = math.radians(self.angle_deg)
        dx, dy = q[:, 0] - self.centre_xy[0], q[:, 1] - self.centre_xy[1]
        u = (dx * math.cos(a) + dy * math.sin(a)) / self.semi_xy[0]
        v = (-dx * math.sin(a) + dy * math.cos(a)) / self.semi_xy[1]
        result: BoolArray = (
            (u * u + v * v <= 1.0) & (q[:, 2] >= self.z_range[0]) & (q[:, 2] <= self.z_range[1])
        )
        return result

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        r = max(self.semi_xy)
        return (
            np.array([self.centre_xy[0] - r, self.centre_xy[1] - r, self.z_range[0]]),
            np.array([self.centre_xy[0] + r, self.centre_xy[1] + r, self.z_range[1]]),
        )


@dataclass(frozen=True)
class Trunk(Solid):
    """Super-ellipse cross-section |x/a|^p + |y/b|^p ≤ 1, a(z), b(z) piecewise linear, less ``inset_mm``."""

    z_knots: tuple[float, ...]
    a_knots: tuple[float, ...]
    b_knots: tuple[float, ...]
    exponent: float
    y_centre: float = 0.0
    inset_mm: float = 0.0

    def inside(self, q: Points) -> BoolArray:
        z = q[:, 2]
        a = np.interp(z, self.z_knots, self.a_knots) - self.inset_mm
        b = np.interp(z, self.z_knots, self.b_knots) - self.inset_mm
        p = self.exponent
        val = np.abs(q[:, 0] / a) ** p + np.abs((q[:, 1] - self.y_centre) / b) ** p
        result: BoolArray = (
            (val <= 1.0) & (z >= self.z_knots[0]) & (z <= self.z_knots[-1]) & (a > 0) & (b > 0)
        )
        return result

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        a, b = max(self.a_knots), max(self.b_knots)
        return (
            np.array([-a, self.y_centre - b, self.z_knots[0]]),
            np.array([a, self.y_centre + b, self.z_knots[-1]]),
        )


@dataclass(frozen=True)
class Union(Solid):
    parts: tuple[Solid, ...]

    def inside(self, q: Points) -> BoolArray:
        out = np.zeros(q.shape[0], dtype=bool)
        for p in self.parts:
            out |= p.inside(q)
        return out

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        lows, highs = zip(*(p.bounds() for p in self.parts), strict=True)
        return np.min(np.stack(lows), axis=0), np.max(np.stack(highs), axis=0)


@dataclass(frozen=True)
class Difference(Solid):
    base: Solid
    cut: Solid

    def inside(self, q: Points) -> BoolArray:
        result: BoolArray = self.base.inside(q) & ~self.cut.inside(q)
        return result

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        return self.base.bounds()


@dataclass(frozen=True)
class HalfSpace(Solid):
    """Points with n·(q − p) ≤ 0 intersected with ``base``."""

    base: Solid
    point: tuple[float, float, float]
    normal: tuple[float, float, float]

    def inside(self, q: Points) -> BoolArray:
        result: BoolArray = self.base.inside(q) & (
            ((q - np.asarray(self.point)) @ np.asarray(self.normal)) <= 0.0
        )
        return result

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        return self.base.bounds()


# ------------------------------------------------------------------------------------------ parts
@dataclass(frozen=True)
class Part:
    """One painted piece of the patient.

    Attributes
    ----------
    name : str
        Unique part name (``kidney_left_cortex``, ``vertebra_L3_spongiosa``, ``lesion_1``).
    solid : Solid
    tissue : str
        Key of the tissue table.
    compartment : str
        Kinetic compartment whose concentration the part holds.
    region : str or None
        Region a reader would draw on the CT (segmentation handed to the pipeline), or None.
    """

    name: str
    solid: Solid
    tissue: str
    compartment: str
    region: str | None


@dataclass(frozen=True)
class Lesion:
    """A spherical lesion: name, site, centre (patient mm), diameter (mm)."""

    name: str
    site: str
    centre_mm: tuple[float, float, float]
    diameter_mm: float


@dataclass(frozen=True)
class TrialPatient:
    """A virtual patient's design: parts in painting order (later parts win), lesions and draws.

    Attributes
    ----------
    seed : int
    parts : tuple of Part
    lesions : tuple of Lesion
    body_mass_kg : float
        Mass of the modelled body (trunk, neck and head) from the nominal part volumes; the patient weight
        written to the study is this scaled to include arms and legs (:data:`LIMBS_FRACTION`).
    z_range_mm : tuple of float
        Extent of the patient along z.
    draws : dict
        The sampled design factors (masses, fat thickness, ...), for the truth file.
    """

    seed: int
    parts: tuple[Part, ...]
    lesions: tuple[Lesion, ...]
    z_range_mm: tuple[float, float]
    draws: Mapping[str, float]

    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise InputError(f"part {name!r} is not in trial patient {self.seed}")

    def regions(self) -> list[str]:
        """Segmentation regions in order of first appearance."""
        return list(dict.fromkeys(p.region for p in self.parts if p.region is not None))

    def compartments(self) -> list[str]:
        """Kinetic compartments in order of first appearance."""
        return list(dict.fromkeys(p.compartment for p in self.parts))


#: ICRP 89 reference masses (g), adult male (Table 2.8): targets of the organ size draws.
ICRP89_MASS_G: Mapping[str, float] = {
    "liver": 1800.0,
    "kidney": 155.0,
    "spleen": 150.0,
    "parotid": 25.0,
    "submandibular": 12.5,
    "lacrimal": 0.7,
}
#: Coefficient of variation of the organ mass draws (design values of the virtual population, spanning
#: the adult range reported with the ICRP 89 reference values).
MASS_CV: Mapping[str, float] = {
    "liver": 0.20,
    "kidney": 0.18,
    "spleen": 0.35,
    "parotid": 0.25,
    "submandibular": 0.25,
    "lacrimal": 0.30,
}
#: Vertebral bodies modelled and the height (mm) of each (adult lumbar bodies ≈ 27 mm, thoracic ≈ 22 mm).
VERTEBRAE: tuple[tuple[str, float], ...] = (
    ("L5", 27.0),
    ("L4", 27.0),
    ("L3", 27.0),
    ("L2", 26.0),
    ("L1", 25.0),
    ("T12", 24.0),
    ("T11", 23.0),
    ("T10", 22.0),
    ("T9", 21.0),
)
#: Intervertebral disc height (mm) and cortical shell thickness (mm) of the vertebral bodies.
DISC_MM = 9.0
CORTEX_MM = 1.5
#: Lymph-node stations (patient mm): para-aortic left/right, common iliac left/right.
NODE_STATIONS_MM: tuple[tuple[float, float, float], ...] = (
    (32.0, 20.0, 300.0),
    (-30.0, 22.0, 270.0),
    (55.0, 10.0, 175.0),
    (-58.0, 10.0, 185.0),
)


def _lognormal(rng: np.random.Generator, cv: float) -> float:
    sigma = math.sqrt(math.log1p(cv * cv))
    return math.exp(-0.5 * sigma * sigma + sigma * float(np.clip(rng.standard_normal(), -2.0, 2.0)))


def _deform(rng: np.random.Generator, amplitude: float) -> tuple[float, ...]:
    d = rng.uniform(-1.0, 1.0, 5)
    d *= amplitude / max(float(np.abs(d).sum()), 1e-9)
    return tuple(float(v) for v in d)


def _scaled_to_mass(
    shape: Ellipsoid, mass_g: float, density: float, *, fraction_kept: float = 1.0
) -> Ellipsoid:
    """Scale ``shape`` so that its nominal volume × ``fraction_kept`` × density is ``mass_g``."""
    target_mm3 = mass_g / density * 1000.0 / fraction_kept
    return shape.scaled((target_mm3 / shape.nominal_volume_mm3) ** (1.0 / 3.0))


def sample_patient(seed: int, *, lesions: int = 4) -> TrialPatient:
    """Draw a virtual patient (see the module docstring). ``lesions``: 1-6, sites cycle liver → bone →
    lymph node → liver ..., diameters 10-50 mm (the first of each site at least 20 mm)."""
    if not 1 <= lesions <= 6:
        raise InputError(f"lesions must be within 1-6; got {lesions}")
    rng = np.random.default_rng(10_000 + seed)
    t = trial_tissues()
    draws: dict[str, float] = {}
    parts: list[Part] = []

    def add(name: str, solid: Solid, tissue: str, compartment: str, region: str | None) -> None:
        parts.append(Part(name, solid, tissue, compartment, region))

    # body: trunk (pelvis → shoulders), neck, head; widths scaled per patient
    wx, wy, hz = _lognormal(rng, 0.07), _lognormal(rng, 0.09), _lognormal(rng, 0.03)
    draws.update({"body_width": wx, "body_depth": wy, "body_height": hz})
    z_knots = tuple(v * hz for v in (0.0, 120.0, 230.0, 330.0, 450.0, 560.0, 650.0))
    a_knots = tuple(v * wx for v in (165.0, 172.0, 160.0, 152.0, 160.0, 168.0, 175.0))
    b_knots = tuple(v * wy for v in (112.0, 110.0, 104.0, 102.0, 110.0, 112.0, 105.0))
    trunk = Trunk(z_knots, a_knots, b_knots, 2.4)
    neck = Cylinder((0.0, 5.0), (58.0 * wx, 55.0 * wy), (z_knots[-1] - 10.0, z_knots[-1] + 90.0 * hz))
    head_c = (0.0, 0.0, z_knots[-1] + 90.0 * hz + 95.0)
    head = Ellipsoid(
        head_c, (76.0, 96.0, 112.0), rotation(x_deg=float(rng.uniform(-5, 5))), _deform(rng, 0.06)
    )
    add("body_trunk", trunk, "soft_tissue", "soft_tissue", None)
    fat_mm = float(rng.uniform(8.0, 28.0))
    draws["subcutaneous_fat_mm"] = fat_mm
    add(
        "fat_subcutaneous",
        Difference(trunk, Trunk(z_knots, a_knots, b_knots, 2.4, inset_mm=fat_mm)),
        "adipose_tissue",
        "fat",
        None,
    )
    add("body_neck", neck, "soft_tissue", "soft_tissue", None)
    add("body_head", head, "soft_tissue", "soft_tissue", None)
    add("skull", Difference(head, head.shrunk(7.0)), "cortical_bone", "cortical_bone", None)
    add(
        "brain",
        Ellipsoid((head_c[0], head_c[1] + 8.0, head_c[2] + 25.0), (62.0, 80.0, 70.0)),
        "brain",
        "brain",
        None,
    )

    def jitter(sd_mm: float) -> float:
        return float(rng.normal(0.0, sd_mm))

    # lungs and heart
    lung_z = 470.0 * hz
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lung = Ellipsoid(
            (sign * 88.0 * wx + jitter(5), 15.0 + jitter(5), lung_z + 95.0),
            (58.0 * wx, 78.0 * wy, 150.0 * hz),
            rotation(z_deg=jitter(4)),
            _deform(rng, 0.12),
        )
        add(f"lung_{side}", HalfSpace(lung, (0.0, 0.0, lung_z), (0.0, 0.0, -1.0)), "lung", "lung", None)
    heart = Ellipsoid(
        (22.0 + jitter(6), -25.0 + jitter(5), lung_z + 70.0),
        (55.0, 48.0, 58.0),
        rotation(z_deg=-30.0 + jitter(8), y_deg=jitter(8)),
        _deform(rng, 0.1),
    )
    add("heart", heart, "blood", "blood", None)

    # liver: right lobe and left lobe, flat inferior surface cut obliquely
    liver_mass = ICRP89_MASS_G["liver"] * _lognormal(rng, MASS_CV["liver"])
    draws["liver_mass_g"] = liver_mass
    right = Ellipsoid(
        (-72.0 * wx + jitter(8), 5.0 + jitter(6), 0.0),
        (92.0, 88.0, 82.0),
        rotation(z_deg=jitter(10)),
        _deform(rng, 0.15),
    )
    left = Ellipsoid(
        (25.0 * wx + jitter(8), -28.0 + jitter(5), 0.0),
        (72.0, 45.0, 45.0),
        rotation(z_deg=-15.0 + jitter(8)),
        _deform(rng, 0.15),
    )
    liver_z = lung_z - 40.0 + jitter(10)
    right = Ellipsoid((right.centre[0], right.centre[1], liver_z), right.semi, right.rot, right.deform)
    left = Ellipsoid((left.centre[0], left.centre[1], liver_z + 30.0), left.semi, left.rot, left.deform)
    scale = (
        liver_mass
        / t["liver"].density_g_per_ml
        * 1000.0
        / 0.93
        / (right.nominal_volume_mm3 + 0.6 * left.nominal_volume_mm3)
    ) ** (1.0 / 3.0)
    right = right.scaled(scale)
    left = Ellipsoid(
        ((left.centre[0] - right.centre[0]) * scale + right.centre[0], left.centre[1], left.centre[2]),
        (left.semi[0] * scale, left.semi[1] * scale, left.semi[2] * scale),
        left.rot,
        left.deform,
    )
    liver_solid = HalfSpace(Union((right, left)), (0.0, 0.0, liver_z - 55.0 * scale), (0.15, 0.1, -1.0))
    add("liver", liver_solid, "liver", "liver", "liver")

    # spleen: bean (medial notch), posterior left upper quadrant
    spleen_mass = ICRP89_MASS_G["spleen"] * _lognormal(rng, MASS_CV["spleen"])
    draws["spleen_mass_g"] = spleen_mass
    spleen = Ellipsoid(
        (98.0 * wx + jitter(6), 48.0 * wy + jitter(6), liver_z + 10.0 + jitter(12)),
        (24.0, 48.0, 58.0),
        rotation(z_deg=35.0 + jitter(10), x_deg=jitter(10)),
        _deform(rng, 0.15),
    )
    spleen = _scaled_to_mass(spleen, spleen_mass, t["spleen"].density_g_per_ml, fraction_kept=0.9)
    notch = Ellipsoid(
        (
            spleen.centre[0] - 0.9 * spleen.semi[0] * 1.6,
            spleen.centre[1] - 0.3 * spleen.semi[1],
            spleen.centre[2],
        ),
        (spleen.semi[0] * 0.9, spleen.semi[1] * 0.5, spleen.semi[2] * 0.5),
        spleen.rot,
    )
    spleen_solid = Difference(spleen, notch)

    # kidneys: bean in perirenal fat, cortex ~6-8 mm over the medulla
    kidney_z = liver_z - 95.0 + jitter(10)
    kidneys: dict[str, tuple[Solid, Solid, Ellipsoid]] = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        mass = ICRP89_MASS_G["kidney"] * _lognormal(rng, MASS_CV["kidney"])
        draws[f"kidney_{side}_mass_g"] = mass
        centre = (
            sign * (62.0 * wx + jitter(5)),
            58.0 * wy + jitter(5),
            kidney_z + (12.0 if side == "left" else 0.0) + jitter(6),
        )
        outer = Ellipsoid(
            centre,
            (26.0, 17.0, 52.0),
            rotation(z_deg=sign * (25.0 + jitter(6)), y_deg=sign * (12.0 + jitter(5)), x_deg=jitter(8)),
            _deform(rng, 0.12),
        )
        outer = _scaled_to_mass(outer, mass, t["kidney"].density_g_per_ml, fraction_kept=0.92)
        hilum = Ellipsoid(
            (centre[0] - sign * outer.semi[0] * 1.05, centre[1] - 4.0, centre[2]),
            (outer.semi[0] * 0.45, outer.semi[1] * 0.5, outer.semi[2] * 0.3),
            outer.rot,
        )
        cortex_mm = float(rng.uniform(6.0, 8.0))
        draws[f"kidney_{side}_cortex_mm"] = cortex_mm
        whole: Solid = Difference(outer, hilum)
        medulla: Solid = Difference(outer.shrunk(cortex_mm), hilum.scaled(1.3))
        kidneys[side] = (whole, medulla, outer)
    for side, (_whole, _medulla, outer) in kidneys.items():
        add(f"fat_perirenal_{side}", outer.shrunk(-8.0), "adipose_tissue", "fat", None)
    add("spleen", spleen_solid, "spleen", "spleen", "spleen")
    for side, (whole, medulla, _outer) in kidneys.items():
        add(f"kidney_{side}_cortex", whole, "kidney", "kidney_cortex", f"kidney_{side}")
        add(f"kidney_{side}_medulla", medulla, "kidney", "kidney_medulla", f"kidney_{side}")

    # bowel and bladder (unlisted uptake)
    bowel = Ellipsoid(
        (jitter(10), -35.0 + jitter(6), 215.0 * hz + jitter(10)),
        (105.0 * wx, 45.0, 65.0),
        rotation(z_deg=jitter(8)),
        _deform(rng, 0.2),
    )
    add("bowel", bowel, "bowel", "bowel", None)
    bladder_volume_ml = float(rng.uniform(150.0, 350.0))
    draws["bladder_volume_ml"] = bladder_volume_ml
    r_bl = (bladder_volume_ml * 1000.0 * 3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    add(
        "bladder",
        Ellipsoid((jitter(5), -40.0 + jitter(5), 95.0 + jitter(6)), (r_bl * 1.2, r_bl * 0.9, r_bl * 0.93)),
        "urine",
        "bladder",
        None,
    )

    # spine: vertebral bodies with spongiosa (red marrow) in a cortical shell; discs are soft tissue
    spine_y = 62.0 * wy + jitter(4)
    z = 200.0 * hz + jitter(5)
    vertebra_scale = _lognormal(rng, 0.08)
    draws["vertebra_scale"] = vertebra_scale
    vertebra_centres: dict[str, tuple[float, float, float]] = {}
    for name, height in VERTEBRAE:
        h = height * hz
        lumbar = name.startswith("L")
        semi = ((23.0 if lumbar else 18.0) * vertebra_scale, (17.0 if lumbar else 14.0) * vertebra_scale)
        body = Cylinder((0.0, spine_y), semi, (z, z + h))
        spongiosa = Cylinder(
            (0.0, spine_y), (semi[0] - CORTEX_MM, semi[1] - CORTEX_MM), (z + CORTEX_MM, z + h - CORTEX_MM)
        )
        arch = Ellipsoid((0.0, spine_y + semi[1] + 14.0, z + h / 2.0), (14.0, 12.0, h / 2.0))
        add(f"vertebra_{name}_cortex", body, "cortical_bone", "cortical_bone", None)
        add(f"vertebra_{name}_arch", arch, "cortical_bone", "cortical_bone", None)
        add(f"vertebra_{name}_spongiosa", spongiosa, "spongiosa", f"marrow_{name}", f"spongiosa_{name}")
        vertebra_centres[name] = (0.0, spine_y, z + h / 2.0)
        z += h + DISC_MM * hz
    # pelvis: iliac wings and sacrum (spongiosa in cortex)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        wing = Ellipsoid(
            (sign * 95.0 * wx, 25.0, 160.0 * hz),
            (14.0, 58.0, 55.0),
            rotation(z_deg=sign * 35.0, x_deg=10.0),
            _deform(rng, 0.1),
        )
        add(f"ilium_{side}_cortex", wing, "cortical_bone", "cortical_bone", None)
        add(f"ilium_{side}_spongiosa", wing.shrunk(3.0), "spongiosa", "marrow_pelvis", "spongiosa_pelvis")
    sacrum = Ellipsoid((0.0, 78.0 * wy, 165.0 * hz), (38.0, 16.0, 45.0), rotation(x_deg=-25.0))
    add("sacrum_cortex", sacrum, "cortical_bone", "cortical_bone", None)
    add("sacrum_spongiosa", sacrum.shrunk(3.0), "spongiosa", "marrow_pelvis", "spongiosa_pelvis")

    # head glands
    glands: list[tuple[str, tuple[float, float, float], tuple[float, float, float]]]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        glands = [
            ("parotid", (sign * 56.0, 12.0, head_c[2] - 60.0), (14.0, 22.0, 22.0)),
            ("submandibular", (sign * 36.0, -28.0, head_c[2] - 105.0), (14.0, 18.0, 11.0)),
            ("lacrimal", (sign * 33.0, -72.0, head_c[2] + 25.0), (9.0, 5.0, 4.0)),
        ]
        for gland, gland_centre, gland_semi in glands:
            mass = ICRP89_MASS_G[gland] * _lognormal(rng, MASS_CV[gland])
            draws[f"{gland}_{side}_mass_g"] = mass
            shape = Ellipsoid(
                (gland_centre[0] + jitter(3), gland_centre[1] + jitter(3), gland_centre[2] + jitter(4)),
                gland_semi,
                rotation(z_deg=jitter(12), x_deg=jitter(12)),
                _deform(rng, 0.15),
            )
            tissue = "lacrimal_glands" if gland == "lacrimal" else "salivary_glands"
            add(
                f"{gland}_{side}",
                _scaled_to_mass(shape, mass, t[tissue].density_g_per_ml),
                tissue,
                gland,
                f"{gland}_{side}",
            )

    # lesions: the first of each site is at least 20 mm, the others 10-50 mm
    placed: list[Lesion] = []
    sites = ("liver", "bone", "lymph_node")
    for n in range(lesions):
        site = sites[n % 3]
        diameter = float(rng.uniform(20.0, 45.0)) if n < 3 else float(rng.uniform(10.0, 50.0))
        if site == "liver":
            centre = _inside_point(
                rng,
                liver_solid,
                diameter / 2.0 + 6.0,
                avoid=[(p.centre_mm, p.diameter_mm / 2.0) for p in placed],
            )
        elif site == "bone":
            diameter = min(diameter, 30.0)
            if rng.uniform() < 0.5:
                name = str(rng.choice(["T9", "T10", "T11"]))
                vc = vertebra_centres[name]
                diameter = min(diameter, 2.0 * 15.0 * vertebra_scale)
                centre = (vc[0] + jitter(2), vc[1] + jitter(2), vc[2])
            else:
                sign = float(rng.choice([-1.0, 1.0]))
                centre = (sign * 95.0 * wx, 25.0, 165.0 * hz)
                diameter = min(diameter, 26.0)
        else:
            station = NODE_STATIONS_MM[int(rng.integers(len(NODE_STATIONS_MM)))]
            diameter = min(diameter, 35.0)
            centre = (station[0] * wx + jitter(4), station[1] + jitter(4), station[2] * hz + jitter(6))
        lesion = Lesion(
            f"lesion_{n + 1}", site, (float(centre[0]), float(centre[1]), float(centre[2])), diameter
        )
        placed.append(lesion)
        add(
            lesion.name,
            Ellipsoid(lesion.centre_mm, (diameter / 2.0,) * 3),
            "tumour",
            lesion.name,
            lesion.name,
        )
    z_top = head_c[2] + 112.0 * (1.0 + 0.06)
    return TrialPatient(seed, tuple(parts), tuple(placed), (0.0, float(z_top)), draws)


def _inside_point(
    rng: np.random.Generator,
    solid: Solid,
    margin_mm: float,
    *,
    avoid: Sequence[tuple[tuple[float, float, float], float]],
) -> tuple[float, float, float]:
    """A random point of ``solid`` whose ball of ``margin_mm`` lies inside it and clear of ``avoid``."""
    lo, hi = solid.bounds()
    dirs = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
        + [[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)],
        dtype=np.float64,
    )
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    for _ in range(4000):
        c = rng.uniform(lo, hi)
        pts = np.vstack([c[None, :], c + margin_mm * dirs])
        if not bool(np.all(solid.inside(pts))):
            continue
        if all(np.linalg.norm(c - np.asarray(a)) > margin_mm + r + 5.0 for a, r in avoid):
            return (float(c[0]), float(c[1]), float(c[2]))
    raise InputError("no room for a lesion of this size in the organ: use a smaller lesion")


# ------------------------------------------------------------------------------------------ voxelisation
@dataclass(frozen=True)
class Pose:
    """Rigid patient pose on the couch: rotation (deg) about z and x through ``centre_mm``, then shift.

    A scanner point p shows the patient point q = Rᵀ(p − centre − shift) + centre.
    """

    rotation_z_deg: float = 0.0
    rotation_x_deg: float = 0.0
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    centre_mm: tuple[float, float, float] = (0.0, 0.0, 400.0)

    @property
    def is_identity(self) -> bool:
        return self.rotation_z_deg == 0.0 and self.rotation_x_deg == 0.0 and not any(self.shift_mm)

    def to_patient(self, p: Points) -> Points:
        r = rotation(z_deg=self.rotation_z_deg, x_deg=self.rotation_x_deg)
        c = np.asarray(self.centre_mm)
        return np.asarray((p - c - np.asarray(self.shift_mm)) @ r + c, dtype=np.float64)

    def to_scanner_bounds(self, lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        r = rotation(z_deg=self.rotation_z_deg, x_deg=self.rotation_x_deg)
        c = np.asarray(self.centre_mm)
        scanner = (corners - c) @ r.T + c + np.asarray(self.shift_mm)
        return scanner.min(axis=0), scanner.max(axis=0)


@dataclass(frozen=True)
class TrialGrid:
    """Image grid: shape (n_z, n, n), isotropic ``spacing_mm``, LPS centre of voxel (0, 0, 0) ``origin_mm``
    (x, y, z); axes (slice, row, column) = (z, y, x)."""

    shape: tuple[int, int, int]
    spacing_mm: float
    origin_mm: tuple[float, float, float]

    @property
    def voxel_ml(self) -> float:
        return self.spacing_mm**3 / 1000.0

    def affine(self) -> FloatArray:
        s = self.spacing_mm
        x0, y0, z0 = self.origin_mm
        return np.array([[0, 0, s, x0], [0, s, 0, y0], [s, 0, 0, z0], [0, 0, 0, 1]], dtype=np.float64)


#: The field of view starts this far above the pelvic floor (below the bladder: the thighs are not imaged).
FOV_START_MM = 40.0


def grid_for(patient: TrialPatient, *, n: int, spacing_mm: float, margin_mm: float = 10.0) -> TrialGrid:
    """A grid of n × n columns from :data:`FOV_START_MM` to ``margin_mm`` above the vertex."""
    z0, z1 = patient.z_range_mm
    z0 = z0 + FOV_START_MM
    nz = math.ceil((z1 - z0 + margin_mm) / spacing_mm)
    origin = (-spacing_mm * (n - 1) / 2.0, -spacing_mm * (n - 1) / 2.0, z0)
    return TrialGrid((nz, n, n), float(spacing_mm), origin)


@dataclass(frozen=True)
class Voxelised:
    """A patient on a grid.

    Attributes
    ----------
    grid : TrialGrid
    fractions : dict
        Part name → (box, fraction array): the fraction of each voxel of ``box`` inside the part (after
        the parts painted over it).
    hu : ndarray
        CT numbers with partial volume, no noise.
    density_g_per_ml : ndarray
        Mass density with partial volume.
    region_labels : ndarray of int16
        Segmentation: the region at each voxel's centre (0: none).
    region_table : dict
        Region name → label value.
    """

    grid: TrialGrid
    fractions: Mapping[str, tuple[tuple[slice, slice, slice], npt.NDArray[np.float32]]]
    hu: npt.NDArray[np.float32]
    density_g_per_ml: npt.NDArray[np.float32]
    region_labels: npt.NDArray[np.int16]
    region_table: Mapping[str, int]

    def part_map(self, name: str) -> npt.NDArray[np.float32]:
        """Full-grid fraction map of one part."""
        out = np.zeros(self.grid.shape, dtype=np.float32)
        if name in self.fractions:
            box, values = self.fractions[name]
            out[box] = values
        return out

    def map_of(self, values: Mapping[str, float]) -> FloatArray:
        """Σ_parts value(part) × fraction (parts without a value contribute nothing)."""
        out = np.zeros(self.grid.shape, dtype=np.float64)
        for name, v in values.items():
            if v != 0.0 and name in self.fractions:
                box, frac = self.fractions[name]
                out[box] += v * frac
        return out


AIR_HU = -1000.0
AIR_DENSITY_G_PER_ML = 0.0012


def voxelise(
    patient: TrialPatient,
    grid: TrialGrid,
    *,
    pose: Pose | None = None,
    supersampling: int = 2,
    slab: int = 6,
    progress: Callable[[str], None] | None = None,
) -> Voxelised:
    """Voxelise ``patient`` on ``grid`` in ``pose`` (module docstring)."""
    if supersampling < 1:
        raise InputError(f"supersampling must be >= 1; got {supersampling}")
    pose = pose or Pose()
    tissues = trial_tissues()
    nz, ny, nx = grid.shape
    s = grid.spacing_mm
    k = supersampling
    offsets = (np.arange(k) + 0.5) / k - 0.5
    parts = patient.parts
    # scanner-space voxel boxes of the parts
    boxes: list[tuple[slice, slice, slice] | None] = []
    for p in parts:
        lo, hi = pose.to_scanner_bounds(*p.solid.bounds())
        i0 = [math.floor((lo[a] - grid.origin_mm[a]) / s) - 1 for a in range(3)]  # x, y, z
        i1 = [math.ceil((hi[a] - grid.origin_mm[a]) / s) + 2 for a in range(3)]
        zs = slice(max(i0[2], 0), min(i1[2], nz))
        ys = slice(max(i0[1], 0), min(i1[1], ny))
        xs = slice(max(i0[0], 0), min(i1[0], nx))
        boxes.append(
            (zs, ys, xs) if zs.stop > zs.start and ys.stop > ys.start and xs.stop > xs.start else None
        )
    fractions: dict[str, tuple[tuple[slice, slice, slice], npt.NDArray[np.float32]]] = {
        p.name: (
            b,
            np.zeros(
                (b[0].stop - b[0].start, b[1].stop - b[1].start, b[2].stop - b[2].start), dtype=np.float32
            ),
        )
        for p, b in zip(parts, boxes, strict=True)
        if b is not None
    }
    for z0 in range(0, nz, slab):
        z1 = min(z0 + slab, nz)
        if progress is not None and z0 % (slab * 10) == 0:
            progress(f"voxelising slices {z0}-{z1} of {nz}")
        fine = np.full(((z1 - z0) * k, ny * k, nx * k), -1, dtype=np.int16)
        present: list[int] = []
        for idx, (p, b) in enumerate(zip(parts, boxes, strict=True)):
            if b is None or b[0].stop <= z0 or b[0].start >= z1:
                continue
            zr = (max(b[0].start, z0), min(b[0].stop, z1))
            zf = (np.arange(zr[0], zr[1])[:, None] + offsets[None, :]).ravel()
            yf = (np.arange(b[1].start, b[1].stop)[:, None] + offsets[None, :]).ravel()
            xf = (np.arange(b[2].start, b[2].stop)[:, None] + offsets[None, :]).ravel()
            zz, yy, xx = np.meshgrid(zf, yf, xf, indexing="ij")
            pts = np.stack(
                [
                    grid.origin_mm[0] + s * xx.ravel(),
                    grid.origin_mm[1] + s * yy.ravel(),
                    grid.origin_mm[2] + s * zz.ravel(),
                ],
                axis=1,
            )
            inside = p.solid.inside(pose.to_patient(pts) if not pose.is_identity else pts).reshape(zz.shape)
            if not inside.any():
                continue
            view = fine[
                (zr[0] - z0) * k : (zr[1] - z0) * k,
                b[1].start * k : b[1].stop * k,
                b[2].start * k : b[2].stop * k,
            ]
            view[inside] = idx
            present.append(idx)
        for idx in sorted(set(present)):
            p, b = parts[idx], boxes[idx]
            assert b is not None
            zr = (max(b[0].start, z0), min(b[0].stop, z1))
            sub = fine[
                (zr[0] - z0) * k : (zr[1] - z0) * k,
                b[1].start * k : b[1].stop * k,
                b[2].start * k : b[2].stop * k,
            ]
            frac = (
                (sub == idx)
                .reshape(zr[1] - zr[0], k, sub.shape[1] // k, k, sub.shape[2] // k, k)
                .mean(axis=(1, 3, 5))
            )
            _box, arr = fractions[p.name]
            arr[zr[0] - b[0].start : zr[1] - b[0].start] = frac
    # crop the fraction boxes to their non-zero extent
    cropped: dict[str, tuple[tuple[slice, slice, slice], npt.NDArray[np.float32]]] = {}
    for name, (b, arr) in fractions.items():
        nonzero = np.argwhere(arr > 0)
        if nonzero.size == 0:
            continue
        lo, hi = nonzero.min(axis=0), nonzero.max(axis=0) + 1
        box = tuple(slice(b[a].start + int(lo[a]), b[a].start + int(hi[a])) for a in range(3))
        cropped[name] = (
            (box[0], box[1], box[2]),
            np.ascontiguousarray(arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]),
        )
    vox = Voxelised(
        grid,
        cropped,
        np.zeros(grid.shape, np.float32),
        np.zeros(grid.shape, np.float32),
        np.zeros(grid.shape, np.int16),
        {},
    )
    filled = np.zeros(grid.shape, dtype=np.float64)
    for p in parts:
        if p.name in cropped:
            box, arr = cropped[p.name]
            filled[box] += arr
    hu = vox.map_of({p.name: tissues[p.tissue].hu for p in parts}) + AIR_HU * np.clip(1.0 - filled, 0.0, 1.0)
    density = vox.map_of(
        {p.name: tissues[p.tissue].density_g_per_ml for p in parts}
    ) + AIR_DENSITY_G_PER_ML * np.clip(1.0 - filled, 0.0, 1.0)
    regions = patient.regions()
    table = {name: i + 1 for i, name in enumerate(regions)}
    if k > 1:
        # the segmentation: the region at each voxel's centre (one sample per voxel)
        centre = voxelise(patient, grid, pose=pose, supersampling=1, slab=slab)
        labels, table = centre.region_labels, dict(centre.region_table)
    else:
        labels = np.zeros(grid.shape, dtype=np.int16)
        for region in regions:
            frac = np.zeros(grid.shape, dtype=np.float32)
            for p in parts:
                if p.region == region and p.name in cropped:
                    box, arr = cropped[p.name]
                    frac[box] += arr
            labels[frac > 0.5] = table[region]
        kept = set(np.unique(labels).tolist())
        table = {name: value for name, value in table.items() if value in kept}
    return Voxelised(grid, cropped, hu.astype(np.float32), density.astype(np.float32), labels, table)
