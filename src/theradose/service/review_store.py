"""Files kept by the web UI: dosimetry reviews (copies of pipeline output folders).

A dosimetry review is a copy of the files of one pipeline output folder that a reviewer looks at:
``doses.json`` (required), ``report.html``, ``dvh.json``, ``doses.csv`` and ``provenance.json`` when
present. The copy is immutable; its identifier is the first 16 hex digits of the SHA-256 of the file
manifest (each name and the SHA-256 of its bytes), so the same output imported twice is the same review
and an approval signs exactly the bytes that were shown.

``doses.json`` is read through the dose record (:class:`theradose.dosimetry.results.StudyDoses`), the
same class the pipeline wrote it with: doses, BEDs and DVHs shown are the record's.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from theradose.dosimetry.dvh import Dvh
from theradose.dosimetry.results import ORGAN_SOURCE, StudyDoses
from theradose.errors import InputError

#: Files copied from an output folder (others are ignored).
REVIEW_FILES: tuple[str, ...] = ("doses.json", "report.html", "dvh.json", "doses.csv", "provenance.json")
#: Largest accepted size of one file and of a whole upload (bytes).
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
_REVIEW_ID = re.compile(r"^[0-9a-f]{16}$")
_PSEUDONYM = re.compile(r"^PT-[0-9A-HJKMNP-TV-Z]{10}$")


@dataclass(frozen=True)
class RegionRow:
    """One region of ``doses.json`` as shown in the dose table (doses in Gy): the study's reference dose
    (source :attr:`DosimetryResult.dose_source`) and the BED computed from it."""

    name: str
    kind: str
    dose_gy: float | None
    dose_sigma_gy: float | None
    dose_gy_per_gbq: float | None
    dose_sigma_gy_per_gbq: float | None
    effective_half_life_h: float | None
    bed_gy: float | None
    volume_ml: float | None


@dataclass(frozen=True)
class RegionDvh:
    """The DVH of one region (:class:`theradose.dosimetry.dvh.Dvh`, the one DVH type) with its name."""

    region: str
    dvh: Dvh

    @property
    def dose_gy(self) -> tuple[float, ...]:
        return self.dvh.dose_gy

    @property
    def cumulative_fraction(self) -> tuple[float, ...]:
        return self.dvh.cumulative_fraction


@dataclass(frozen=True)
class DosimetryResult:
    """What a review shows from one output folder, read through the dose record."""

    patient_id: str | None
    cycle: int | None
    administered_activity_mbq: float | None
    regions: tuple[RegionRow, ...]
    dvhs: tuple[RegionDvh, ...]
    dose_source: str = ""
    record: StudyDoses | None = None


@dataclass(frozen=True)
class Review:
    """A stored dosimetry review."""

    review_id: str
    folder: Path
    patient: str
    cycle: int
    source: str
    imported_by: str
    imported_at: str
    files: dict[str, str]

    def record(self) -> dict[str, Any]:
        """The record an e-signature binds: the review's identity and the SHA-256 of each file as it is
        on disk now (so a file changed after signing voids the signature)."""
        current = {}
        for name in sorted(self.files):
            path = self.folder / name
            current[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        return {"review_id": self.review_id, "patient": self.patient, "cycle": self.cycle, "files": current}


def read_result(folder: Path) -> DosimetryResult:
    """Read the ``doses.json`` of an output folder through the dose record
    (:class:`theradose.dosimetry.results.StudyDoses`; version 1 files are upgraded): each region's reference
    dose, named, with its BED, and the DVHs of the record (of the reference dose's engine, or the first
    engine when the reference is the organ-level dose)."""
    path = folder / "doses.json"
    if not path.is_file():
        raise InputError("doses.json is missing: a pipeline output folder holds doses.json")
    record = StudyDoses.from_json(path.read_bytes(), source="doses.json")
    dvh_engine = record.engines[0] if record.reference_dose == ORGAN_SOURCE else record.reference_dose
    regions = tuple(
        RegionRow(
            name=row.name,
            kind=row.kind.value,
            dose_gy=row.dose_gy,
            dose_sigma_gy=row.dose_sigma_gy,
            dose_gy_per_gbq=row.dose_gy_per_gbq,
            dose_sigma_gy_per_gbq=row.dose_sigma_gy_per_gbq,
            effective_half_life_h=row.effective_half_life_h,
            bed_gy=row.bed_gy,
            volume_ml=row.volume_ml,
        )
        for row in record.rows()
    )
    dvhs = tuple(
        RegionDvh(region.name, estimate.dvh)
        for region in record.regions
        if (estimate := region.dose(dvh_engine)) is not None and estimate.dvh is not None
    )
    return DosimetryResult(
        patient_id=record.patient.id or None,
        cycle=record.cycle,
        administered_activity_mbq=record.administration.activity_mbq,
        regions=regions,
        dvhs=dvhs,
        dose_source=record.reference_dose,
        record=record,
    )


def manifest_id(files: Mapping[str, str]) -> str:
    """Review id: SHA-256 of the sorted ``name:sha256`` lines, first 16 hex digits."""
    text = "".join(f"{name}:{digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Store:
    """The web UI's data folder: ``reviews/<id>/``."""

    def __init__(self, root: Path, *, pipeline_roots: Sequence[Path] = ()) -> None:
        self.root = Path(root)
        self.pipeline_roots = tuple(Path(p).resolve() for p in pipeline_roots)

    # --- reviews --------------------------------------------------------------------------------------
    def _read_files_from_zip(self, data: bytes) -> dict[str, bytes]:
        if len(data) > MAX_UPLOAD_BYTES:
            raise InputError(f"file: the zip is larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise InputError("file: not a zip archive; zip the pipeline output folder") from exc
        found: dict[str, bytes] = {}
        total = 0
        with archive:
            for info in archive.infolist():
                name = PurePosixPath(info.filename)
                if info.is_dir() or name.name not in REVIEW_FILES:
                    continue
                if name.is_absolute() or ".." in name.parts or len(name.parts) > 2:
                    raise InputError(f"file: unsafe or nested path {info.filename!r} in the zip")
                if name.name in found:
                    raise InputError(f"file: {name.name} appears twice in the zip; zip one output folder")
                total += info.file_size
                if info.file_size > MAX_FILE_BYTES or total > MAX_UPLOAD_BYTES:
                    raise InputError(f"file: {name.name} is too large")
                try:
                    with archive.open(info) as member:
                        content = member.read(MAX_FILE_BYTES + 1)
                except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
                    # a bad CRC, damaged compressed data, an encrypted or unsupported member
                    raise InputError(
                        f"file: {name.name} in the zip cannot be read ({exc}): zip the output folder again"
                    ) from exc
                if len(content) > MAX_FILE_BYTES:  # the header understated the size
                    raise InputError(f"file: {name.name} is too large")
                found[name.name] = content
        return found

    def _read_files_from_folder(self, folder_text: str) -> dict[str, bytes]:
        if not self.pipeline_roots:
            raise InputError("folder: no pipeline output root is configured on this server; upload a zip")
        folder = Path(folder_text.strip()).expanduser()
        try:
            folder = folder.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise InputError(f"folder: {folder_text!r} does not exist") from exc
        if not any(folder.is_relative_to(root) for root in self.pipeline_roots):
            raise InputError(
                f"folder: {folder_text!r} is outside the pipeline output roots "
                f"({', '.join(str(r) for r in self.pipeline_roots)})"
            )
        if not folder.is_dir():
            raise InputError(f"folder: {folder_text!r} is not a folder")
        found = {}
        for name in REVIEW_FILES:
            path = folder / name
            if path.is_file() and not path.is_symlink():
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise InputError(f"folder: {name} is too large")
                found[name] = path.read_bytes()
        return found

    def check_import(
        self,
        *,
        zip_bytes: bytes | None = None,
        folder: str | None = None,
        patient: str,
        cycle: int | None,
        other_patient_ids: Sequence[str] = (),
    ) -> tuple[dict[str, bytes], DosimetryResult, int]:
        """Read and validate an import without writing anything; returns files, result and cycle.

        The patient named in ``doses.json`` (the DICOM Patient ID of the images) must be ``patient``
        (the pseudonym) or one of ``other_patient_ids`` (e.g. the record number); the message never
        repeats those other identifiers.
        """
        if not _PSEUDONYM.match(patient):
            raise InputError("patient: give the patient's pseudonym (PT-...)")
        files = (
            self._read_files_from_zip(zip_bytes)
            if zip_bytes is not None
            else self._read_files_from_folder(folder or "")
        )
        if "doses.json" not in files:
            raise InputError(
                f"{'file' if zip_bytes is not None else 'folder'}: no doses.json found; "
                "give a pipeline output folder"
            )
        tmp = self.root / "tmp" / hashlib.sha256(files["doses.json"]).hexdigest()[:16]
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            for name, content in files.items():
                (tmp / name).write_bytes(content)
            result = read_result(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if result.patient_id is not None and result.patient_id not in {patient, *other_patient_ids}:
            raise InputError(
                f"patient: doses.json is for patient {result.patient_id!r}, not {patient!r} "
                "(neither the pseudonym nor the record number); "
                "check that this is the right output folder"
            )
        chosen = cycle if cycle is not None else result.cycle
        if chosen is None:
            raise InputError("cycle: doses.json names no cycle; give the cycle number")
        if result.cycle is not None and result.cycle != chosen:
            raise InputError(f"cycle: doses.json is for cycle {result.cycle}, not {chosen}")
        return files, result, chosen

    def save_review(
        self,
        files: Mapping[str, bytes],
        *,
        patient: str,
        cycle: int,
        source: str,
        imported_by: str,
        imported_at: datetime,
    ) -> Review:
        """Write a review folder (after :meth:`check_import`); refuses the same content twice."""
        digests = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
        review_id = manifest_id(digests)
        folder = self.root / "reviews" / review_id
        if folder.exists():
            raise InputError(f"file: this output was imported before as review {review_id}")
        tmp = self.root / "reviews" / f".{review_id}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, content in files.items():
            (tmp / name).write_bytes(content)
        meta = {
            "review_id": review_id,
            "patient": patient,
            "cycle": cycle,
            "source": source,
            "imported_by": imported_by,
            "imported_at": imported_at.isoformat(),
            "files": digests,
        }
        (tmp / "review.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        tmp.rename(folder)
        return self._review(folder)

    def discard_review(self, review_id: str) -> None:
        """Remove a review folder written by :meth:`save_review` (used when its audit entry failed)."""
        if _REVIEW_ID.match(review_id):
            shutil.rmtree(self.root / "reviews" / review_id, ignore_errors=True)

    def _review(self, folder: Path) -> Review:
        meta = json.loads((folder / "review.json").read_text(encoding="utf-8"))
        return Review(
            review_id=meta["review_id"],
            folder=folder,
            patient=meta["patient"],
            cycle=int(meta["cycle"]),
            source=meta["source"],
            imported_by=meta["imported_by"],
            imported_at=meta["imported_at"],
            files=dict(meta["files"]),
        )

    def review(self, review_id: str) -> Review | None:
        """The review with ``review_id`` or None."""
        if not _REVIEW_ID.match(review_id):
            return None
        folder = self.root / "reviews" / review_id
        if not (folder / "review.json").is_file():
            return None
        return self._review(folder)

    def reviews(self, *, patient: str | None = None) -> list[Review]:
        """All reviews (optionally of one patient), by cycle then import time."""
        base = self.root / "reviews"
        if not base.is_dir():
            return []
        out = [self._review(p) for p in base.iterdir() if p.is_dir() and (p / "review.json").is_file()]
        if patient is not None:
            out = [r for r in out if r.patient == patient]
        return sorted(out, key=lambda r: (r.patient, r.cycle, r.imported_at))
