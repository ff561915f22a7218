"""PACS exchange over DICOM networking (DIMSE): verify, query, retrieve and store.

A small client built on pynetdicom (≥ 2.1) for the services a dosimetry workflow needs
(DICOM PS3.4, Annexes A, B and C; PS3.7 for the messages):

- :func:`echo` — C-ECHO (Verification SOP Class).
- :func:`find_patients`, :func:`find_studies`, :func:`find_series` — C-FIND in the Patient Root or Study
  Root Query/Retrieve Information Model.
- :func:`retrieve_series` — C-GET (our storage SCP role negotiated on the same association, PS3.4 C.4.3)
  or C-MOVE to a temporary Storage SCP of ours on loopback (or another address the PACS knows us by).
  Files are written into a hidden temporary folder next to the target and renamed to the target at the
  end, so a target folder either holds the complete series or does not exist.
- :func:`retrieve_patient_timepoints` — every NM/CT series of a patient, one folder per study date,
  ready for a dosimetry pipeline run.
- :func:`store` — C-STORE of files (CT, NM, PET, RT Dose, SEG, SR; the Radiopharmaceutical Radiation Dose
  SR and RT Dose Storage SOP Classes are always proposed).

Every failure is a one-line :class:`PacsError`: the node cannot be reached, the association was rejected
(with the reason the peer gave) or aborted, or the peer answered with a failure status (named by its
code and meaning).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from theradose.errors import InputError, TheradoseError

QueryModel = Literal["patient", "study"]
RetrieveMethod = Literal["get", "move"]

#: Our default Application Entity title.
DEFAULT_CALLING_AE_TITLE = "THERADOSE"
#: Default time limit in s for connecting, association negotiation and each DIMSE response.
DEFAULT_TIMEOUT_S = 30.0

VERIFICATION = "1.2.840.10008.1.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.68"

#: Storage SOP Classes proposed for C-STORE and accepted from C-GET/C-MOVE (PS3.4 Table B.5-1).
STORAGE_SOP_CLASSES: dict[str, str] = {
    "CT Image Storage": "1.2.840.10008.5.1.4.1.1.2",
    "Enhanced CT Image Storage": "1.2.840.10008.5.1.4.1.1.2.1",
    "Legacy Converted Enhanced CT Image Storage": "1.2.840.10008.5.1.4.1.1.2.2",
    "Nuclear Medicine Image Storage": "1.2.840.10008.5.1.4.1.1.20",
    "Positron Emission Tomography Image Storage": "1.2.840.10008.5.1.4.1.1.128",
    "Legacy Converted Enhanced PET Image Storage": "1.2.840.10008.5.1.4.1.1.128.1",
    "Enhanced PET Image Storage": "1.2.840.10008.5.1.4.1.1.130",
    "MR Image Storage": "1.2.840.10008.5.1.4.1.1.4",
    "Secondary Capture Image Storage": "1.2.840.10008.5.1.4.1.1.7",
    "RT Dose Storage": RT_DOSE_STORAGE,
    "RT Structure Set Storage": "1.2.840.10008.5.1.4.1.1.481.3",
    "RT Plan Storage": "1.2.840.10008.5.1.4.1.1.481.5",
    "Segmentation Storage": "1.2.840.10008.5.1.4.1.1.66.4",
    "Spatial Registration Storage": "1.2.840.10008.5.1.4.1.1.66.1",
    "Deformable Spatial Registration Storage": "1.2.840.10008.5.1.4.1.1.66.3",
    "Parametric Map Storage": "1.2.840.10008.5.1.4.1.1.30",
    "Basic Text SR Storage": "1.2.840.10008.5.1.4.1.1.88.11",
    "Enhanced SR Storage": "1.2.840.10008.5.1.4.1.1.88.22",
    "Comprehensive SR Storage": "1.2.840.10008.5.1.4.1.1.88.33",
    "Comprehensive 3D SR Storage": "1.2.840.10008.5.1.4.1.1.88.34",
    "Key Object Selection Document Storage": "1.2.840.10008.5.1.4.1.1.88.59",
    "Radiopharmaceutical Radiation Dose SR Storage": RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE,
    "Encapsulated PDF Storage": "1.2.840.10008.5.1.4.1.1.104.1",
}

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
#: Transfer syntaxes we accept for incoming instances (stored as received, never decoded).
_ACCEPTED_TRANSFER_SYNTAXES = [
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
]
_UNCOMPRESSED = {EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN}
_MAX_CONTEXTS = 128
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 VR AE: 16 chars, no backslash
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


# --- errors -------------------------------------------------------------------------------------------------
class PacsError(TheradoseError):
    """A DICOM network operation failed."""


class PacsUnreachableError(PacsError):
    """No TCP connection could be opened to the node."""


class AssociationRejectedError(PacsError):
    """The peer refused the association (e.g. unknown called or calling AE title)."""


class AssociationAbortedError(PacsError):
    """The association was aborted or timed out before the operation completed."""


class PacsStatusError(PacsError):
    """The peer answered a request with a failure status.

    Attributes
    ----------
    status : int
        The DIMSE status code (e.g. ``0xA700``).
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


# --- value types --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PacsNode:
    """A remote DICOM node (the PACS): where to connect and which AE title to call.

    Parameters
    ----------
    host : str
        Host name or IP address.
    port : int
        TCP port of its DICOM server (1-65535; Orthanc's default is 4242, the registered port 104).
    ae_title : str
        Its Application Entity title (1-16 characters, no backslash).
    """

    host: str
    port: int
    ae_title: str

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise InputError("host is empty: give the PACS host name or IP address, e.g. 127.0.0.1")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise InputError(
                f"port must be an integer in 1-65535; got {self.port!r}: give the PACS DICOM port"
            )
        _check_ae_title(self.ae_title, "ae_title")

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class EchoResult:
    """Outcome of a C-ECHO: the node answered with success after ``round_trip_s`` seconds."""

    node: PacsNode
    round_trip_s: float


@dataclass(frozen=True)
class PatientMatch:
    """One PATIENT-level C-FIND match."""

    patient_id: str
    patient_name: str
    birth_date: date | None
    sex: str
    n_studies: int | None


@dataclass(frozen=True)
class StudyMatch:
    """One STUDY-level C-FIND match."""

    patient_id: str
    patient_name: str
    study_uid: str
    study_date: date | None
    study_time: str
    study_description: str
    accession_number: str
    modalities: tuple[str, ...]
    n_series: int | None


@dataclass(frozen=True)
class SeriesMatch:
    """One SERIES-level C-FIND match."""

    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    series_number: int | None
    series_description: str
    series_date: date | None
    n_instances: int | None
    study_date: date | None = None


@dataclass(frozen=True)
class RetrievedSeries:
    """A series written to ``folder``; ``files`` ordered by Instance Number."""

    series_uid: str
    study_uid: str
    modality: str
    folder: Path
    files: tuple[Path, ...] = field(repr=False)
    method: RetrieveMethod = "get"
    image_type: tuple[str, ...] = ()

    @property
    def is_spect(self) -> bool:
        """An NM series of reconstructed tomographic images (Image Type value 3 ``RECON TOMO`` or
        ``RECON GATED TOMO``, PS3.3 C.8.4.7.1), or an NM series without Image Type."""
        if self.modality.upper() != "NM":
            return False
        return len(self.image_type) < 3 or self.image_type[2].upper() in ("RECON TOMO", "RECON GATED TOMO")


@dataclass(frozen=True)
class Timepoint:
    """All retrieved series of one study date, in ``folder``."""

    study_date: date | None
    folder: Path
    series: tuple[RetrievedSeries, ...]

    def first(self, modality: str) -> RetrievedSeries | None:
        """The first retrieved series of ``modality`` (e.g. ``"NM"``), or None."""
        return next((s for s in self.series if s.modality.upper() == modality.upper()), None)


@dataclass(frozen=True)
class StoredInstance:
    """One file sent by C-STORE and the status the peer gave (0x0000 or a warning such as 0xB000)."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    status: int


@dataclass(frozen=True)
class StoreResult:
    """Outcome of :func:`store`: every instance the peer accepted, and the files of the folders given that
    were left out (with why: not DICOM, a DICOMDIR)."""

    node: PacsNode
    instances: tuple[StoredInstance, ...]
    skipped: tuple[tuple[Path, str], ...] = ()

    @property
    def n_stored(self) -> int:
        """Number of instances the peer accepted."""
        return len(self.instances)


# --- helpers ------------------------------------------------------------------------------------------------
def _check_ae_title(value: str, name: str) -> None:
    if not isinstance(value, str) or not _AE_TITLE.match(value) or not value.strip():
        raise InputError(
            f"{name} must be 1-16 printable ASCII characters without backslash; got {value!r}: "
            "use the AE title configured on the PACS, e.g. ORTHANC"
        )


def _check_timeout(timeout_s: float) -> None:
    if not timeout_s > 0:
        raise InputError(f"timeout_s must be > 0; got {timeout_s!r}: give a time limit in seconds, e.g. 30")


def _status_text(code: int, service: Literal["verify", "find", "get", "move", "store"]) -> str:
    """``0xA700 (Failure: Out of resources)``: the code and its meaning from PS3.4."""
    from pynetdicom import status as st

    table = {
        "verify": st.VERIFICATION_SERVICE_CLASS_STATUS,
        "find": st.QR_FIND_SERVICE_CLASS_STATUS,
        "get": st.QR_GET_SERVICE_CLASS_STATUS,
        "move": st.QR_MOVE_SERVICE_CLASS_STATUS,
        "store": st.STORAGE_SERVICE_CLASS_STATUS,
    }[service]
    if code in table:
        category, meaning = table[code]
        return f"0x{code:04X} ({category}: {meaning})"
    # Ranges such as 0xA7xx and 0xCxxx are listed by their first code only.
    for known, (category, meaning) in table.items():
        if known & 0xFF00 == code & 0xFF00 and category != "Success":
            return f"0x{code:04X} ({category}: {meaning})"
    return f"0x{code:04X} ({st.code_to_category(code)})"


class _LogCapture(logging.Handler):
    """Collects pynetdicom's log messages during one operation to explain a failure in one line."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:  # a malformed log record must not break the operation
            self.messages.append(str(record.msg))

    def find(self, prefix: str) -> str | None:
        for message in self.messages:
            if message.startswith(prefix):
                return message[len(prefix) :].strip()
        return None


@contextmanager
def _captured_log() -> Iterator[_LogCapture]:
    logger = logging.getLogger("pynetdicom")
    capture = _LogCapture()
    logger.addHandler(capture)  # the messages used are logged at ERROR level
    try:
        yield capture
    finally:
        logger.removeHandler(capture)


def _make_ae(calling_ae_title: str, timeout_s: float) -> Any:
    from pynetdicom import AE

    _check_ae_title(calling_ae_title, "calling_ae_title")
    _check_timeout(timeout_s)
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    ae.maximum_associations = 10
    return ae


def _unreachable_reason(node: PacsNode, timeout_s: float) -> str | None:
    """Why no TCP connection to ``node`` opens, or None when one does."""
    try:
        with socket.create_connection((node.host, node.port), timeout=timeout_s):
            return None
    except socket.gaierror:
        return f"host name {node.host!r} is unknown"
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _unreachable(node: PacsNode, reason: str) -> PacsUnreachableError:
    return PacsUnreachableError(
        f"cannot reach DICOM node {node} ({reason}): check host and port and that the PACS is running"
    )


@contextmanager
def _closing(sockets: list[socket.socket]) -> Iterator[None]:
    try:
        yield
    finally:
        for raw in sockets:
            raw.close()


@contextmanager
def _association(
    node: PacsNode,
    ae: Any,
    *,
    purpose: str,
    ext_neg: list[Any] | None = None,
    evt_handlers: list[Any] | None = None,
) -> Iterator[Any]:
    """An established association with ``node``; released (or aborted on error) at the end.

    A plain TCP connection is tried first: it names why a node is unreachable (refused, unknown host,
    no answer), and pynetdicom's failed-connect path leaves its socket unclosed.
    """
    timeout_s = float(ae.connection_timeout or DEFAULT_TIMEOUT_S)
    reason = _unreachable_reason(node, timeout_s)
    if reason is not None:
        raise _unreachable(node, reason)
    from pynetdicom import evt

    # pynetdicom drops its socket unclosed when shutting down a connection the peer already closed;
    # holding a reference and closing it here keeps every socket closed.
    sockets: list[socket.socket] = []

    def keep_socket(event: Any) -> None:
        raw = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
        if isinstance(raw, socket.socket):
            sockets.append(raw)

    handlers = [(evt.EVT_CONN_OPEN, keep_socket), *(evt_handlers or [])]
    with _captured_log() as log, _closing(sockets):
        assoc = ae.associate(
            node.host,
            node.port,
            ae_title=node.ae_title,
            ext_neg=ext_neg,
            evt_handlers=handlers,
        )
        if not assoc.is_established:
            if assoc.is_rejected:
                reason = log.find("Reason:") or "no reason given"
                raise AssociationRejectedError(
                    f"{node} rejected the association for {purpose} (calling AE {ae.ae_title}): {reason}; "
                    "check the called AE title (--aet) and that the PACS knows our AE title (--our-aet)"
                )
            if log.find("Association request failed: unable to connect") is not None:
                raise _unreachable(node, log.find("TCP Initialisation Error:") or "connection failed")
            raise AssociationAbortedError(
                f"{node} aborted the association for {purpose} or did not answer within "
                f"{ae.acse_timeout:g} s: check the PACS log and the timeout"
            )
        try:
            if not assoc.accepted_contexts:
                raise AssociationRejectedError(
                    f"{node} accepted none of the proposed presentation contexts for {purpose}: "
                    "the PACS does not support this service or SOP class"
                )
            yield assoc
        except BaseException:
            if assoc.is_established:
                assoc.abort()
            raise
        if assoc.is_established:
            assoc.release()


def _aborted(node: PacsNode, assoc: Any, purpose: str, hint: str = "") -> AssociationAbortedError:
    return AssociationAbortedError(
        f"the association with {node} was aborted during {purpose} (no response within "
        f"{assoc.dimse_timeout:g} s or the peer aborted): {hint or 'check the PACS log and the timeout'}"
    )


# --- C-ECHO -------------------------------------------------------------------------------------------------
def echo(
    node: PacsNode,
    *,
    calling_ae_title: str = DEFAULT_CALLING_AE_TITLE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> EchoResult:
    """Verify that ``node`` answers DICOM (C-ECHO, PS3.4 Annex A).

    Parameters
    ----------
    node : PacsNode
        The PACS.
    calling_ae_title : str
        Our AE title.
    timeout_s : float
        Time limit in s for connection, association and response.

    Returns
    -------
    EchoResult
        With the round-trip time in s (association, echo and release).
    """
    ae = _make_ae(calling_ae_title, timeout_s)
    ae.add_requested_context(VERIFICATION)
    start = time.perf_counter()
    with _association(node, ae, purpose="C-ECHO") as assoc:
        status = assoc.send_c_echo()
        if "Status" not in status:
            raise _aborted(node, assoc, "C-ECHO")
        if status.Status != 0x0000:
            raise PacsStatusError(
                f"{node} answered C-ECHO with status {_status_text(status.Status, 'verify')}",
                status=int(status.Status),
            )
    return EchoResult(node=node, round_trip_s=time.perf_counter() - start)


# --- C-FIND -------------------------------------------------------------------------------------------------
def _date_range(date_from: date | None, date_to: date | None) -> str:
    if date_from is not None and date_to is not None and date_from > date_to:
        raise InputError(
            f"date_from {date_from.isoformat()} is after date_to {date_to.isoformat()}: swap them"
        )
    text_from = date_from.strftime("%Y%m%d") if date_from else ""
    text_to = date_to.strftime("%Y%m%d") if date_to else ""
    if not text_from and not text_to:
        return ""
    if text_from == text_to:
        return text_from
    return f"{text_from}-{text_to}"


def _parse_da(value: Any) -> date | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _text(ds: Any, keyword: str) -> str:
    value = getattr(ds, keyword, "")
    return "" if value is None else str(value)


def _c_find(
    node: PacsNode,
    identifier: Any,
    *,
    model: QueryModel,
    calling_ae_title: str,
    timeout_s: float,
) -> list[Any]:
    ae = _make_ae(calling_ae_title, timeout_s)
    information_model = PATIENT_ROOT_FIND if model == "patient" else STUDY_ROOT_FIND
    ae.add_requested_context(information_model)
    level = identifier.QueryRetrieveLevel
    matches: list[Any] = []
    with _association(node, ae, purpose=f"C-FIND ({level})") as assoc:
        for status, found in assoc.send_c_find(identifier, information_model):
            if "Status" not in status:
                raise _aborted(node, assoc, f"C-FIND ({level})")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                if found is not None:
                    matches.append(found)
                continue
            if code != 0x0000:
                raise PacsStatusError(
                    f"{node} answered C-FIND ({level}) with status {_status_text(code, 'find')}",
                    status=code,
                )
    return matches


def _check_model(model: str, allowed: Sequence[str]) -> None:
    if model not in allowed:
        raise InputError(f"model must be one of {', '.join(allowed)}; got {model!r}")


def find_patients(
    node: PacsNode,
    *,
    patient_id: str = "",
    patient_name: str = "",
    calling_ae_title: str = DEFAULT_CALLING_AE_TITLE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[PatientMatch]:
    """Patients matching an ID and/or name (C-FIND, Patient Root, PATIENT level).

    Parameters
    ----------
    node : PacsNode
        The PACS.
    patient_id, patient_name : str
        Matching keys; empty matches all, ``*`` and ``?`` are wildcards (PS3.4 C.2.2.2.4), names are
        written ``Family^Given``.
    calling_ae_title, timeout_s
        Our AE title and the time limit in s.
    """
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.NumberOfPatientRelatedStudies = ""
    found = _c_find(node, ds, model="patient", calling_ae_title=calling_ae_title, timeout_s=timeout_s)
    return [
        PatientMatch(
            patient_id=_text(m, "PatientID"),
            patient_name=_text(m, "PatientName"),
            birth_date=_parse_da(getattr(m, "PatientBirthDate", "")),
            sex=_text(m, "PatientSex"),
            n_studies=_int_or_none(getattr(m, "NumberOfPatientRelatedStudies", None)),
        )
        for m in found
    ]


def find_studies(
    node: PacsNode,
    *,
    patient_id: str = "",
    patient_name: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    modality: str = "",
    model: QueryModel = "study",
    calling_ae_title: str = DEFAULT_CALLING_AE_TITLE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[StudyMatch]:
    """Studies matching patient, date range and modality (C-FIND, STUDY level).

    Parameters
    ----------
    node : PacsNode
        The PACS.
    patient_id, patient_name : str
        Matching keys (wildcards ``*`` and ``?`` allowed); the Patient Root model needs ``patient_id``.
    date_from, date_to : date, optional
        Inclusive Study Date range.
    modality : str
        Match on Modalities in Study (e.g. ``"NM"``); not every PACS supports this key.
    model : {"study", "patient"}
        Query/Retrieve Information Model.
    calling_ae_title, timeout_s
        Our AE title and the time limit in s.

    Returns
    -------
    list of StudyMatch
        Ordered by study date, then UID.
    """
    from pydicom.dataset import Dataset

    _check_model(model, ("study", "patient"))
    if model == "patient" and not patient_id:
        raise InputError("patient_id is required with model='patient': give it or use model='study'")
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.StudyInstanceUID = ""
    ds.StudyDate = _date_range(date_from, date_to)
    ds.StudyTime = ""
    ds.StudyDescription = ""
    ds.AccessionNumber = ""
    ds.ModalitiesInStudy = modality
    ds.NumberOfStudyRelatedSeries = ""
    found = _c_find(node, ds, model=model, calling_ae_title=calling_ae_title, timeout_s=timeout_s)
    studies = []
    for m in found:
        modalities = getattr(m, "ModalitiesInStudy", None)
        if modalities is None or modalities == "":
            modality_list: tuple[str, ...] = ()
        elif isinstance(modalities, str):
            modality_list = (modalities,)
        else:
            modality_list = tuple(str(v) for v in modalities)
        studies.append(
            StudyMatch(
                patient_id=_text(m, "PatientID"),
                patient_name=_text(m, "PatientName"),
                study_uid=_text(m, "StudyInstanceUID"),
                study_date=_parse_da(getattr(m, "StudyDate", "")),
                study_time=_text(m, "StudyTime"),
                study_description=_text(m, "StudyDescription"),
                accession_number=_text(m, "AccessionNumber"),
                modalities=modality_list,
                n_series=_int_or_none(getattr(m, "NumberOfStudyRelatedSeries", None)),
            )
        )
    return sorted(studies, key=lambda s: (s.study_date or date.min, s.study_uid))


def find_series(
    node: PacsNode,
    *,
    study_uid: str = "",
    patient_id: str = "",
    patient_name: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    modality: str = "",
    model: QueryModel = "study",
    calling_ae_title: str = DEFAULT_CALLING_AE_TITLE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[SeriesMatch]:
    """Series of one study, or of all studies matching patient and dates (C-FIND, SERIES level).

    The query is hierarchical (PS3.4 C.4.1.2.1): without ``study_uid`` the matching studies are found
    first, then their series.

    Parameters
    ----------
    node : PacsNode
        The PACS.
    study_uid : str
        Study Instance UID; when empty, ``patient_id``/``patient_name``/dates select the studies.
    patient_id, patient_name, date_from, date_to
        Study selection as in :func:`find_studies`.
    modality : str
        Keep series of this modality only (e.g. ``"NM"``).
    model : {"study", "patient"}
        Query/Retrieve Information Model (Patient Root needs ``patient_id``).
    calling_ae_title, timeout_s
        Our AE title and the time limit in s.

    Returns
    -------
    list of SeriesMatch
        Ordered by study date, study UID and series number.
    """
    from pydicom.dataset import Dataset

    _check_model(model, ("study", "patient"))
    if model == "patient" and not patient_id:
        raise InputError("patient_id is required with model='patient': give it or use model='study'")
    if study_uid:
        if not _UID.match(study_uid):
            raise InputError(f"study_uid {study_uid!r} is not a DICOM UID: give digits separated by dots")
        studies: list[tuple[str, date | None]] = [(study_uid, None)]
    else:
        if not (patient_id or patient_name or date_from or date_to):
            raise InputError(
                "find_series needs study_uid, patient_id, patient_name or a date range: narrow the query"
            )
        studies = [
            (s.study_uid, s.study_date)
            for s in find_studies(
                node,
                patient_id=patient_id,
                patient_name=patient_name,
                date_from=date_from,
                date_to=date_to,
                model=model,
                calling_ae_title=calling_ae_title,
                timeout_s=timeout_s,
            )
        ]
    result: list[SeriesMatch] = []
    for uid, study_date in studies:
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        if model == "patient":
            ds.PatientID = patient_id
        ds.StudyInstanceUID = uid
        ds.SeriesInstanceUID = ""
        ds.Modality = modality
        ds.SeriesNumber = ""
        ds.SeriesDescription = ""
        ds.SeriesDate = ""
        ds.NumberOfSeriesRelatedInstances = ""
        found = _c_find(node, ds, model=model, calling_ae_title=calling_ae_title, timeout_s=timeout_s)
        for m in found:
            series_modality = _text(m, "Modality")
            if modality and series_modality != modality:
                continue
            result.append(
                SeriesMatch(
                    patient_id=_text(m, "PatientID") or patient_id,
                    study_uid=_text(m, "StudyInstanceUID") or uid,
                    series_uid=_text(m, "SeriesInstanceUID"),
                    modality=series_modality,
                    series_number=_int_or_none(getattr(m, "SeriesNumber", None)),
                    series_description=_text(m, "SeriesDescription"),
                    series_date=_parse_da(getattr(m, "SeriesDate", "")),
                    n_instances=_int_or_none(getattr(m, "NumberOfSeriesRelatedInstances", None)),
                    study_date=study_date,
                )
            )
    return sorted(
        result,
        key=lambda s: (s.study_date or s.series_date or date.min, s.study_uid, s.series_number or 0),
    )


# --- retrieval ----------------------------------------------------------------------------------------------
class _Receiver:
    """C-STORE handler writing each received instance into ``folder`` as ``<SOP Instance UID>.dcm``."""

    def __init__(self, folder: Path, series_uid: str) -> None:
        self.folder = folder
        self.series_uid = series_uid
        self.received: list[tuple[int, Path]] = []
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def handle(self, event: Any) -> int:
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            series_uid = str(getattr(ds, "SeriesInstanceUID", ""))
            sop_uid = str(getattr(ds, "SOPInstanceUID", ""))
            if series_uid != self.series_uid:
                with self._lock:
                    self.foreign.append(series_uid)
                return 0x0000
            with self._lock:
                index = len(self.received) + 1
            name = f"{sop_uid}.dcm" if _UID.match(sop_uid) else f"instance_{index:05d}.dcm"
            path = self.folder / name
            if hasattr(event, "encoded_dataset"):
                path.write_bytes(event.encoded_dataset(include_meta=True))
            else:  # pynetdicom < 2.1
                ds.save_as(path, enforce_file_format=True)
            number = _int_or_none(getattr(ds, "InstanceNumber", None))
            with self._lock:
                self.received.append((number if number is not None else index, path))
            return 0x0000
        except Exception as exc:  # report as a failed sub-operation, never crash the association
            with self._lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            return 0xA700

    def files(self) -> tuple[Path, ...]:
        """Received files (each once, an instance sent twice overwrites itself), by Instance Number."""
        with self._lock:
            unique = {path: number for number, path in self.received}
        return tuple(sorted(unique, key=lambda path: (unique[path], path.name)))


def _storage_contexts() -> list[tuple[str, list[str]]]:
    return [(uid, list(_ACCEPTED_TRANSFER_SYNTAXES)) for uid in STORAGE_SOP_CLASSES.values()]


def _retrieve_identifier(patient_id: str, study_uid: str, series_uid: str) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    if patient_id:
        ds.PatientID = patient_id
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    return ds


def _check_sub_operations(
    node: PacsNode, code: int, last: Any, service: Literal["get", "move"], receiver: _Receiver
) -> None:
    if code == 0x0000:
        return
    failed = _int_or_none(getattr(last, "NumberOfFailedSuboperations", None)) if last is not None else None
    detail = f"; {failed} sub-operations failed" if failed else ""
    if receiver.errors:
        detail += f"; writing failed: {receiver.errors[0]}"
    raise PacsStatusError(
        f"{node} answered C-{service.upper()} with status {_status_text(code, service)}{detail}",
        status=code,
    )


def _run_get(
    node: PacsNode,
    identifier: Any,
    receiver: _Receiver,
    *,
    model: QueryModel,
    calling_ae_title: str,
    timeout_s: float,
) -> None:
    from pynetdicom import build_role, evt

    ae = _make_ae(calling_ae_title, timeout_s)
    information_model = PATIENT_ROOT_GET if model == "patient" else STUDY_ROOT_GET
    ae.add_requested_context(information_model)
    roles = []
    for uid, syntaxes in _storage_contexts():
        ae.add_requested_context(uid, syntaxes)
        roles.append(build_role(uid, scp_role=True))
    handlers = [(evt.EVT_C_STORE, receiver.handle)]
    with _association(node, ae, purpose="C-GET", ext_neg=roles, evt_handlers=handlers) as assoc:
        code: int | None = None
        last = None
        for status, _identifier in assoc.send_c_get(identifier, information_model):
            if "Status" not in status:
                raise _aborted(node, assoc, "C-GET")
            code = int(status.Status)
            last = status
        if code is None:
            raise _aborted(node, assoc, "C-GET")
        _check_sub_operations(node, code, last, "get", receiver)


def _run_move(
    node: PacsNode,
    identifier: Any,
    receiver: _Receiver,
    *,
    model: QueryModel,
    calling_ae_title: str,
    timeout_s: float,
    move_host: str,
    move_port: int | None,
    on_listening: Callable[[str, int], None] | None,
) -> None:
    from pynetdicom import evt

    scp = _make_ae(calling_ae_title, timeout_s)
    for uid, syntaxes in _storage_contexts():
        scp.add_supported_context(uid, syntaxes)
    try:
        server = scp.start_server(
            (move_host, move_port or 0),
            block=False,
            evt_handlers=[(evt.EVT_C_STORE, receiver.handle)],
        )
    except OSError as exc:
        raise InputError(
            f"cannot listen on {move_host}:{move_port or 0} for C-MOVE ({exc.strerror or exc}): "
            "choose a free move_port (the one the PACS has configured for our AE title)"
        ) from None
    try:
        port = int(server.server_address[1])
        if on_listening is not None:
            on_listening(move_host, port)
        ae = _make_ae(calling_ae_title, timeout_s)
        information_model = PATIENT_ROOT_MOVE if model == "patient" else STUDY_ROOT_MOVE
        ae.add_requested_context(information_model)
        with _association(node, ae, purpose="C-MOVE") as assoc:
            code: int | None = None
            last = None
            hint = (
                f"check that the PACS knows AE title {calling_ae_title} as a C-MOVE destination at "
                f"{move_host}:{port}, and the PACS log"
            )
            for status, _identifier in assoc.send_c_move(identifier, calling_ae_title, information_model):
                if "Status" not in status:
                    raise _aborted(node, assoc, "C-MOVE", hint)
                code = int(status.Status)
                last = status
            if code is None:
                raise _aborted(node, assoc, "C-MOVE", hint)
            if code == 0xA801:
                raise PacsStatusError(
                    f"{node} answered C-MOVE with status {_status_text(code, 'move')}: the PACS must know "
                    f"AE title {calling_ae_title} at {move_host}:{port}",
                    status=code,
                )
            if code != 0x0000 and not receiver.received:
                raise PacsStatusError(
                    f"{node} answered C-MOVE with status {_status_text(code, 'move')} and delivered nothing "
                    f"to {calling_ae_title} at {move_host}:{port}: check that the PACS sends our AE title to "
                    "this address and port",
                    status=code,
                )
            _check_sub_operations(node, code, last, "move", receiver)
    finally:
        server.shutdown()


def retrieve_series(
    node: PacsNode,
    series_uid: str,
    out_dir: str | Path,
    *,
    study_uid: str,
    patient_id: str = "",
    method: RetrieveMethod = "get",
    model: QueryModel = "study",
    calling_ae_title: str = DEFAULT_CALLING_AE_TITLE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    move_host: str = "127.0.0.1",
    move_port: int | None = None,
    on_listening: Callable[[str, int], None] | None = None,
    modality: str = "",
) -> RetrievedSeries:
    """Retrieve one series into ``out_dir`` by C-GET or C-MOVE (PS3.4 C.4.2, C.4.3).

    The files are received into a hidden temporary folder beside ``out_dir`` and renamed to ``out_dir``
    when the retrieval succeeded, so ``out_dir`` never holds a partial series.

    Parameters
    ----------
    node : PacsNode
        The PACS.
    series_uid : str
        Series Instance UID.
    out_dir : path
        Folder to create for the series (must not exist or be empty); files are named
        ``<SOP Instance UID>.dcm``.
    study_uid : str
        Study Instance UID of the series (a unique key of the hierarchical retrieve).
    patient_id : str
        Patient ID; required with ``model="patient"``.
    method : {"get", "move"}
        C-GET receives the instances on the same association; C-MOVE asks the PACS to send them to our
        AE title, where a temporary Storage SCP listens on ``move_host``:``move_port``.
    model : {"study", "patient"}
        Query/Retrieve Information Model.
    calling_ae_title : str
        Our AE title (also the C-MOVE destination).
    timeout_s : float
        Time limit in s for connection, association and each response.
    move_host, move_port : str, int
        Address of our Storage SCP for C-MOVE. The PACS must map ``calling_ae_title`` to this address;
        ``move_port=None`` picks a free port, which the PACS must then be told (see ``on_listening``).
    on_listening : callable, optional
        C-MOVE only: called with ``(move_host, port)`` once our Storage SCP listens and before the C-MOVE
        request is sent, e.g. to register the port through the PACS's configuration API.
    modality : str
        Modality recorded in the result (informational).

    Returns
    -------
    RetrievedSeries
        The folder and the files, ordered by Instance Number.
    """
    if method not in ("get", "move"):
        raise InputError(f"method must be 'get' or 'move'; got {method!r}")
    _check_model(model, ("study", "patient"))
    for name, uid in (("series_uid", series_uid), ("study_uid", study_uid)):
        if not _UID.match(uid or ""):
            raise InputError(f"{name} {uid!r} is not a DICOM UID: give digits separated by dots")
    if model == "patient" and not patient_id:
        raise InputError("patient_id is required with model='patient': give it or use model='study'")
    if move_port is not None and not 0 < move_port < 65536:
        raise InputError(f"move_port must be in 1-65535; got {move_port!r}")
    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"out_dir {target} already exists and is not empty: choose a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    receiver = _Receiver(staging, series_uid)
    identifier = _retrieve_identifier(patient_id if model == "patient" else "", study_uid, series_uid)
    try:
        if method == "get":
            _run_get(
                node,
                identifier,
                receiver,
                model=model,
                calling_ae_title=calling_ae_title,
                timeout_s=timeout_s,
            )
        else:
            _run_move(
                node,
                identifier,
                receiver,
                model=model,
                calling_ae_title=calling_ae_title,
                timeout_s=timeout_s,
                move_host=move_host,
                move_port=move_port,
                on_listening=on_listening,
            )
        if receiver.errors:
            raise PacsError(f"could not write a received instance into {target}: {receiver.errors[0]}")
        if not receiver.received:
            other = f" (only {len(receiver.foreign)} instances of other series)" if receiver.foreign else ""
            raise PacsError(
                f"{node} returned no instance of series {series_uid} in study {study_uid}{other}: "
                "check the UIDs with 'theradose pacs find'"
            )
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = tuple(target / path.name for path in receiver.files())
    return RetrievedSeries(
        series_uid=series_uid,
        study_uid=study_uid,
        modality=modality,
        folder=target,
        files=files,
        method=method,
        image_type=_image_type(files[0]),
    )


def _image_type(path: Path) -> tuple[str, ...]:
    from pydicom import dcmread

    try:
        value = dcmread(path, stop_before_pixels=True, specific_tags=["ImageType"]).get("ImageType")
    except Exception:  # an unreadable header only loses the image type, the file is kept as received
        return ()
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "series"


def retrieve_patient_timepoints(
    node: PacsNode,
    patient_id: str,
    out_dir: str | Path,
    *,
    modalities: Sequence[str] = ("NM", "CT"),
    date_from: date | None = None,
    date_to: date | None = None,
    method: RetrieveMethod = "get",
    calling_ae_title: str = DEFAULT_CALLING_AE_TITLE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    move_host: str = "127.0.0.1",
    move_port: int | None = None,
    on_listening: Callable[[str, int], None] | None = None,
    on_series: Callable[[SeriesMatch], None] | None = None,
) -> list[Timepoint]:
    """Retrieve every NM/CT series of a patient, grouped by study date, for a pipeline run.

    Layout: ``out_dir/<YYYYMMDD>/<MODALITY>_<series number>_<series UID>/<SOP Instance UID>.dcm`` (studies
    without a date go to ``out_dir/undated``). Each series folder appears complete or not at all.

    Parameters
    ----------
    node : PacsNode
        The PACS.
    patient_id : str
        Patient ID (exact match; wildcards are refused so that one patient's data is retrieved).
    out_dir : path
        Root folder (created).
    modalities : sequence of str
        Modalities to retrieve.
    date_from, date_to : date, optional
        Inclusive Study Date range.
    method, calling_ae_title, timeout_s, move_host, move_port, on_listening
        As in :func:`retrieve_series`.
    on_series : callable, optional
        Called with each series before it is retrieved (progress display).

    Returns
    -------
    list of Timepoint
        Ordered by study date.
    """
    if not patient_id or any(c in patient_id for c in "*?\\"):
        raise InputError(
            f"patient_id must be one exact Patient ID without wildcards; got {patient_id!r}: "
            "find the ID with 'theradose pacs find --level patient'"
        )
    wanted = {m.upper() for m in modalities}
    if not wanted:
        raise InputError("modalities is empty: give at least one modality, e.g. NM")
    series = [
        s
        for s in find_series(
            node,
            patient_id=patient_id,
            date_from=date_from,
            date_to=date_to,
            calling_ae_title=calling_ae_title,
            timeout_s=timeout_s,
        )
        if s.modality.upper() in wanted and s.patient_id in ("", patient_id)
    ]
    if not series:
        raise PacsError(
            f"{node} has no {'/'.join(sorted(wanted))} series for patient_id {patient_id!r}: "
            "check the ID and dates with 'theradose pacs find'"
        )
    root = Path(out_dir)
    grouped: dict[date | None, list[RetrievedSeries]] = {}
    for match in series:
        if on_series is not None:
            on_series(match)
        day = match.study_date or match.series_date
        folder = root / (day.strftime("%Y%m%d") if day else "undated")
        name = _safe_name(f"{match.modality}_{match.series_number or 0}_{match.series_uid}")
        retrieved = retrieve_series(
            node,
            match.series_uid,
            folder / name,
            study_uid=match.study_uid,
            method=method,
            calling_ae_title=calling_ae_title,
            timeout_s=timeout_s,
            move_host=move_host,
            move_port=move_port,
            on_listening=on_listening,
            modality=match.modality,
        )
        grouped.setdefault(day, []).append(retrieved)
    return [
        Timepoint(
            study_date=day,
            folder=root / (day.strftime("%Y%m%d") if day else "undated"),
            series=tuple(items),
        )
        for day, items in sorted(grouped.items(), key=lambda item: item[0] or date.min)
    ]


def timepoints_toml(timepoints: Sequence[Timepoint], *, base_dir: str | Path | None = None) -> str:
    """``[[timepoints]]`` tables of a pipeline study file for retrieved time points.

    One table per SPECT series (NM, Image Type ``RECON TOMO``; planar whole-body or static NM series are
    left out), with ``spect`` (folder) and ``series_uid``, plus ``ct`` and ``ct_series_uid`` from the CT
    series of the same study, or else the first CT series of the same date. Two SPECT acquisitions on
    one day give two tables; dates without SPECT (e.g. a diagnostic CT alone) give none.

    Parameters
    ----------
    timepoints : sequence of Timepoint
        From :func:`retrieve_patient_timepoints`.
    base_dir : path, optional
        Write folders relative to this folder (the study file's); absolute paths otherwise.

    Returns
    -------
    str
        TOML text to append to a study file.
    """
    import json

    def where(folder: Path) -> str:
        if base_dir is None:
            return str(folder.resolve())
        return os.path.relpath(folder.resolve(), Path(base_dir).resolve())

    blocks = []
    for tp in timepoints:
        cts = [s for s in tp.series if s.modality.upper() == "CT"]
        for spect in (s for s in tp.series if s.is_spect):
            ct = next((c for c in cts if c.study_uid == spect.study_uid), cts[0] if cts else None)
            lines = [
                "[[timepoints]]",
                f"spect = {json.dumps(where(spect.folder))}",
                f"series_uid = {json.dumps(spect.series_uid)}",
            ]
            if ct is not None:
                lines += [
                    f"ct = {json.dumps(where(ct.folder))}",
                    f"ct_series_uid = {json.dumps(ct.series_uid)}",
                ]
            blocks.append("\n".join(lines) + "\n")
    if not blocks:
        raise InputError(
            "no time point has a SPECT series (NM, RECON TOMO): retrieve the SPECT series (modality NM) first"
        )
    return "\n".join(blocks)


# --- C-STORE ------------------------------------------------------------------------------------------------
#: Media Storage Directory Storage: a DICOMDIR indexes files on a medium and is never sent.
MEDIA_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"


def _collect_files(paths: Sequence[str | Path] | str | Path) -> list[tuple[Path, bool]]:
    """(file, named) for every file given or found in a folder given (``named``: given by itself)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[tuple[Path, bool]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files.extend(
                (p, False) for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith(".")
            )
        elif path.is_file():
            files.append((path, True))
        else:
            raise InputError(f"path {path} does not exist: give DICOM files or folders holding them")
    if not files:
        raise InputError("no files to send: give DICOM files or folders holding them")
    return files


def _has_dicom_prefix(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def store(
    node: PacsNode,
    paths: Sequence[str | Path] | str | Path,
    *,
    calling_ae_title: str = DEFAULT_CALLING_AE_TITLE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> StoreResult:
    """Send DICOM files to ``node`` by C-STORE (PS3.4 Annex B) on one association.

    Presentation contexts are proposed for the SOP classes of the files and always for CT, NM, PET,
    RT Dose, Segmentation, Enhanced/Comprehensive SR and the Radiopharmaceutical Radiation Dose SR.
    Uncompressed files are offered in Explicit and Implicit VR Little Endian; compressed files in their
    own transfer syntax.

    Parameters
    ----------
    node : PacsNode
        The PACS.
    paths : path or sequence of paths
        DICOM Part 10 files, or folders searched recursively.
    calling_ae_title, timeout_s
        Our AE title and the time limit in s.

    Returns
    -------
    StoreResult
        One entry per file, with the status the PACS gave (success or warning). In folders, files that
        are not DICOM (no Part 10 preamble: README, checksums) and DICOMDIRs are left out and listed in
        ``skipped``; a damaged DICOM file stops the send before anything is sent.

    Raises
    ------
    PacsStatusError
        When the PACS refused at least one file (after every file was tried); names the first file and
        its status.
    """
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    from theradose.errors import DicomError
    from theradose.io.dicom.structure import check_file_complete

    files = _collect_files(paths)
    headers: list[tuple[Path, str, str, str]] = []
    skipped: list[tuple[Path, str]] = []
    for path, named in files:
        if not named and not _has_dicom_prefix(path):
            skipped.append((path, "not a DICOM Part 10 file"))  # a README, a checksum list, ...
            continue
        try:
            header = dcmread(path, stop_before_pixels=True)
            check_file_complete(path)
        except (InvalidDicomError, OSError, ValueError, DicomError) as exc:
            raise InputError(
                f"{path} is not a readable DICOM file ({' '.join(str(exc).split())[:200]}): send DICOM "
                "Part 10 files only; nothing was sent"
            ) from None
        sop_class = str(
            getattr(header, "SOPClassUID", "") or getattr(header.file_meta, "MediaStorageSOPClassUID", "")
        )
        if sop_class == MEDIA_DIRECTORY_STORAGE or "DirectoryRecordSequence" in header:
            if named:
                raise InputError(f"{path} is a DICOMDIR (an index of the files on a medium): send the files")
            skipped.append((path, "a DICOMDIR: an index of files, not an instance"))
            continue
        sop_instance = str(getattr(header, "SOPInstanceUID", ""))
        syntax = str(getattr(header.file_meta, "TransferSyntaxUID", "") or IMPLICIT_VR_LITTLE_ENDIAN)
        if not sop_class or not sop_instance:
            raise InputError(f"{path} has no SOP Class/Instance UID: it cannot be stored")
        headers.append((path, sop_class, sop_instance, syntax))

    contexts: dict[tuple[str, tuple[str, ...]], None] = {}
    uncompressed = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
    for uid in (
        STORAGE_SOP_CLASSES["CT Image Storage"],
        STORAGE_SOP_CLASSES["Nuclear Medicine Image Storage"],
        STORAGE_SOP_CLASSES["Positron Emission Tomography Image Storage"],
        RT_DOSE_STORAGE,
        STORAGE_SOP_CLASSES["Segmentation Storage"],
        STORAGE_SOP_CLASSES["Enhanced SR Storage"],
        STORAGE_SOP_CLASSES["Comprehensive SR Storage"],
        RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE,
    ):
        contexts[(uid, uncompressed)] = None
    for _path, sop_class, _sop_instance, syntax in headers:
        # the file's own transfer syntax first (sent without re-encoding), then uncompressed alternatives
        contexts[(sop_class, (syntax,))] = None
        if syntax in _UNCOMPRESSED:
            contexts[(sop_class, uncompressed)] = None
    if not headers:
        raise InputError(
            f"no DICOM instance to send among {len(files)} files ({skipped[0][0].name}: {skipped[0][1]}): "
            "give the folder holding the DICOM files"
        )
    if len(contexts) > _MAX_CONTEXTS:
        raise InputError(
            f"the files need {len(contexts)} presentation contexts, more than the {_MAX_CONTEXTS} one "
            "association allows: send them in smaller groups"
        )
    ae = _make_ae(calling_ae_title, timeout_s)
    for uid, syntaxes in contexts:
        ae.add_requested_context(uid, list(syntaxes))

    stored: list[StoredInstance] = []
    failures: list[tuple[Path, int]] = []
    with _association(node, ae, purpose="C-STORE") as assoc:
        for path, sop_class, _sop_instance, syntax in headers:  # refuse before sending anything
            if not any(
                cx.abstract_syntax == sop_class
                and (
                    cx.transfer_syntax[0] == syntax
                    or (syntax in _UNCOMPRESSED and cx.transfer_syntax[0] in _UNCOMPRESSED)
                )
                for cx in assoc.accepted_contexts
            ):
                raise AssociationRejectedError(
                    f"{node} rejected the presentation context for SOP class {sop_class} in transfer "
                    f"syntax {syntax} ({path.name}): enable that storage class on the PACS; nothing was sent"
                )
        for path, sop_class, sop_instance, _syntax in headers:
            try:
                status = assoc.send_c_store(dcmread(path))
            except (ValueError, AttributeError) as exc:
                raise InputError(
                    f"{path} cannot be encoded for sending ({str(exc).splitlines()[0]}): "
                    "fix or re-write the file"
                ) from None
            if "Status" not in status:
                raise _aborted(node, assoc, f"C-STORE of {path.name}")
            code = int(status.Status)
            if code == 0x0000 or 0xB000 <= code <= 0xBFFF:  # success or warning (PS3.4 Table B.2-1)
                stored.append(StoredInstance(path, sop_class, sop_instance, code))
            else:
                failures.append((path, code))
    if failures:
        path, code = failures[0]
        raise PacsStatusError(
            f"{node} refused {len(failures)} of {len(headers)} files; first {path.name}: status "
            f"{_status_text(code, 'store')}",
            status=code,
        )
    return StoreResult(node=node, instances=tuple(stored), skipped=tuple(skipped))


__all__ = [
    "DEFAULT_CALLING_AE_TITLE",
    "DEFAULT_TIMEOUT_S",
    "RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE",
    "RT_DOSE_STORAGE",
    "STORAGE_SOP_CLASSES",
    "AssociationAbortedError",
    "AssociationRejectedError",
    "EchoResult",
    "PacsError",
    "PacsNode",
    "PacsStatusError",
    "PacsUnreachableError",
    "PatientMatch",
    "RetrievedSeries",
    "SeriesMatch",
    "StoreResult",
    "StoredInstance",
    "StudyMatch",
    "Timepoint",
    "echo",
    "find_patients",
    "find_series",
    "find_studies",
    "retrieve_patient_timepoints",
    "retrieve_series",
    "store",
    "timepoints_toml",
]
