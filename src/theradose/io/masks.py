"""Regions of interest in and out: DICOM RTSTRUCT, DICOM SEG (highdicom) and NIfTI label maps.

Masks are boolean :class:`Volume` objects (unit ``"label"``), one per named region, so that overlapping
regions (kidney inside body) are kept apart; :func:`masks_to_labels` merges them into one label map.

RTSTRUCT rasterisation (any grid whose slices are parallel to the contour planes, e.g. CT or SPECT): each
slice takes the contours of the nearest contour plane within half the contour spacing (or half the slice
spacing if larger); a voxel is inside when its centre is inside an odd number of that plane's polygons
(even-odd rule, so holes and islands work). Writing traces each slice's mask with marching squares at
level 0.5 (contourpy), which passes half-way between inside and outside voxel centres, so rasterising the
written contours on the same grid gives the mask back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.errors import DicomError, GeometryError, InputError
from theradose.imaging.volume import Volume
from theradose.io.dicom.read import malformed_data_errors, tolerant

RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
#: Study Component Management SOP Class, referenced in RT Referenced Study Sequence (PS3.3 C.8.8.5).
STUDY_REFERENCE_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"
#: Contour planes closer than this (mm) are the same plane.
PLANE_TOLERANCE_MM = 0.01
_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (255, 128, 0))


# ------------------------------------------------------------------------------------------------ helpers
def _check_mask(mask: Volume, name: str) -> npt.NDArray[np.bool_]:
    if not isinstance(mask, Volume) or mask.unit != "label":
        raise InputError(f"mask {name!r} must be a label Volume")
    return np.asarray(mask.array).astype(bool)


def masks_to_labels(masks: Mapping[str, Volume]) -> tuple[Volume, dict[int, str]]:
    """Merge masks on one grid into a ``uint16`` label map (later masks win overlaps) and its names."""
    if not masks:
        raise InputError("no masks given: pass at least one region")
    first = next(iter(masks.values()))
    labels = np.zeros(first.shape, dtype=np.uint16)
    names: dict[int, str] = {}
    for value, (name, mask) in enumerate(masks.items(), start=1):
        if not mask.same_grid(first):
            raise GeometryError(f"mask {name!r} is not on the grid of the first mask: resample it first")
        labels[_check_mask(mask, name)] = value
        names[value] = name
    return first.with_array(labels, unit="label"), names


def labels_to_masks(labels: Volume, names: Mapping[int, str] | None = None) -> dict[str, Volume]:
    """Split a label map into one boolean mask per nonzero label (named by ``names`` or ``label N``)."""
    if labels.unit != "label":
        raise InputError(f"labels must be a label Volume; got unit {labels.unit!r}")
    values = [int(v) for v in np.unique(labels.array) if v != 0]
    return {
        (names or {}).get(v, f"label {v}"): labels.with_array(np.asarray(labels.array) == v, unit="label")
        for v in values
    }


# ------------------------------------------------------------------------------------------ RTSTRUCT read
@tolerant
def read_rtstruct(
    path: str | Path, reference: Volume, *, names: Sequence[str] | None = None
) -> dict[str, Volume]:
    """Rasterise the closed planar contours of an RT Structure Set onto ``reference``'s grid.

    Parameters
    ----------
    path : path
        RTSTRUCT file.
    reference : Volume
        Target grid (CT, SPECT, dose); its slices must be parallel to the contour planes.
    names : sequence of str, optional
        ROI names to read (default: all with closed planar contours).

    Returns
    -------
    dict
        ROI name → boolean label Volume on ``reference``'s grid.

    Raises
    ------
    DicomError
        Not an RT Structure Set, or a requested ROI is missing.
    GeometryError
        Contours in another frame of reference, or not parallel to the reference slices.
    """
    from theradose.io.dicom.read import _dcmread

    ds = _dcmread(Path(path), header_only=False)
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_STORAGE and ds.get("Modality") != "RTSTRUCT":
        raise DicomError(
            f"{str(path)!r} is not an RT Structure Set (Modality {ds.get('Modality', 'absent')})"
        )
    rois = {int(r.ROINumber): r for r in ds.get("StructureSetROISequence", [])}
    wanted = set(names) if names is not None else None
    found = {str(r.ROIName) for r in rois.values()}
    if wanted is not None and not wanted <= found:
        raise DicomError(f"ROI {sorted(wanted - found)} not in {str(path)!r}; it holds {sorted(found)}")
    result: dict[str, Volume] = {}
    for contour_item in ds.get("ROIContourSequence", []):
        roi = rois.get(int(contour_item.ReferencedROINumber))
        if roi is None:
            continue
        name = str(roi.ROIName)
        if wanted is not None and name not in wanted:
            continue
        frame = roi.get("ReferencedFrameOfReferenceUID")
        if frame and reference.frame_uid and str(frame) != reference.frame_uid:
            raise GeometryError(
                f"ROI {name!r} is in frame of reference {frame}, the grid in {reference.frame_uid}: "
                "register and resample first"
            )
        polygons = [
            np.asarray(c.ContourData, dtype=np.float64).reshape(-1, 3)
            for c in contour_item.get("ContourSequence", [])
            if str(c.get("ContourGeometricType", "")) == "CLOSED_PLANAR" and len(c.ContourData) >= 9
        ]
        if not polygons:
            continue
        result[name] = reference.with_array(_rasterise(polygons, reference, name), unit="label")
    return result


def _rasterise(
    polygons: list[npt.NDArray[np.float64]], reference: Volume, name: str
) -> npt.NDArray[np.bool_]:
    from matplotlib.path import Path as PolygonPath

    direction = reference.direction
    normal = np.cross(direction[:, 2], direction[:, 1])  # X × Y (column dir × row dir)
    slice_step = reference.affine[:3, 0]
    along = float(np.dot(slice_step, normal))
    if abs(abs(along) - np.linalg.norm(slice_step)) > 1e-3 * np.linalg.norm(slice_step):
        raise GeometryError(f"grid slices are tilted against their planes; ROI {name!r} cannot be rasterised")
    planes: dict[float, list[npt.NDArray[np.float64]]] = {}
    for points in polygons:
        heights = points @ normal
        if np.ptp(heights) > 0.5:
            raise GeometryError(
                f"ROI {name!r} has contours not parallel to the grid's slices: rasterise on a grid parallel "
                "to the contours, then resample"
            )
        key = round(float(heights.mean()) / PLANE_TOLERANCE_MM) * PLANE_TOLERANCE_MM
        planes.setdefault(key, []).append(points)
    heights_sorted = np.array(sorted(planes))
    contour_spacing = float(np.median(np.diff(heights_sorted))) if len(heights_sorted) > 1 else 0.0
    tolerance = max(contour_spacing, abs(along)) / 2.0 + PLANE_TOLERANCE_MM
    n0, n1, n2 = reference.shape
    mask = np.zeros(reference.shape, dtype=bool)
    rows, columns = np.meshgrid(np.arange(n1), np.arange(n2), indexing="ij")
    centres = np.column_stack([columns.ravel(), rows.ravel()]).astype(np.float64)
    origin_height = float(np.dot(reference.affine[:3, 3], normal))
    for k in range(n0):
        height = origin_height + k * along
        nearest = int(np.argmin(np.abs(heights_sorted - height)))
        if abs(heights_sorted[nearest] - height) > tolerance:
            continue
        inside = np.zeros(n1 * n2, dtype=bool)
        for points in planes[float(heights_sorted[nearest])]:
            index = reference.index_of(points)
            polygon = PolygonPath(np.column_stack([index[:, 2], index[:, 1]]))
            inside ^= polygon.contains_points(centres)
        mask[k] = inside.reshape(n1, n2)
    return mask


# ------------------------------------------------------------------------------------------ RTSTRUCT write
def _reference_series(reference_files: Sequence[str | Path]) -> tuple[list[Any], Volume]:
    from theradose.io.dicom.read import _dcmread, _geometry

    if not reference_files:
        raise InputError("reference_files is empty: pass the image series the regions were drawn on")
    datasets = [_dcmread(Path(p), header_only=True) for p in reference_files]
    geometry = _geometry(datasets)
    if any(frame != 0 for _, frame in geometry.order):
        raise InputError("reference_files must be a single-frame series (one file per slice, e.g. CT)")
    ordered = [datasets[i] for i, _ in geometry.order]
    grid = Volume(
        np.zeros((geometry.n_slices, geometry.rows, geometry.columns), dtype=np.uint8),
        geometry.affine,
        "label",
        frame_uid=str(ordered[0].get("FrameOfReferenceUID", "")) or None,
    )
    return ordered, grid


def _copy_patient_study(target: Any, source: Any) -> None:
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
    ):
        if keyword in source:
            target[keyword] = source[keyword]
        else:
            setattr(target, keyword, "")


def _slice_contours(mask2d: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.float64]]:
    """Closed contours (column, row) around the True pixels of a 2-D mask (marching squares, level 0.5)."""
    import contourpy

    padded = np.pad(mask2d.astype(np.float64), 1)
    generator = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate)
    lines = []
    for line in generator.lines(0.5):
        points = np.asarray(line, dtype=np.float64) - 1.0  # undo the padding
        if len(points) > 1 and np.allclose(points[0], points[-1]):
            points = points[:-1]
        if len(points) >= 3:
            lines.append(points)
    return lines


def write_rtstruct(
    masks: Mapping[str, Volume],
    path: str | Path,
    *,
    reference_files: Sequence[str | Path],
    label: str = "theradose",
    series_description: str = "Regions of interest",
    structure_datetime: datetime | None = None,
) -> Path:
    """Write masks on the grid of an image series as an RT Structure Set referencing that series.

    Parameters
    ----------
    masks : mapping of str to Volume
        Region name → boolean label volume on the grid of ``reference_files``.
    path : path
        Output file.
    reference_files : sequence of path
        The single-frame image series (e.g. CT) the regions belong to; patient, study and frame of
        reference are taken from it, and every contour references its slice.
    label, series_description, structure_datetime
        Structure Set Label, Series Description and Structure Set Date/Time (default: now).
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    from theradose.io.dicom.info import format_da, format_tm
    from theradose.io.dicom.write import MANUFACTURER, _ds_number, _file_meta, _save, new_uid

    if not masks:
        raise InputError("no masks given: pass at least one region")
    ordered, grid = _reference_series(reference_files)
    first = ordered[0]
    sop_uid = new_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(RTSTRUCT_STORAGE, sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = RTSTRUCT_STORAGE
    ds.SOPInstanceUID = sop_uid
    _copy_patient_study(ds, first)
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = new_uid()
    ds.SeriesNumber = 100
    ds.SeriesDescription = series_description
    ds.OperatorsName = ""
    ds.Manufacturer = MANUFACTURER
    ds.InstanceNumber = 1
    when = structure_datetime or datetime.now()
    ds.StructureSetLabel = label[:16]
    ds.StructureSetDate = format_da(when)
    ds.StructureSetTime = format_tm(when)
    frame_uid = str(first.get("FrameOfReferenceUID", ""))
    if not frame_uid:
        raise DicomError("reference series has no FrameOfReferenceUID: an RT Structure Set needs one")
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""

    def image_item(image: Any) -> Any:
        item = Dataset()
        item.ReferencedSOPClassUID = image.SOPClassUID
        item.ReferencedSOPInstanceUID = image.SOPInstanceUID
        return item

    series_item = Dataset()
    series_item.SeriesInstanceUID = first.SeriesInstanceUID
    series_item.ContourImageSequence = DicomSequence([image_item(d) for d in ordered])
    study_item = Dataset()
    study_item.ReferencedSOPClassUID = STUDY_REFERENCE_SOP_CLASS
    study_item.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_item.RTReferencedSeriesSequence = DicomSequence([series_item])
    frame_item = Dataset()
    frame_item.FrameOfReferenceUID = frame_uid
    frame_item.RTReferencedStudySequence = DicomSequence([study_item])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_item])

    rois, contours, observations = [], [], []
    for number, (name, mask) in enumerate(masks.items(), start=1):
        values = _check_mask(mask, name)
        if not mask.same_grid(grid, atol_mm=0.01):
            raise GeometryError(f"mask {name!r} is not on the reference series grid: resample it first")
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_uid
        roi.ROIName = name[:64]
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(roi)
        items = []
        for k in range(values.shape[0]):
            for line in _slice_contours(values[k]):
                index = np.column_stack([np.full(len(line), float(k)), line[:, 1], line[:, 0]])
                world = grid.world_coordinates_mm(index)
                item = Dataset()
                item.ContourImageSequence = DicomSequence([image_item(ordered[k])])
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(world)
                item.ContourData = [_ds_number(v) for v in world.ravel()]
                items.append(item)
        contour = Dataset()
        contour.ReferencedROINumber = number
        contour.ROIDisplayColor = list(_COLOURS[(number - 1) % len(_COLOURS)])
        if items:
            contour.ContourSequence = DicomSequence(items)
        contours.append(contour)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = "ORGAN"
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    return _save(ds, Path(path))


# ------------------------------------------------------------------------------------------------ SEG
def write_seg(
    masks: Mapping[str, Volume],
    path: str | Path,
    *,
    reference_files: Sequence[str | Path],
    series_description: str = "Segmentation",
) -> Path:
    """Write masks on the grid of a single-frame image series as a binary DICOM SEG (highdicom)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from theradose.io.dicom.read import _dcmread
    from theradose.io.dicom.write import IMPLEMENTATION_VERSION_NAME, MANUFACTURER, new_uid

    if not masks:
        raise InputError("no masks given: pass at least one region")
    ordered, grid = _reference_series(reference_files)
    sources = [_dcmread(Path(p), header_only=False) for p in reference_files]
    by_uid = {str(d.SOPInstanceUID): d for d in sources}
    source_sorted = [by_uid[str(d.SOPInstanceUID)] for d in ordered]
    stack = []
    descriptions = []
    algorithm = hd.AlgorithmIdentificationSequence(
        name="theradose", version=IMPLEMENTATION_VERSION_NAME, family=codes.cid7162.ArtificialIntelligence
    )
    for number, (name, mask) in enumerate(masks.items(), start=1):
        values = _check_mask(mask, name)
        if not mask.same_grid(grid, atol_mm=0.01):
            raise GeometryError(f"mask {name!r} is not on the reference series grid: resample it first")
        stack.append(values)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name[:64],
                segmented_property_category=codes.SCT.Tissue,
                segmented_property_type=codes.SCT.Tissue,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
    pixel_array = np.stack(stack, axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=source_sorted,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=new_uid(),
        series_number=101,
        sop_instance_uid=new_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="theradose",
        software_versions=IMPLEMENTATION_VERSION_NAME,
        device_serial_number="0",
        series_description=series_description,
        omit_empty_frames=False,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out


@tolerant
def read_seg(path: str | Path) -> dict[str, Volume]:
    """Read a DICOM SEG: segment label → boolean label Volume on the segmentation's own grid."""
    import sqlite3
    import warnings

    import highdicom as hd

    from theradose.io.dicom.read import _dcmread

    ds = _dcmread(Path(path), header_only=False)
    if str(ds.get("SOPClassUID", "")) != SEG_STORAGE:
        raise DicomError(
            f"{str(path)!r} is not a DICOM Segmentation (Modality {ds.get('Modality', 'absent')})"
        )
    _check_seg_frames(ds, str(path))
    seg_errors: tuple[type[BaseException], ...] = (*malformed_data_errors(), sqlite3.Error)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = hd.seg.Segmentation.from_dataset(ds)
            result: dict[str, Volume] = {}
            for item in seg.SegmentSequence:
                number = int(item.SegmentNumber)
                volume = seg.get_volume(segment_numbers=[number], combine_segments=True, dtype=np.uint8)
                array = np.asarray(volume.array)
                if array.ndim == 4:
                    array = array[..., 0]
                result[str(item.SegmentLabel)] = Volume(
                    array > 0,
                    np.asarray(volume.affine),
                    "label",
                    frame_uid=str(ds.get("FrameOfReferenceUID", "")) or None,
                )
    except seg_errors as exc:  # highdicom indexes the frames with sqlite
        detail = " ".join(str(exc).split())[:160]
        raise DicomError(f"segmentation {str(path)!r} cannot be read as a volume ({detail})") from exc
    return result


def _check_seg_frames(ds: Any, name: str) -> None:
    """NumberOfFrames, the per-frame functional groups and the Pixel Data length of a SEG must agree."""
    from theradose.io.dicom.read import number_of, tag_text

    frames = number_of(ds, "NumberOfFrames")
    if frames is None or frames < 1:
        raise DicomError(f"segmentation {name!r} lacks a valid {tag_text('NumberOfFrames')}: export it again")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != int(frames):
        raise DicomError(
            f"segmentation {name!r} has {int(frames)} frames but {len(per_frame)} per-frame functional "
            "group items: export it again"
        )
    if "PixelData" not in ds:
        raise DicomError(f"segmentation {name!r} has no Pixel Data: export it again")
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    bits = int(number_of(ds, "BitsAllocated") or 0)
    pixels = rows * columns * int(frames)
    needed = (pixels + 7) // 8 if bits == 1 else pixels * (bits // 8)
    syntax = str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", ""))
    if syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1") and len(ds.PixelData) not in (
        needed,
        needed + 1,
    ):
        raise DicomError(
            f"segmentation {name!r}: Pixel Data holds {len(ds.PixelData)} bytes, {needed} expected for "
            f"{int(frames)} frames of {rows} × {columns} at {bits} bit: export it again"
        )


__all__ = [
    "labels_to_masks",
    "masks_to_labels",
    "read_rtstruct",
    "read_seg",
    "write_rtstruct",
    "write_seg",
]
