"""NIfTI-1 files (``.nii``/``.nii.gz``) for volumes and label maps, via nibabel.

NIfTI stores voxel axes (i, j, k) = (column, row, slice) and an affine to RAS millimetres, so writing a
:class:`Volume` transposes the array and flips x and y (LPS → RAS). The unit is recorded in the header's
``descrip`` field as ``theradose unit=<unit>`` and restored on reading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.imaging.volume import UNITS, Unit, Volume

#: LPS ↔ RAS: negate x and y.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Volume index order (slice, row, column) ↔ NIfTI index order (column, row, slice).
AXIS_SWAP = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
_UNIT_PATTERN = re.compile(r"theradose unit=([^\x00\s]+)")


def nifti_affine(volume: Volume) -> npt.NDArray[np.float64]:
    """RAS affine of the NIfTI voxel grid (i, j, k) = (column, row, slice) of ``volume``."""
    return np.asarray(LPS_TO_RAS @ volume.affine @ AXIS_SWAP, dtype=np.float64)


def write_nifti(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``); label volumes keep their integer type."""
    import nibabel as nib

    out = Path(path)
    if not (out.name.endswith(".nii") or out.name.endswith(".nii.gz")):
        raise InputError(f"NIfTI path must end in .nii or .nii.gz; got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    array: npt.NDArray[Any] = np.asarray(volume.array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    factory: Any = nib.Nifti1Image
    image: Any = factory(np.ascontiguousarray(array.transpose(2, 1, 0)), nifti_affine(volume))
    image.header["descrip"] = f"theradose unit={volume.unit}".encode()[:79]
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    nib.save(image, str(out))
    return out


def read_nifti(path: str | Path, *, unit: Unit | None = None) -> Volume:
    """Read a NIfTI file as a :class:`Volume`.

    Parameters
    ----------
    path : path
        ``.nii`` or ``.nii.gz`` file with a 3-D image (a trailing axis of length 1 is dropped).
    unit : str, optional
        Unit of the values; default is the one recorded by :func:`write_nifti`, and an error if none.
    """
    import nibabel as nib

    source = Path(path)
    if not source.is_file():
        raise InputError(f"NIfTI file {str(source)!r} does not exist: check the path")
    try:
        image: Any = nib.load(str(source))
        data = np.asarray(image.dataobj)
    except Exception as exc:
        raise InputError(f"file {str(source)!r} cannot be read as NIfTI ({exc})") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"NIfTI file {str(source)!r} holds a {data.ndim}-D image; a 3-D volume is needed")
    recorded = _UNIT_PATTERN.search(bytes(image.header["descrip"]).decode("utf-8", "replace"))
    chosen = unit or (recorded.group(1) if recorded else None)
    if chosen is None:
        raise InputError(
            f"NIfTI file {str(source)!r} does not record a unit: pass unit= (one of {', '.join(UNITS)})"
        )
    if chosen not in UNITS:
        raise InputError(f"unit must be one of {', '.join(UNITS)}; got {chosen!r}")
    affine = np.linalg.inv(LPS_TO_RAS) @ np.asarray(image.affine, dtype=np.float64) @ np.linalg.inv(AXIS_SWAP)
    if chosen == "label" and data.dtype.kind == "f":
        if not np.array_equal(data, np.rint(data)):
            raise InputError(f"label file {str(source)!r} holds non-integer values: it is not a label map")
        data = data.astype(np.int32)
    return Volume(np.ascontiguousarray(data.transpose(2, 1, 0)), affine, chosen)  # type: ignore[arg-type]


__all__ = ["nifti_affine", "read_nifti", "write_nifti"]
