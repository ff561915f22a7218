"""Failures of the DICOM client that need no PACS: bad input, unreachable node, aborted association."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import date

import pytest

from theradose.errors import InputError, TheradoseError
from theradose.io.pacs import (
    AssociationAbortedError,
    PacsNode,
    PacsUnreachableError,
    _status_text,
    echo,
    find_series,
    find_studies,
    retrieve_patient_timepoints,
    retrieve_series,
    store,
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("host", "port", "aet", "field"),
    [
        ("", 4242, "ORTHANC", "host"),
        ("127.0.0.1", 0, "ORTHANC", "port"),
        ("127.0.0.1", 70000, "ORTHANC", "port"),
        ("127.0.0.1", 4242, "", "ae_title"),
        ("127.0.0.1", 4242, "A" * 17, "ae_title"),
        ("127.0.0.1", 4242, "BAD\\AET", "ae_title"),
    ],
)
def test_node_validation_names_the_field(host, port, aet, field):
    with pytest.raises(InputError, match=field):
        PacsNode(host, port, aet)


def test_unreachable_port_is_one_clear_line():
    node = PacsNode("127.0.0.1", free_port(), "ORTHANC")  # nothing listens there
    with pytest.raises(PacsUnreachableError) as info:
        echo(node, timeout_s=5)
    message = str(info.value)
    assert "\n" not in message
    assert f"cannot reach DICOM node ORTHANC@127.0.0.1:{node.port} (connection refused)" in message
    assert isinstance(info.value, TheradoseError)


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on loopback that either closes each connection at once or never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    behaviour: list[str] = ["close"]
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            if behaviour[0] == "close":
                connection.close()
            else:
                held.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1]), behaviour
    stop.set()
    thread.join(timeout=2)
    for connection in held:
        connection.close()
    listener.close()


def test_peer_closing_the_connection_is_an_aborted_association(silent_server):
    port, behaviour = silent_server
    behaviour[0] = "close"
    with pytest.raises(AssociationAbortedError, match="aborted the association for C-ECHO"):
        echo(PacsNode("127.0.0.1", port, "ORTHANC"), timeout_s=5)


def test_peer_not_answering_times_out(silent_server):
    port, behaviour = silent_server
    behaviour[0] = "hang"
    start = time.perf_counter()
    with pytest.raises(AssociationAbortedError, match=r"did not answer within 0.5 s"):
        echo(PacsNode("127.0.0.1", port, "ORTHANC"), timeout_s=0.5)
    assert time.perf_counter() - start < 5.0


def test_status_codes_are_named_from_ps3_4():
    """Meanings from DICOM PS3.4: Table C.4-2 (C-MOVE 0xA801 "Refused: Move Destination unknown"),
    Table B.2-1 (C-STORE 0xA700 "Refused: Out of Resources"), Table C.4-1 (C-FIND 0xC000-0xCFFF
    "Failed: Unable to process")."""
    assert _status_text(0xA801, "move").lower().startswith("0xa801 (failure: ")
    assert "destination unknown" in _status_text(0xA801, "move").lower()
    assert "out of resources" in _status_text(0xA700, "store").lower()
    assert "unable to process" in _status_text(0xC123, "find").lower()


def test_queries_refuse_bad_input_before_connecting():
    node = PacsNode("127.0.0.1", free_port(), "ORTHANC")  # never contacted
    with pytest.raises(InputError, match="date_from 2026-11-05 is after date_to 2026-11-01"):
        find_studies(node, patient_id="X", date_from=date(2026, 11, 5), date_to=date(2026, 11, 1))
    with pytest.raises(InputError, match="find_series needs study_uid"):
        find_series(node)
    with pytest.raises(InputError, match="patient_id is required with model='patient'"):
        find_studies(node, model="patient")
    with pytest.raises(InputError, match="study_uid 'abc' is not a DICOM UID"):
        find_series(node, study_uid="abc")
    with pytest.raises(InputError, match="calling_ae_title"):
        echo(node, calling_ae_title="X" * 20)
    with pytest.raises(InputError, match="timeout_s must be > 0"):
        echo(node, timeout_s=0)
    with pytest.raises(InputError, match="without wildcards"):
        retrieve_patient_timepoints(node, "TD-*", "out")


def test_retrieve_refuses_a_non_empty_target(tmp_path):
    node = PacsNode("127.0.0.1", free_port(), "ORTHANC")
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "old.dcm").write_bytes(b"x")
    with pytest.raises(InputError, match="already exists and is not empty"):
        retrieve_series(node, "1.2.3", tmp_path / "series", study_uid="1.2")
    with pytest.raises(InputError, match="method must be 'get' or 'move'"):
        retrieve_series(node, "1.2.3", tmp_path / "new", study_uid="1.2", method="ftp")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_store_refuses_missing_and_non_dicom_files(tmp_path):
    node = PacsNode("127.0.0.1", free_port(), "ORTHANC")
    with pytest.raises(InputError, match="does not exist"):
        store(node, [tmp_path / "missing.dcm"])
    (tmp_path / "notes.txt").write_text("not DICOM")
    with pytest.raises(InputError, match="is not a readable DICOM file"):
        store(node, [tmp_path / "notes.txt"])
    with pytest.raises(InputError, match="no files to send"):
        store(node, [])


@pytest.fixture
def refusing_scp(tmp_path):
    """A pynetdicom SCP on loopback (AE ``REFUSER``) that refuses the 2nd C-STORE with 0xA700 and answers
    every C-FIND with 0xA900; yields its node and the SOP Instance UIDs it accepted."""
    from pynetdicom import AE, StoragePresentationContexts, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    accepted: list[str] = []
    calls: list[int] = []

    def on_store(event):
        calls.append(1)
        if len(calls) == 2:
            return 0xA700
        accepted.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    def on_find(event):
        yield 0xA900, None

    ae = AE(ae_title="REFUSER")
    ae.supported_contexts = StoragePresentationContexts
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_C_FIND, on_find)]
    )
    try:
        yield PacsNode("127.0.0.1", int(server.server_address[1]), "REFUSER"), accepted
    finally:
        server.shutdown()


def _ct_files(tmp_path, n: int):
    import numpy as np

    from theradose.imaging.volume import Volume
    from theradose.io.dicom import PatientInfo, write_ct_series

    volume = Volume.from_spacing(
        np.zeros((n, 4, 4)), spacing_mm=(2.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0), unit="HU"
    )
    return write_ct_series(volume, tmp_path / "ct", patient=PatientInfo(patient_id="TD-REFUSE"))


def test_store_failure_status_is_named_after_every_file_was_tried(refusing_scp, tmp_path):
    """0xA700 is "Refused: Out of Resources" (PS3.4 Table B.2-1)."""
    from pydicom import dcmread

    from theradose.io.pacs import PacsStatusError

    node, accepted = refusing_scp
    files = _ct_files(tmp_path, 3)
    with pytest.raises(PacsStatusError) as info:
        store(node, files)
    assert info.value.status == 0xA700
    message = str(info.value)
    assert message.startswith(f"REFUSER@127.0.0.1:{node.port} refused 1 of 3 files; first {files[1].name}: ")
    assert "0xA700" in message and "out of resources" in message.lower() and "\n" not in message
    assert accepted == [str(dcmread(p).SOPInstanceUID) for p in (files[0], files[2])]


def test_find_failure_status_is_named(refusing_scp):
    """0xA900 is "Identifier does not match SOP Class" (PS3.4 Table C.4-1)."""
    from theradose.io.pacs import PacsStatusError

    node, _ = refusing_scp
    with pytest.raises(PacsStatusError) as info:
        find_studies(node, patient_id="X")
    assert info.value.status == 0xA900
    assert "C-FIND (STUDY) with status 0xA900" in str(info.value)
    assert "does not match" in str(info.value).lower()


def test_store_sends_nothing_when_a_sop_class_is_not_accepted(refusing_scp, tmp_path):
    from pydicom import dcmread

    from theradose.io.pacs import AssociationRejectedError

    node, accepted = refusing_scp
    files = _ct_files(tmp_path, 1)
    ds = dcmread(files[0])
    private_class = "1.2.826.0.1.3680043.10.9999.1"  # not a storage class the peer supports
    ds.SOPClassUID = private_class
    ds.file_meta.MediaStorageSOPClassUID = private_class
    ds.save_as(tmp_path / "private.dcm")
    with pytest.raises(AssociationRejectedError, match=f"SOP class {private_class} .*nothing was sent"):
        store(node, [files[0], tmp_path / "private.dcm"])
    assert accepted == []


def test_timepoints_toml_pairs_each_spect_with_its_ct(tmp_path):
    """Two SPECT/CT visits on one day (two studies) and a planar whole-body NM: two tables, each SPECT
    with the CT of its own study; the planar series (Image Type value 3 WHOLE BODY) is left out."""
    import tomllib

    from theradose.io.pacs import RetrievedSeries, Timepoint, timepoints_toml

    def series(name: str, modality: str, study: str, image_type: tuple[str, ...]) -> RetrievedSeries:
        return RetrievedSeries(
            series_uid=f"1.2.{len(name)}.{ord(name[-1])}",
            study_uid=study,
            modality=modality,
            folder=tmp_path / "in" / "20261102" / name,
            files=(),
            image_type=image_type,
        )

    tomo = ("ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION")
    day = Timepoint(
        study_date=date(2026, 11, 2),
        folder=tmp_path / "in" / "20261102",
        series=(
            series("ct_a", "CT", "1.1", ("ORIGINAL", "PRIMARY", "AXIAL")),
            series("wb_a", "NM", "1.1", ("ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION")),
            series("nm_a", "NM", "1.1", tomo),
            series("nm_b", "NM", "1.2", tomo),
            series("ct_b", "CT", "1.2", ("ORIGINAL", "PRIMARY", "AXIAL")),
        ),
    )
    tables = tomllib.loads(timepoints_toml([day], base_dir=tmp_path))["timepoints"]
    assert [(t["spect"], t["ct"]) for t in tables] == [
        ("in/20261102/nm_a", "in/20261102/ct_a"),
        ("in/20261102/nm_b", "in/20261102/ct_b"),
    ]
    ct_only = Timepoint(date(2026, 11, 3), tmp_path, (series("ct_c", "CT", "1.3", ()),))
    with pytest.raises(InputError, match="no time point has a SPECT series"):
        timepoints_toml([ct_only])
