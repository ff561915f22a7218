"""A corpus of DICOM files for robustness tests: real files that PyPI packages ship, files written by
theradose, and files laid out like vendor exports; and the mutations of the fuzz test.

Real files are never copied into the repository: pydicom and pydicom-data are installed test
dependencies, and the OpenREM source distribution (PyPI ``openrem``; its test files are CT, DX, MG and RF
images and radiation dose SRs from GE, Siemens, Philips, Toshiba, Canon, Carestream, Hologic) is fetched
once with ``pip download`` into a cache folder (``$THERADOSE_TEST_CACHE``, default
``~/.cache/theradose-tests``) and its test files are read from there. OpenREM is not installed: it pins
Django 1.x and other packages of its own.

Mutations (each on one file of a base item; the item's other files are unchanged):

* ``truncate@f``: the file cut at fraction ``f`` of its length;
* ``flip<n>#s``: ``n`` random bytes after the preamble replaced by random values (seed ``s``);
* ``vr:<VR>:<keyword>``: the explicit VR of a top-level element replaced (``ZZ`` is no VR at all);
* ``del:<keyword>``: an attribute removed;
* ``set:<keyword>=<value>``: an attribute given a malformed or meaningless value (bad dates and times,
  zero and negative slopes, NumberOfFrames 0, ...);
* ``foreign-frame``: one slice of a multi-file series moved into another frame of reference.

Each mutation says what a correct reader may do: ``refuse`` (a one-line TheradoseError) or
``same-or-refuse`` (refuse, or give exactly what the unmutated item gives) or ``no-crash`` (anything but
an exception that is not a TheradoseError: flipped bytes inside pixel data legitimately change values).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

#: The OpenREM release whose test files join the corpus, and the SHA-256 of its source distribution.
OPENREM_VERSION = "0.10.0"
OPENREM_SDIST_SHA256 = "2fb6be2a42b0355e5d57cb5f4a7750806e202aa2e8f41b4f7bf26439dd862dbb"
OPENREM_TEST_FILES = "openrem/remapp/tests/test_files/"

Expectation = Literal["refuse", "same-or-refuse", "no-crash"]
Kind = Literal["image", "rrdsr", "seg", "rtstruct", "other"]


def cache_dir() -> Path:
    """Folder for data fetched once by the test setup (never inside the repository)."""
    root = os.environ.get("THERADOSE_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "theradose-tests"
    )
    return Path(root)


def openrem_test_files() -> list[Path]:
    """The DICOM test files of the OpenREM source distribution, fetched once with ``pip download``.

    Raises
    ------
    RuntimeError
        If the distribution cannot be downloaded (no access to PyPI) or its checksum differs.
    """
    target = cache_dir() / f"openrem-{OPENREM_VERSION}"
    done = target / ".complete"
    if not done.exists():
        with tempfile.TemporaryDirectory() as download:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "--quiet",
                    f"openrem=={OPENREM_VERSION}",
                    "-d",
                    download,
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            archives = list(Path(download).glob("*.tar.gz"))
            if result.returncode != 0 or not archives:
                raise RuntimeError(
                    f"pip download openrem=={OPENREM_VERSION} failed ({result.stderr.strip()[-300:]}): "
                    "the corpus needs PyPI once; set THERADOSE_TEST_CACHE to a folder holding "
                    f"openrem-{OPENREM_VERSION}/ from an earlier run"
                )
            digest = hashlib.sha256(archives[0].read_bytes()).hexdigest()
            if digest != OPENREM_SDIST_SHA256:
                raise RuntimeError(
                    f"{archives[0].name} has SHA-256 {digest}, expected {OPENREM_SDIST_SHA256}"
                )
            staging = Path(tempfile.mkdtemp(dir=download))
            with tarfile.open(archives[0]) as archive:
                for member in archive.getmembers():
                    if OPENREM_TEST_FILES in member.name and member.name.endswith(".dcm") and member.isfile():
                        handle = archive.extractfile(member)
                        assert handle is not None
                        (staging / Path(member.name).name).write_bytes(handle.read())
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(staging, target)
            done.write_text(OPENREM_SDIST_SHA256)
    return sorted(target.glob("*.dcm"))


def pydicom_test_files() -> list[Path]:
    """Every test file shipped in the installed pydicom and pydicom-data packages (their notes and dumps
    left out; a few are deliberately not DICOM or damaged)."""
    import pydicom.data

    roots = {Path(pydicom.data.__file__).parent / "test_files"}
    installed = pydicom.data.get_testdata_file("liver.dcm", download=False)  # pydicom-data's folder
    if installed is None:
        raise RuntimeError("pydicom-data is not installed: pip install pydicom-data (the 'test' extra)")
    roots.add(Path(str(installed)).parent)
    not_dicom = {".dump", ".txt", ".json", ".gz", ".icc", ".py", ".pyc"}
    return sorted({p for root in roots for p in root.rglob("*") if p.is_file() and p.suffix not in not_dicom})


# ------------------------------------------------------------------------------------------ base items
@dataclass
class Item:
    """One unit of the corpus: a folder of files read together, and how to read it."""

    name: str
    folder: Path
    kind: Kind
    modality: str = ""
    truth: Any = None  # what the unmutated item reads as (set by the test)
    reference: Any = None  # e.g. the CT grid an RTSTRUCT is rasterised on
    files: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.files:
            self.files = sorted(p for p in self.folder.rglob("*") if p.is_file())


TZ = timezone(timedelta(hours=1))
T_INJECTION = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)
T_SCAN = datetime(2026, 3, 3, 9, 30, tzinfo=TZ)


def build_theradose_items(root: Path) -> list[Item]:
    """Objects written by theradose's writers: CT, NM (Bq/mL and calibrated counts), PET, RT Dose (32 and
    16 bit), RTSTRUCT, SEG and RRDSR; small grids so that hundreds of mutations read in seconds."""
    from theradose.imaging import Volume
    from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo
    from theradose.io.dicom.write import write_ct_series, write_nm_series, write_pet_series, write_rtdose
    from theradose.io.masks import write_rtstruct, write_seg
    from theradose.service.rrdsr import AdministrationReport, write_rrdsr_bytes

    rng = np.random.default_rng(22)
    patient = PatientInfo(name="Corpus^Patient", patient_id="CORPUS-1", sex="F", weight_kg=70.0)
    agent = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", 7400.0, T_INJECTION)
    items: list[Item] = []
    frame = "1.2.826.0.1.3680043.8.498.22001"
    study = "1.2.826.0.1.3680043.8.498.22002"

    ct = Volume.from_spacing(
        np.round(rng.uniform(-1000, 1500, (4, 10, 12))),
        (3.0, 2.0, 2.0),
        origin_mm=(-12.0, -10.0, -6.0),
        unit="HU",
        frame_uid=frame,
        acquisition_datetime=T_SCAN,
    )
    ct_files = write_ct_series(ct, root / "ct", patient=patient, study_uid=study)
    items.append(Item("theradose-ct", root / "ct", "image", "CT"))

    activity = Volume.from_spacing(
        rng.uniform(0, 2e5, (4, 10, 12)),
        (3.0, 2.0, 2.0),
        origin_mm=(-12.0, -10.0, -6.0),
        unit="Bq/mL",
        frame_uid=frame,
        acquisition_datetime=T_SCAN,
    )
    write_nm_series(activity, root / "nm", patient=patient, radiopharmaceutical=agent, study_uid=study)
    items.append(Item("theradose-nm-bqml", root / "nm", "image", "NM"))

    counts = activity.with_array(np.round(rng.uniform(0, 900, activity.shape)), unit="counts")
    write_nm_series(
        counts,
        root / "nm-counts",
        patient=patient,
        radiopharmaceutical=agent,
        frame_duration_s=20.0,
        n_projections=60,
        calibration_cps_per_mbq=9.5,
        study_uid=study,
    )
    items.append(Item("theradose-nm-calibrated-counts", root / "nm-counts", "image", "NM"))

    write_pet_series(
        activity, root / "pet", patient=patient, radiopharmaceutical=agent, frame_duration_s=180.0
    )
    items.append(Item("theradose-pet", root / "pet", "image", "PT"))

    dose = activity.with_array(rng.uniform(0, 30, activity.shape), unit="Gy")
    write_rtdose(dose, root / "dose32" / "dose.dcm", reference_files=ct_files)
    items.append(Item("theradose-rtdose-32", root / "dose32", "image", "RTDOSE"))
    write_rtdose(dose, root / "dose16" / "dose.dcm", reference_files=ct_files, bits=16)
    items.append(Item("theradose-rtdose-16", root / "dose16", "image", "RTDOSE"))

    ring = np.zeros(ct.shape, dtype=bool)
    ring[1:3, 2:8, 2:10] = True
    ring[1:3, 4:6, 5:7] = False  # a hole
    masks = {"kidney_left": ct.with_array(ring, unit="label")}
    write_rtstruct(masks, root / "rtstruct" / "rs.dcm", reference_files=ct_files, algorithm_type="MANUAL")
    items.append(Item("theradose-rtstruct", root / "rtstruct", "rtstruct", "RTSTRUCT", reference=ct))
    write_seg(masks, root / "seg" / "seg.dcm", reference_files=ct_files, algorithm_type="MANUAL")
    items.append(Item("theradose-seg", root / "seg", "seg", "SEG"))

    report = AdministrationReport(
        patient_id="CORPUS-1",
        radiopharmaceutical="177Lu-PSMA-617",
        nuclide="Lu-177",
        administered_activity_mbq=7312.5,
        injection_time=T_INJECTION,
        route="intravenous",
        event_uid="1.2.826.0.1.3680043.8.498.22003",
        pre_activity_mbq=7420.0,
        post_activity_mbq=101.5,
        pre_activity_time=T_INJECTION - timedelta(minutes=20),
        post_activity_time=T_INJECTION + timedelta(minutes=35),
        volume_ml=8.0,
        lot="LOT-22",
        dispense_id="D22",
        prescription_id="RX22",
    )
    (root / "rrdsr").mkdir()
    (root / "rrdsr" / "rrdsr.dcm").write_bytes(write_rrdsr_bytes(report, site_timezone="Europe/Berlin"))
    items.append(Item("theradose-rrdsr", root / "rrdsr", "rrdsr", "SR"))
    return items


def _base(sop_class: str, modality: str, series_uid: str) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = "Vendor^Layout"
    ds.PatientID = "VENDOR-1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.22100"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.22101"
    ds.TimezoneOffsetFromUTC = "+0100"
    ds.SeriesDate = ds.AcquisitionDate = ds.StudyDate = "20260303"
    ds.SeriesTime = ds.AcquisitionTime = ds.StudyTime = "093000"
    ds.PatientWeight = "70"
    return ds


def _radiopharmaceutical(dose: str, *, code: bool = True) -> Any:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    item.Radiopharmaceutical = "Lu177-DOTATATE"
    item.RadiopharmaceuticalStartDateTime = "20260302090000"
    item.RadiopharmaceuticalStartTime = "090000"
    item.RadionuclideTotalDose = dose
    item.RadionuclideHalfLife = "574300.8"
    if code:
        nuclide = Dataset()
        nuclide.CodeValue, nuclide.CodingSchemeDesignator, nuclide.CodeMeaning = (
            "C-1017B",
            "SRT",
            "^177^Lutetium",
        )
        item.RadionuclideCodeSequence = Sequence([nuclide])
    return Sequence([item])


def _pixels(ds: Any, stored: np.ndarray) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()


def _save(ds: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def build_vendor_items(root: Path) -> list[Item]:
    """Headers laid out as three vendor exports are documented to be (see tests/io/test_dicom_vendors.py):
    a GE-style PET series (one file per slice, Units BQML, a slope per slice, DecayCorrection START), a
    Siemens-style multi-frame NM (geometry in the Detector Information Sequence, Units BQML and a
    Rescale Slope) and a Hermes-style single-slice NM (Real World Value Mapping, DecayCorrection ADMIN)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    rng = np.random.default_rng(23)
    stored = rng.integers(0, 4000, (4, 6, 5)).astype(np.uint16)
    items: list[Item] = []
    series = generate_uid()
    for k in range(4):
        ds = _base("1.2.840.10008.5.1.4.1.1.128", "PT", series)
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-100.0, -120.0, -50.0 + 3.27 * k]
        ds.PixelSpacing = ["4.0", "4.0"]
        ds.SliceThickness = "3.27"
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["DECY", "ATTN"]
        ds.RescaleSlope = f"{0.5 + 0.25 * k:g}"
        ds.RescaleIntercept = "0"
        ds.ActualFrameDuration = 180000
        ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical("7400000000")
        ds.InstanceNumber = k + 1
        _pixels(ds, stored[k])
        _save(ds, root / "ge-pet" / f"PT{k}.dcm")
    items.append(Item("vendor-ge-pet", root / "ge-pet", "image", "PT"))

    ds = _base("1.2.840.10008.5.1.4.1.1.20", "NM", generate_uid())
    ds.Manufacturer = "SIEMENS NM"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    detector = Dataset()
    detector.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    detector.ImagePositionPatient = [-100.0, -120.0, -50.0]
    ds.DetectorInformationSequence = Sequence([detector])
    ds.NumberOfFrames = 4
    ds.NumberOfSlices = 4
    ds.SliceVector = [1, 2, 3, 4]
    ds.PixelSpacing = ["4.8", "4.8"]
    ds.SpacingBetweenSlices = "4.8"
    ds.Units = "BQML"
    ds.RescaleSlope = "12.5"
    ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical("7400")
    _pixels(ds, stored)
    _save(ds, root / "siemens-nm" / "NM.dcm")
    items.append(Item("vendor-siemens-nm", root / "siemens-nm", "image", "NM"))

    series = generate_uid()
    for k in range(4):
        ds = _base("1.2.840.10008.5.1.4.1.1.20", "NM", series)
        ds.Manufacturer = "HERMES"
        ds.ImageType = ["DERIVED", "PRIMARY", "RECON TOMO", "EMISSION"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-100.0, -120.0, -50.0 + 4.8 * (3 - k)]
        ds.PixelSpacing = ["4.8", "4.8"]
        ds.SliceThickness = "4.8"
        ds.DecayCorrection = "ADMIN"
        mapping = Dataset()
        unit = Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = (
            "Bq/ml",
            "UCUM",
            "Becquerels/milliliter",
        )
        mapping.MeasurementUnitsCodeSequence = Sequence([unit])
        mapping.RealWorldValueSlope = 3.0
        mapping.RealWorldValueIntercept = 0.0
        ds.RealWorldValueMappingSequence = Sequence([mapping])
        ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical("7400")
        ds.InstanceNumber = k + 1
        _pixels(ds, stored[k])
        _save(ds, root / "hermes-nm" / f"slice{k}.dcm")
    items.append(Item("vendor-hermes-nm", root / "hermes-nm", "image", "NM"))
    return items


#: Real files mutated by the fuzz test (small, uncompressed, readable as one series or object).
REAL_FUZZ_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "rtdose.dcm",
    "rtdose_1frame.dcm",
    "emri_small.dcm",
    "explicit_VR-UN.dcm",
    "liver_1frame.dcm",
    "rtstruct.dcm",
    "test-SR.dcm",
)
OPENREM_FUZZ_FILES = (
    "CT-SC-Philips_Brilliance16P.dcm",
    "DX-Im-Carestream_DRX.dcm",
    "MG-Im-GE_Seno_1_ForProcessing.dcm",
    "CT-RDSR-Siemens-Multi-1.dcm",
)


def build_real_items(root: Path) -> list[Item]:
    """Real files (pydicom, pydicom-data, OpenREM) as single-file items."""
    import pydicom

    by_name = {p.name: p for p in pydicom_test_files()}
    by_name.update({p.name: p for p in openrem_test_files()})
    items: list[Item] = []
    for name in (*REAL_FUZZ_FILES, *OPENREM_FUZZ_FILES):
        folder = root / name.removesuffix(".dcm")
        folder.mkdir(parents=True)
        shutil.copy(by_name[name], folder / name)
        ds = pydicom.dcmread(folder / name, force=True)
        modality = str(ds.get("Modality", ""))
        kind: Kind = "other"
        if "PixelData" in ds and modality not in ("SEG", "RTSTRUCT", "SR"):
            kind = "image"
        if modality == "SEG":
            kind = "seg"
        items.append(Item(f"real-{name}", folder, kind, modality))
    return items


# ------------------------------------------------------------------------------------------ mutations
@dataclass(frozen=True)
class Mutation:
    """A change to one file of an item and what a correct reader may do with it."""

    name: str
    apply: Callable[[bytes], bytes]
    expect: Expectation


def _dataset_edit(edit: Callable[[Any], None]) -> Callable[[bytes], bytes]:
    def apply(raw: bytes) -> bytes:
        import io

        import pydicom
        from pydicom import config

        settings = config.settings
        previous = (settings.reading_validation_mode, settings.writing_validation_mode)
        settings.reading_validation_mode = settings.writing_validation_mode = config.IGNORE
        try:
            ds = pydicom.dcmread(io.BytesIO(raw), force=True)
            edit(ds)
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=False)
        finally:
            settings.reading_validation_mode, settings.writing_validation_mode = previous
        return out.getvalue()

    return apply


def _set(keyword: str, value: str, *, in_sequence: str | None = None) -> Callable[[Any], None]:
    """Store ``value`` as the attribute's raw bytes (no check, no conversion: a damaged file)."""

    def edit(ds: Any) -> None:
        from pydicom.datadict import dictionary_VR, tag_for_keyword
        from pydicom.dataelem import RawDataElement
        from pydicom.tag import Tag

        target = ds[in_sequence][0] if in_sequence else ds
        tag = tag_for_keyword(keyword)
        assert tag is not None
        data = value.encode("latin-1")
        if len(data) % 2:
            data += b" "
        target._dict[Tag(tag)] = RawDataElement(Tag(tag), dictionary_VR(tag), len(data), data, 0, False, True)

    return edit


def _delete(keyword: str) -> Callable[[Any], None]:
    def edit(ds: Any) -> None:
        if keyword in ds:
            del ds[keyword]

    return edit


def _top_level_offsets(raw: bytes) -> dict[int, tuple[int, str]]:
    """Offset of the element header and the VR of each top-level element of an explicit VR little
    endian file (taken from pydicom's raw elements: value offset minus header length)."""
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(raw), force=True)
    if ds.file_meta.get("TransferSyntaxUID", "") != "1.2.840.10008.1.2.1":
        return {}
    offsets = {}
    for tag in list(ds._dict):
        element = ds._dict[tag]
        tell = getattr(element, "value_tell", None)
        vr = getattr(element, "VR", None)
        if tell is None or vr is None:
            continue
        long_vr = vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV")
        offsets[int(tag)] = (tell - (12 if long_vr else 8), vr)
    return offsets


def _wrong_vr(keyword: str, new_vr: str) -> Callable[[bytes], bytes]:
    def apply(raw: bytes) -> bytes:
        from pydicom.datadict import tag_for_keyword

        tag = tag_for_keyword(keyword)
        found = _top_level_offsets(raw).get(int(tag)) if tag is not None else None
        if found is None:
            return raw
        start, _ = found
        data = bytearray(raw)
        data[start + 4 : start + 6] = new_vr.encode("ascii")
        return bytes(data)

    return apply


def _truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda raw: raw[: max(1, int(len(raw) * fraction))]


def _flip(n: int, seed: int) -> Callable[[bytes], bytes]:
    def apply(raw: bytes) -> bytes:
        rng = np.random.default_rng(seed)
        data = bytearray(raw)
        start = 132 if len(data) > 200 else 0
        for position in rng.integers(start, len(data), n):
            data[int(position)] = int(rng.integers(0, 256))
        return bytes(data)

    return apply


BAD_TIMES = (
    ("AcquisitionTime", "25:61:99"),
    ("AcquisitionTime", "256199"),
    ("SeriesTime", "9999"),
    ("SeriesDate", "20261399"),
    ("AcquisitionDate", "2026-03-0"),
    ("StudyTime", "ab"),
    ("ContentDate", "0"),
    ("AcquisitionDateTime", "2026031325"),
    ("TimezoneOffsetFromUTC", "+2500"),
    ("TimezoneOffsetFromUTC", "CET"),
    ("DecayCorrectionDateTime", "20260230090000"),
)
DELETED = (
    "RescaleSlope",
    "RescaleIntercept",
    "Units",
    "DecayCorrection",
    "CorrectedImage",
    "RealWorldValueMappingSequence",
    "PixelSpacing",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "DetectorInformationSequence",
    "FrameOfReferenceUID",
    "SliceThickness",
    "SpacingBetweenSlices",
    "GridFrameOffsetVector",
    "DoseGridScaling",
    "NumberOfFrames",
    "RadiopharmaceuticalInformationSequence",
    "AcquisitionTime",
    "SeriesTime",
    "BitsAllocated",
    "PixelRepresentation",
    "Rows",
    "PixelData",
    "SOPClassUID",
    "Modality",
    "ContentSequence",
)
WRONG_VRS = (
    ("RescaleSlope", "US"),
    ("RescaleSlope", "ZZ"),
    ("SliceThickness", "FD"),
    ("ImagePositionPatient", "ZZ"),
    ("PixelSpacing", "UN"),
    ("DoseGridScaling", "OB"),
    ("Units", "SQ"),
    ("Rows", "DS"),
    ("ContentSequence", "ZZ"),
    ("PixelData", "ZZ"),
    ("SOPClassUID", "\x00\x00"),
)


def mutations_for(raw: bytes, modality: str) -> Iterator[Mutation]:
    """The mutations that apply to a file (attribute edits only where the attribute is present)."""
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(raw), force=True)
    for fraction in (0.05, 0.3, 0.6, 0.9, 0.995):
        yield Mutation(f"truncate@{fraction}", _truncate(fraction), "same-or-refuse")
    for n in (1, 3, 12):
        for seed in range(3):
            yield Mutation(f"flip{n}#{seed}", _flip(n, 1000 * n + seed), "no-crash")
    for keyword, vr in WRONG_VRS:
        if keyword in ds:
            yield Mutation(f"vr:{vr!r}:{keyword}", _wrong_vr(keyword, vr), "same-or-refuse")
    corrected_value = ds.get("CorrectedImage", []) or []
    corrected = [corrected_value] if isinstance(corrected_value, str) else [str(v) for v in corrected_value]
    corrected = [v.upper() for v in corrected]
    for keyword in DELETED:
        if keyword in ds:
            expect: Expectation = "same-or-refuse"
            if keyword == "DecayCorrection" and (modality == "PT" or "DECY" in corrected):
                expect = "refuse"
            yield Mutation(f"del:{keyword}", _dataset_edit(_delete(keyword)), expect)
    for keyword, value in BAD_TIMES:
        yield Mutation(f"set:{keyword}={value}", _dataset_edit(_set(keyword, value)), "same-or-refuse")
    if "RadiopharmaceuticalInformationSequence" in ds:
        for keyword, value in (
            ("RadiopharmaceuticalStartTime", "250000"),
            ("RadiopharmaceuticalStartDateTime", "20260230090000"),
            ("RadionuclideTotalDose", "abc"),
            ("RadionuclideHalfLife", "-5"),
        ):
            edit = _set(keyword, value, in_sequence="RadiopharmaceuticalInformationSequence")
            yield Mutation(f"set:{keyword}={value}", _dataset_edit(edit), "same-or-refuse")
    for keyword in ("RescaleSlope", "DoseGridScaling"):
        if keyword in ds and modality in ("CT", "NM", "PT", "RTDOSE", "MR"):
            if keyword == "RescaleSlope" and modality == "RTDOSE":
                continue
            for value in ("0", "-1.5", "NaN"):
                yield Mutation(f"set:{keyword}={value}", _dataset_edit(_set(keyword, value)), "refuse")
    if "RealWorldValueMappingSequence" in ds:
        for value in (0.0, -3.0):

            def edit(target: Any, value: float = value) -> None:
                target.RealWorldValueMappingSequence[0].RealWorldValueSlope = value

            yield Mutation(f"set:RealWorldValueSlope={value}", _dataset_edit(edit), "refuse")
    if "PixelData" in ds and modality in ("CT", "NM", "PT", "RTDOSE", "MR"):
        yield Mutation("set:NumberOfFrames=0", _dataset_edit(_set("NumberOfFrames", "0")), "refuse")


def foreign_frame(raw: bytes) -> bytes:
    """The file moved into a new frame of reference (one slice of a series from another scan)."""
    return _dataset_edit(_set("FrameOfReferenceUID", "1.2.826.0.1.3680043.8.498.22999"))(raw)
