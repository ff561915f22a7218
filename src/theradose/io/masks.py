"""Regions of interest in and out: DICOM RTSTRUCT, DICOM SEG (highdicom) and NIfTI label maps.

Masks are boolean :class:`Volume` objects (unit ``"label"``), one per named region, so that overlapping
regions (kidney inside body) are kept apart; :func:`masks_to_labels` merges them into one label map.

DICOM SEG is the faithful representation of a mask: one bit per voxel, holes and islands as they are.
Each segment is coded from the organ registry (:mod:`theradose.organs`): SNOMED CT segmented property
category and type (with the laterality as type modifier) and the recommended display colour; a region the
registry does not know is coded (85756007, SCT, "Tissue") in both and takes a colour of a fixed palette.
The segment algorithm type says where the regions came from: ``MANUAL`` for a user's label map or
contours, ``AUTOMATIC`` only for theradose's own automatic segmentation (PS3.3 C.8.20.2). Frames without
any voxel of any segment are left out.

RTSTRUCT rasterisation (any grid whose slices are parallel to the contour planes, e.g. CT or SPECT): each
slice takes the contours of the nearest contour plane within half the contour spacing (or half the slice
spacing if larger); a voxel is inside when its centre is inside an odd number of that plane's polygons
(even-odd rule, so holes and islands work). Writing traces each slice's mask with marching squares at
level 0.5 (contourpy), which passes half-way between inside and outside voxel centres, so rasterising the
written contours on the same grid gives the mask back.

Holes and contour-based readers: PS3.3 (C.8.8.6) has no flag that marks a contour as the inside of
another, and readers differ — some apply the even-odd rule (theradose, dicompyler), others fill every
contour and take the union, so a ring becomes a disc. The writer therefore joins each hole to its outer
boundary through a zero-width cut ("keyhole" contour): one polygon per connected piece, the hole
traversed opposite to the outer boundary, which every fill rule (even-odd, non-zero winding, union of
filled polygons) reads the same way. Use the SEG where the exact voxels matter.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

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


def _ring_area(ring: npt.NDArray[np.float64]) -> float:
    """Signed area of a closed ring (shoelace; positive counter-clockwise in (column, row))."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _keyhole(
    outer: npt.NDArray[np.float64], holes: Sequence[npt.NDArray[np.float64]]
) -> npt.NDArray[np.float64]:
    """One polygon for a boundary with holes: each hole joined to the ring by a zero-width cut.

    The outer ring runs counter-clockwise and every hole clockwise, so the cut edges (walked once each
    way) cancel under the even-odd and the non-zero winding rules alike.
    """
    ring = outer if _ring_area(outer) > 0 else outer[::-1]
    for hole in holes:
        hole = hole if _ring_area(hole) < 0 else hole[::-1]
        distances = np.linalg.norm(ring[:, None, :] - hole[None, :, :], axis=2)
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        inner = np.roll(hole, -int(j), axis=0)
        ring = np.concatenate([ring[: i + 1], inner, inner[:1], ring[i : i + 1], ring[i + 1 :]])
    return ring


def _slice_contours(mask2d: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.float64]]:
    """Closed contours (column, row) around the True pixels of a 2-D mask (marching squares at level 0.5),
    one polygon per connected piece with its holes joined in (see the module notes on keyhole contours)."""
    import contourpy

    padded = np.pad(mask2d.astype(np.float64), 1)
    generator = contourpy.contour_generator(z=padded, fill_type=contourpy.FillType.OuterOffset)
    filled = generator.filled(0.5, 2.0)
    points_list, offsets_list = filled[0], filled[1]
    polygons = []
    for points, offsets in zip(points_list, offsets_list, strict=True):
        rings = []
        assert points is not None and offsets is not None
        for start, stop in itertools.pairwise(offsets.tolist()):
            ring = np.asarray(points[start:stop], dtype=np.float64) - 1.0  # undo the padding
            if len(ring) > 1 and np.allclose(ring[0], ring[-1]):
                ring = ring[:-1]
            if len(ring) >= 3:
                rings.append(ring)
        if rings:
            polygons.append(_keyhole(rings[0], rings[1:]))
    return polygons


AlgorithmType = Literal["MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"]
_ALGORITHM_TYPES = ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")
#: Colours of regions the organ registry does not know (sRGB).
_COLOURS_UNKNOWN = _COLOURS


@dataclass(frozen=True)
class RegionCoding:
    """How a region is coded in a SEG or RTSTRUCT: from the organ registry, or as generic tissue."""

    category: tuple[str, str, str]
    type: tuple[str, str, str]
    type_modifier: tuple[str, str, str] | None
    display_rgb: tuple[int, int, int]
    display_cielab: tuple[int, int, int]
    interpreted_type: str  # RT ROI Interpreted Type: ORGAN, GTV or "" (unknown)
    in_registry: bool


#: (85756007, SCT, "Tissue"): the code of a region the registry does not know (PS3.16 CID 7150/7166).
TISSUE = ("85756007", "SCT", "Tissue")


def region_coding(name: str, unknown_index: int = 0) -> RegionCoding:
    """The SNOMED CT codes and colour of region ``name`` from the organ registry (aliases and numbered
    tumours such as ``lesion_3`` included); a name it does not know gets :data:`TISSUE` and a palette colour
    (``unknown_index`` picks it)."""
    from theradose.organs import dicom_cielab, find_organ

    organ = find_organ(name)
    if organ is None:
        rgb = _COLOURS_UNKNOWN[unknown_index % len(_COLOURS_UNKNOWN)]
        return RegionCoding(TISSUE, TISSUE, None, rgb, dicom_cielab(rgb), "", False)
    category = organ.category_code
    side = organ.laterality_code
    return RegionCoding(
        (category.value, category.scheme, category.meaning),
        (organ.code.value, organ.code.scheme, organ.code.meaning),
        None if side is None else (side.value, side.scheme, side.meaning),
        organ.display_rgb,
        organ.display_cielab,
        "GTV" if organ.is_tumour else "ORGAN",
        True,
    )


def _check_algorithm_type(algorithm_type: str) -> str:
    if algorithm_type not in _ALGORITHM_TYPES:
        raise InputError(
            f"algorithm_type must be one of {', '.join(_ALGORITHM_TYPES)}; got {algorithm_type!r}: "
            "MANUAL for a user's regions, AUTOMATIC for theradose's automatic segmentation"
        )
    return algorithm_type


def write_rtstruct(
    masks: Mapping[str, Volume],
    path: str | Path,
    *,
    reference_files: Sequence[str | Path],
    algorithm_type: AlgorithmType,
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
    algorithm_type : {"MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"}
        ROI Generation Algorithm: ``MANUAL`` for regions a user drew or supplied, ``AUTOMATIC`` for
        theradose's automatic segmentation.
    label, series_description, structure_datetime
        Structure Set Label, Series Description and Structure Set Date/Time (default: now).

    Notes
    -----
    A region with holes is written as keyhole contours (module notes), colours and RT ROI Interpreted
    Type (ORGAN, GTV for tumours) come from the organ registry.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    from theradose.io.dicom.info import format_da, format_tm
    from theradose.io.dicom.write import MANUFACTURER, _ds_number, _file_meta, _save, new_uid

    if not masks:
        raise InputError("no masks given: pass at least one region")
    _check_algorithm_type(algorithm_type)
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
    unknown = 0
    for number, (name, mask) in enumerate(masks.items(), start=1):
        coding = region_coding(name, unknown)
        unknown += not coding.in_registry
        values = _check_mask(mask, name)
        if not mask.same_grid(grid, atol_mm=0.01):
            raise GeometryError(f"mask {name!r} is not on the reference series grid: resample it first")
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_uid
        roi.ROIName = name[:64]
        roi.ROIGenerationAlgorithm = algorithm_type
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
        contour.ROIDisplayColor = list(coding.display_rgb)
        if items:
            contour.ContourSequence = DicomSequence(items)
        contours.append(contour)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = coding.interpreted_type
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
    algorithm_type: AlgorithmType,
    algorithm_name: str = "theradose uptake segmentation",
    series_description: str = "Segmentation",
    series_number: int = 101,
) -> Path:
    """Write masks on the grid of a single-frame image series as a binary DICOM SEG (highdicom).

    Parameters
    ----------
    masks : mapping of str to Volume
        Region name → boolean label volume on the grid of ``reference_files``.
    path : path
        Output file.
    reference_files : sequence of path
        The single-frame image series (e.g. CT) the regions were drawn on: the SEG joins its study and
        frame of reference and copies its patient module (highdicom).
    algorithm_type : {"MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"}
        Segment Algorithm Type (PS3.3 C.8.20.2): ``MANUAL`` for regions a user supplied (label map,
        contours), ``AUTOMATIC`` for theradose's automatic segmentation, which is then identified as
        ``algorithm_name`` of the family (123101, DCM, "Neighborhood Analysis") — thresholds grown from
        each region's maximum through connected voxels (:func:`theradose.imaging.segment.segment_uptake`).
    series_description, series_number
        Identification of the SEG series.

    Notes
    -----
    Segments are coded from the organ registry (see the module notes); frames where no segment has a
    voxel are left out.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from theradose.io.dicom.read import _dcmread
    from theradose.io.dicom.write import IMPLEMENTATION_VERSION_NAME, MANUFACTURER, new_uid

    if not masks:
        raise InputError("no masks given: pass at least one region")
    _check_algorithm_type(algorithm_type)
    ordered, grid = _reference_series(reference_files)
    sources = [_dcmread(Path(p), header_only=False) for p in reference_files]
    by_uid = {str(d.SOPInstanceUID): d for d in sources}
    source_sorted = [by_uid[str(d.SOPInstanceUID)] for d in ordered]
    algorithm = None
    if algorithm_type != "MANUAL":  # Type 1C: required unless MANUAL
        algorithm = hd.AlgorithmIdentificationSequence(
            name=algorithm_name[:64],
            version=IMPLEMENTATION_VERSION_NAME,
            family=codes.cid7162.NeighborhoodAnalysis,
        )
    stack = []
    descriptions = []
    unknown = 0
    for number, (name, mask) in enumerate(masks.items(), start=1):
        values = _check_mask(mask, name)
        if not mask.same_grid(grid, atol_mm=0.01):
            raise GeometryError(f"mask {name!r} is not on the reference series grid: resample it first")
        if not values.any():
            raise InputError(f"mask {name!r} is empty: leave it out of the segmentation")
        coding = region_coding(name, unknown)
        unknown += not coding.in_registry
        stack.append(values)
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name[:64],
            segmented_property_category=hd.sr.CodedConcept(*coding.category),
            segmented_property_type=hd.sr.CodedConcept(*coding.type),
            algorithm_type=algorithm_type,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_dicom_value(coding.display_cielab),
        )
        if coding.type_modifier is not None:
            description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
                hd.sr.CodedConcept(*coding.type_modifier)
            ]
        descriptions.append(description)
    pixel_array = np.stack(stack, axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=source_sorted,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=new_uid(),
        series_number=series_number,
        sop_instance_uid=new_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="theradose",
        software_versions=IMPLEMENTATION_VERSION_NAME,
        device_serial_number="0",
        series_description=series_description,
        omit_empty_frames=True,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out


@tolerant
def read_seg(path: str | Path) -> dict[str, Volume]:
    """Read a DICOM SEG: segment label → boolean label Volume on the segmentation's own grid (the frames
    it holds, with one empty slice added on either side)."""
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
                # one empty slice on either side: a SEG without its empty frames ends at its outermost
                # segment slices, which nearest-neighbour resampling would otherwise treat as the edge
                affine = np.asarray(volume.affine, dtype=np.float64).copy()
                affine[:3, 3] -= affine[:3, 0]
                result[str(item.SegmentLabel)] = Volume(
                    np.pad(array > 0, ((1, 1), (0, 0), (0, 0))),
                    affine,
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
    "region_coding",
    "write_rtstruct",
    "write_seg",
]
