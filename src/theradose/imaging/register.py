"""CT-to-CT registration between time points (SimpleITK), applied to SPECT and masks.

Rigid registration maximises Mattes mutual information (Mattes D et al., "PET-CT image registration in the
chest using free-form deformations", IEEE Trans Med Imaging 2003;22:120) over a 6-parameter Euler
transform, initialised by aligning the geometric centres, with a three-level pyramid (shrink 4, 2, 1;
smoothing 2, 1, 0 voxels). An optional B-spline stage (mesh of ``bspline_mesh_size`` nodes per axis)
follows it (two levels: shrink 2, 1). The transform maps **fixed** physical points to **moving** physical
points (ITK convention), so resampling a moving-frame volume onto the fixed grid uses it directly.

Quality figure: Dice coefficient of the CT body masks (HU > −300) of the fixed and the transformed moving
image, before and after registration, and the final Mattes mutual information (negative: lower is
better, as SimpleITK reports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.imaging.resample import from_sitk, to_sitk
from theradose.imaging.segment import body_mask
from theradose.imaging.volume import Volume

Interpolation = Literal["linear", "nearest"]


def _sitk() -> Any:
    """The SimpleITK module (untyped), imported on first use."""
    import SimpleITK

    return SimpleITK


@dataclass(frozen=True)
class RegistrationQuality:
    """Registration quality figures (dimensionless)."""

    dice_body_before: float
    dice_body_after: float
    mutual_information: float
    iterations: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "dice_body_before": self.dice_body_before,
            "dice_body_after": self.dice_body_after,
            "mutual_information": self.mutual_information,
            "iterations": self.iterations,
        }


@dataclass(frozen=True)
class Registration:
    """A registration result: the transform (fixed → moving points), its parameters and its quality.

    ``rotation_deg`` and ``translation_mm`` describe the rigid stage (Euler angles about x, y, z).
    """

    transform: Any
    quality: RegistrationQuality
    rotation_deg: tuple[float, float, float]
    translation_mm: tuple[float, float, float]
    deformable: bool

    def apply(self, moving: Volume, reference: Volume, *, method: str | None = None) -> Volume:
        """``moving`` (in the moving image's frame) on ``reference``'s grid (:func:`apply_transform`)."""
        return apply_transform(moving, self.transform, reference, method=method)

    def write(self, path: str | Path) -> Path:
        """Write the transform as an ITK transform file (``.tfm``/``.txt``/``.h5``)."""
        sitk = _sitk()

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteTransform(self.transform, str(out))
        return out


def dice(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two boolean masks (Dice LR, Ecology 1945;26:297)."""
    x = np.asarray(a, dtype=bool)
    y = np.asarray(b, dtype=bool)
    total = int(x.sum()) + int(y.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(x, y).sum()) / total


def register_ct(
    fixed_hu: Volume,
    moving_hu: Volume,
    *,
    deformable: bool = False,
    bspline_mesh_size: int = 4,
    iterations: int = 200,
    sampling_fraction: float = 0.2,
    seed: int = 20261122,
) -> Registration:
    """Rigidly (and optionally B-spline) register ``moving_hu`` onto ``fixed_hu``.

    Parameters
    ----------
    fixed_hu, moving_hu : Volume
        CTs in HU; frames of reference may differ.
    deformable : bool
        Add a B-spline stage after the rigid one.
    bspline_mesh_size : int
        B-spline control-point mesh size per axis.
    iterations : int
        Maximum optimiser iterations per pyramid level.
    sampling_fraction : float
        Fraction of fixed voxels sampled (randomly, with ``seed``) for the metric.

    Returns
    -------
    Registration
    """
    sitk = _sitk()

    for name, vol in (("fixed_hu", fixed_hu), ("moving_hu", moving_hu)):
        if not isinstance(vol, Volume) or vol.unit != "HU":
            raise InputError(f"{name} must be a CT Volume in HU")
    if not 0 < sampling_fraction <= 1:
        raise InputError(f"sampling_fraction must be in (0, 1]; got {sampling_fraction!r}")
    if iterations < 1 or bspline_mesh_size < 1:
        raise InputError("iterations and bspline_mesh_size must be at least 1")
    fixed = sitk.Cast(to_sitk(fixed_hu), sitk.sitkFloat32)
    moving = sitk.Cast(to_sitk(moving_hu), sitk.sitkFloat32)
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    method = _method(iterations, sampling_fraction, seed)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-4, numberOfIterations=iterations, relaxationFactor=0.5
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(initial, inPlace=False)
    rigid = method.Execute(fixed, moving)
    total_iterations = int(method.GetOptimizerIteration())
    euler = sitk.Euler3DTransform(sitk.CompositeTransform(rigid).GetNthTransform(0))
    final: Any = rigid
    metric = float(method.GetMetricValue())
    if deformable:
        mesh = [bspline_mesh_size] * 3
        bspline = sitk.BSplineTransformInitializer(fixed, mesh)
        stage = _method(iterations, sampling_fraction, seed)
        stage.SetShrinkFactorsPerLevel([2, 1])
        stage.SetSmoothingSigmasPerLevel([1, 0])
        stage.SetOptimizerAsLBFGSB(
            gradientConvergenceTolerance=1e-5, numberOfIterations=iterations, maximumNumberOfCorrections=5
        )
        stage.SetMovingInitialTransform(rigid)
        stage.SetInitialTransform(bspline, inPlace=True)
        stage.Execute(fixed, moving)
        composite = sitk.CompositeTransform(rigid)
        composite.AddTransform(bspline)
        final = composite
        metric = float(stage.GetMetricValue())
        total_iterations += int(stage.GetOptimizerIteration())
    fixed_body = body_mask(fixed_hu)
    moving_body = moving_hu.with_array(body_mask(moving_hu).astype(np.uint8), unit="label")
    identity = sitk.Euler3DTransform()
    before = apply_transform(moving_body, identity, fixed_hu, method="nearest").array
    after = apply_transform(moving_body, final, fixed_hu, method="nearest").array
    angles = np.degrees([euler.GetAngleX(), euler.GetAngleY(), euler.GetAngleZ()])
    translation = euler.GetTranslation()
    return Registration(
        transform=final,
        quality=RegistrationQuality(
            dice_body_before=dice(fixed_body, before),
            dice_body_after=dice(fixed_body, after),
            mutual_information=metric,
            iterations=total_iterations,
        ),
        rotation_deg=(float(angles[0]), float(angles[1]), float(angles[2])),
        translation_mm=(float(translation[0]), float(translation[1]), float(translation[2])),
        deformable=deformable,
    )


def _method(iterations: int, sampling_fraction: float, seed: int) -> Any:
    sitk = _sitk()

    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling_fraction, seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return method


def apply_transform(
    moving: Volume, transform: Any, reference: Volume, *, method: str | None = None
) -> Volume:
    """Resample ``moving`` through ``transform`` (fixed → moving points) onto ``reference``'s grid.

    Labels use nearest neighbour (``method="nearest"``), images linear interpolation by default; the
    result carries ``reference``'s frame of reference (it now lives in the fixed image's space) and
    ``moving``'s unit and acquisition time.
    """
    sitk = _sitk()

    chosen = method or ("nearest" if moving.unit == "label" else "linear")
    if chosen not in ("linear", "nearest"):
        raise InputError(f"method must be 'linear' or 'nearest'; got {chosen!r}")
    if chosen == "linear" and moving.unit == "label":
        raise InputError("linear interpolation of a label volume invents labels: use method='nearest'")
    image = to_sitk(moving)
    grid = to_sitk(reference.with_array(np.zeros(reference.shape, dtype=np.uint8), unit="label"))
    interpolator = sitk.sitkNearestNeighbor if chosen == "nearest" else sitk.sitkLinear
    out = sitk.Resample(image, grid, transform, interpolator, 0.0, image.GetPixelID())
    result = from_sitk(out, unit=moving.unit)
    values: npt.NDArray[Any] = result.array
    if moving.array.dtype == np.bool_:
        values = values.astype(bool)
    return Volume(
        values,
        reference.affine,
        moving.unit,
        frame_uid=reference.frame_uid,
        acquisition_datetime=moving.acquisition_datetime,
    )


def read_transform(path: str | Path) -> Any:
    """Read an ITK transform file written by :meth:`Registration.write`."""
    sitk = _sitk()

    source = Path(path)
    if not source.is_file():
        raise InputError(f"transform file {str(source)!r} does not exist: check the path")
    try:
        return sitk.ReadTransform(str(source))
    except RuntimeError as exc:
        raise InputError(
            f"file {str(source)!r} is not an ITK transform ({str(exc).splitlines()[0]})"
        ) from exc


__all__ = [
    "Registration",
    "RegistrationQuality",
    "apply_transform",
    "dice",
    "read_transform",
    "register_ct",
]
