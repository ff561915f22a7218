"""Real files and a fuzz corpus: every reader either reads a file right or refuses it with one line.

The corpus (tests/dicom_corpus.py) is built in the test setup from files that PyPI packages ship
(pydicom, pydicom-data, the OpenREM source distribution), files written by theradose and files laid out
like GE, Siemens and Hermes exports. The fuzz test mutates one file of each item in many ways and calls the
readers in this process; it prints how many mutated files it read and the two counts that must be zero:
tracebacks (an exception other than a one-line TheradoseError) and silently wrong results (a file read
without error that gives something other than the unmutated file, or a mutation that must be refused —
a zero slope, a slice from another frame of reference — read anyway).
"""

from __future__ import annotations

import collections
import os
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from cli_runner import run_cli
from dicom_corpus import (
    Item,
    Mutation,
    build_real_items,
    build_theradose_items,
    build_vendor_items,
    foreign_frame,
    mutations_for,
    openrem_test_files,
    pydicom_test_files,
)
from theradose.errors import TheradoseError
from theradose.imaging import Volume
from theradose.io.dicom import read_series, scan_folder
from theradose.io.masks import read_rtstruct, read_seg
from theradose.reading.suv import suv_scale
from theradose.service.rrdsr import read_rrdsr


# ------------------------------------------------------------------------------------------ readers
def _read(item: Item, folder: Path) -> Any:
    """What the readers make of ``folder`` for an item of this kind."""
    if item.kind == "image":
        volume = read_series(folder)
        suv = suv_scale(folder) if item.modality == "PT" else None
        return (volume, suv)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if item.kind == "rrdsr":
        return read_rrdsr(str(files[0]))
    if item.kind == "seg":
        return read_seg(files[0])
    if item.kind == "rtstruct":
        return read_rtstruct(files[0], item.reference)
    return scan_folder(folder).series


def _same_volume(a: Volume, b: Volume) -> bool:
    if a.shape != b.shape or a.unit != b.unit:
        return False
    if not np.allclose(a.affine, b.affine, atol=1e-3):
        return False
    scale = float(np.max(np.abs(b.array))) or 1.0
    if not np.allclose(a.array, b.array, rtol=1e-5, atol=1e-6 * scale):
        return False
    if b.unit in ("Bq/mL", "SUV", "counts") and a.acquisition_datetime != b.acquisition_datetime:
        return False  # the time quantitative values refer to (a CT's time is not used)
    return not (a.frame_uid and b.frame_uid and a.frame_uid != b.frame_uid)


def _same(item: Item, got: Any, truth: Any) -> bool:
    if item.kind == "image":
        volume, suv = got
        if not _same_volume(volume, truth[0]):
            return False
        if suv is None or truth[1] is None:
            return suv is None and truth[1] is None
        return bool(
            np.isclose(suv.suv_bw_scale, truth[1].suv_bw_scale, rtol=1e-9)
            and suv.reference_time == truth[1].reference_time
        )
    if item.kind in ("seg", "rtstruct"):
        return set(got) == set(truth) and all(
            _same_volume(
                got[k].with_array(got[k].array.astype(np.float32), unit="1"),
                truth[k].with_array(truth[k].array.astype(np.float32), unit="1"),
            )
            for k in got
        )
    if item.kind == "other":
        return True  # a listing; its content is not judged
    return bool(got == truth)


# ------------------------------------------------------------------------------------------ corpus
@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Item]:
    root = tmp_path_factory.mktemp("corpus")
    items = [
        *build_theradose_items(root / "theradose"),
        *build_vendor_items(root / "vendor"),
        *build_real_items(root / "real"),
    ]
    for item in items:
        try:
            item.truth = _read(item, item.folder)
        except TheradoseError:
            item.truth = None  # refused as it is (e.g. a DX image has no 3-D geometry): mutations too
    return items


def test_corpus_truth_is_right(corpus: list[Item]) -> None:
    """The unmutated items read as what was written (theradose and vendor layouts: values known by
    construction) or as an independent pydicom reading (real single-frame images)."""
    by_name = {item.name: item for item in corpus}
    for name in (
        "theradose-ct",
        "theradose-nm-bqml",
        "theradose-pet",
        "theradose-rtdose-32",
        "vendor-ge-pet",
    ):
        assert by_name[name].truth is not None, name
    # GE layout: stored value × the slope of each slice (0.5, 0.75, 1.0, 1.25)
    ge = by_name["vendor-ge-pet"]
    stored = [pydicom.dcmread(p).pixel_array for p in sorted(ge.files)]
    volume = ge.truth[0]
    for k, pixels in enumerate(stored):
        np.testing.assert_allclose(volume.array[k], pixels * (0.5 + 0.25 * k), rtol=1e-6)
    # real images: pixel_array × RescaleSlope + RescaleIntercept by pydicom alone
    checked = 0
    for item in corpus:
        if not item.name.startswith("real-") or item.kind != "image" or item.truth is None:
            continue
        ds = pydicom.dcmread(item.files[0])
        if int(ds.get("NumberOfFrames", 1) or 1) != 1 or "PerFrameFunctionalGroupsSequence" in ds:
            continue
        expected = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        if ds.Modality == "RTDOSE":
            expected = ds.pixel_array * float(ds.DoseGridScaling)
        np.testing.assert_allclose(item.truth[0].array[0], expected, rtol=1e-6, err_msg=item.name)
        checked += 1
    assert checked >= 3


@dataclass
class Tally:
    files: int = 0
    refused: int = 0
    same: int = 0
    changed_allowed: int = 0
    tracebacks: int = 0
    silently_wrong: int = 0
    multi_line: int = 0

    def __post_init__(self) -> None:
        self.problems: list[str] = []
        self.by_mutation: collections.Counter[str] = collections.Counter()


def _mutated_folder(item: Item, target: Path, index: int, data: bytes) -> Path:
    target.mkdir(parents=True)
    for k, path in enumerate(item.files):
        destination = target / path.relative_to(item.folder)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if k == index:
            destination.write_bytes(data)
        else:
            os.link(path, destination)
    return target


def _judge(item: Item, mutation: Mutation, folder: Path, tally: Tally) -> None:
    tally.files += 1
    where = f"{item.name} {mutation.name}"
    # discovery never stops on a damaged file (image items: read_series scans the folder itself)
    try:
        if item.kind in ("rrdsr", "seg", "rtstruct"):
            scan_folder(folder)
    except TheradoseError as exc:
        if "\n" in str(exc):
            tally.problems.append(f"MULTI-LINE MESSAGE scan_folder {where}: {exc!r}")
            tally.multi_line += 1
    except Exception:
        tally.tracebacks += 1
        tally.problems.append(f"TRACEBACK scan_folder {where}: {traceback.format_exc(limit=3)}")
        return
    try:
        got = _read(item, folder)
    except TheradoseError as exc:
        if "\n" in str(exc):
            tally.problems.append(f"MULTI-LINE MESSAGE {where}: {exc!r}")
            tally.multi_line += 1
        tally.refused += 1
        tally.by_mutation["refused"] += 1
        return
    except Exception:
        tally.tracebacks += 1
        tally.problems.append(f"TRACEBACK {where}: {traceback.format_exc(limit=4)}")
        return
    if mutation.expect == "no-crash" or item.kind == "other":  # "other": a listing, only crashes count
        tally.changed_allowed += 1
        return
    if mutation.expect == "refuse":
        tally.silently_wrong += 1
        tally.problems.append(f"READ BUT MUST BE REFUSED {where}")
        return
    if item.truth is not None and _same(item, got, item.truth):
        tally.same += 1
        return
    tally.silently_wrong += 1
    tally.problems.append(f"SILENTLY DIFFERENT {where}")


def test_fuzz_corpus(corpus: list[Item], tmp_path: Path) -> None:
    tally = Tally()
    case = 0
    for item in corpus:
        index = len(item.files) // 2  # one file of a multi-file series; the only file otherwise
        raw = item.files[index].read_bytes()
        mutations = list(mutations_for(raw, item.modality))
        if item.kind == "image" and len(item.files) > 1:
            mutations.append(Mutation("foreign-frame", foreign_frame, "refuse"))
        for mutation in mutations:
            case += 1
            data = mutation.apply(raw)
            if data == raw:
                continue
            folder = _mutated_folder(item, tmp_path / f"c{case}", index, data)
            _judge(item, mutation, folder, tally)
            shutil.rmtree(folder)
    print(
        f"\nfuzz corpus: {len(corpus)} items, {tally.files} mutated files read: {tally.refused} refused with "
        f"one line, {tally.same} read identical to the original, {tally.changed_allowed} read with changed "
        f"bytes in pixel data or header allowed; tracebacks: {tally.tracebacks}, "
        f"silently wrong: {tally.silently_wrong}"
    )
    for line in tally.problems[:200]:
        print(line)
    assert tally.files >= 600
    assert tally.tracebacks == 0
    assert tally.silently_wrong == 0
    assert tally.multi_line == 0


# ------------------------------------------------------------------------------------------ real files
def test_every_real_file_is_inspected_or_reported(tmp_path: Path) -> None:
    """All files pydicom, pydicom-data and OpenREM ship, in one folder: discovery lists them; each image
    series reads or is refused with one line; nothing raises anything else."""
    files = [*pydicom_test_files(), *openrem_test_files()]
    for path in files:
        shutil.copy(path, tmp_path / f"{path.parent.name}-{path.name}")
    contents = scan_folder(tmp_path)
    listed = sum(s.n_files for s in contents.series)
    print(f"\nreal files: {len(files)}; listed in series: {listed}; unreadable: {len(contents.unreadable)}")
    # every file is listed or reported, but for DICOMDIRs (an index, no instance) and non-DICOM inputs;
    # reported: the truncated test files (MR_truncated, rtplan_truncated, ..._too_short) and the
    # fragments without a Series Instance UID
    assert listed + len(contents.unreadable) >= len(files) - 12
    assert listed >= 240
    reported = " ".join(u.reason for u in contents.unreadable)
    for truncated in ("MR_truncated", "rtplan_truncated", "too_short"):
        assert truncated in reported
    outcomes: collections.Counter[str] = collections.Counter()
    for series in contents.series:
        if not series.is_image:
            continue
        try:
            read_series(list(series.files)[:1] if series.n_files > 1 else list(series.files))
            outcomes["read"] += 1
        except TheradoseError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    print(f"image series: {dict(outcomes)}")
    assert outcomes["read"] >= 15  # projection images (CR, US, MG, DX) have no 3-D geometry: refused


def test_cli_exit_codes_on_damaged_folders(corpus: list[Item], tmp_path: Path) -> None:
    """The command line as a user runs it: a damaged file is one error line and the folder goes on (exit 2,
    the rest listed); a zero slope is refused by convert with exit 2 and no traceback."""
    ct = next(item for item in corpus if item.name == "theradose-ct")
    folder = tmp_path / "mixed"
    shutil.copytree(ct.folder, folder)
    broken = folder / "CT_0002.dcm"
    broken.write_bytes(broken.read_bytes()[:700])
    result = run_cli("dicom", "inspect", str(folder), "--json")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "CT_0002.dcm" in errors[0]
    import json

    listed = json.loads(result.stdout)
    assert [s["n_files"] for s in listed] == [3]
    converted = run_cli("dicom", "convert", str(folder), "--out", str(tmp_path / "ct.nii.gz"))
    assert (
        converted.returncode == 2
        and "damaged file" in converted.stderr
        and "Traceback" not in converted.stderr
    )

    nm = next(item for item in corpus if item.name == "vendor-siemens-nm")
    ds = pydicom.dcmread(nm.files[0])
    ds.RescaleSlope = "0"
    zero = tmp_path / "zero" / "NM.dcm"
    zero.parent.mkdir()
    ds.save_as(zero)
    result = run_cli("dicom", "convert", str(zero.parent), "--out", str(tmp_path / "nm.nii.gz"))
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "RescaleSlope (0028,1053) is 0" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "nm.nii.gz").exists()

    pet = next(item for item in corpus if item.name == "theradose-pet")
    folder = tmp_path / "pet"
    shutil.copytree(pet.folder, folder)
    first = sorted(folder.iterdir())[0]
    ds = pydicom.dcmread(first)
    from pydicom.dataelem import DataElement

    ds["SeriesTime"] = DataElement(0x00080031, "TM", "25:61:99", validation_mode=pydicom.config.IGNORE)
    ds.save_as(first)
    result = run_cli("read", "suv", str(folder))
    assert result.returncode == 2, result.stderr
    assert "SeriesDate/SeriesTime (0008,0021/0031)" in result.stderr and "25:61:99" in result.stderr
    assert "Traceback" not in result.stderr
