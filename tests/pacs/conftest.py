"""A real Orthanc PACS for the DICOM networking tests, started on loopback by the test setup.

``orthanc`` (session scope) writes a temporary configuration (storage in a temporary folder, free DICOM
and HTTP ports on 127.0.0.1, no remote access, no authentication, our AE title registered for C-MOVE),
starts ``Orthanc <config>``, waits for ``GET /system`` and stops the server at the end. It never uses the
system service of the Debian package nor its ports. Without the ``Orthanc`` binary the fixture fails
(install it with ``scripts/setup-system.sh``).

Building blocks for an end-to-end test (query → retrieve → pipeline → store → find)::

    def test_round_trip(orthanc, seed_patient, tmp_path):
        seeded = seed_patient("TD-E2E", volumes=[(ct_4h, spect_4h), (ct_24h, spect_24h), (ct_96h, spect_96h)])
        timepoints = retrieve_patient_timepoints(orthanc.node, "TD-E2E", tmp_path / "in")
        study = tmp_path / "study.toml"
        study.write_text(STUDY_HEADER + timepoints_toml(timepoints, base_dir=tmp_path))
        outputs = ...  # run the pipeline on ``study``: RT Dose / SEG / RRDSR files
        store(orthanc.node, outputs)
        sent = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in outputs}
        assert sent <= orthanc.sop_instance_uids("TD-E2E")
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clock import real_clock_env
from theradose.imaging.volume import Volume
from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, write_ct_series, write_nm_series
from theradose.io.pacs import PacsNode, store

ORTHANC_AET = "ORTHANC"
OUR_AET = "THERADOSE"
CET = timezone(timedelta(hours=1))
_START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class OrthancServer:
    """A running Orthanc: its DICOM node, REST base URL, and the port it sends C-MOVE results to."""

    node: PacsNode
    http_url: str
    move_port: int
    storage_dir: Path
    log_path: Path

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call Orthanc's REST API, independently of DIMSE; the JSON answer, or None when empty."""
        import httpx

        response = httpx.request(method, self.http_url + path, timeout=30.0, **kwargs)
        response.raise_for_status()
        return response.json() if response.content.strip() else None

    def find_instances(self, query: dict[str, str], level: str = "Instance") -> list[dict[str, Any]]:
        """``POST /tools/find`` at ``level`` with DICOM tag keywords as the query; expanded answers."""
        return list(self.rest("POST", "/tools/find", json={"Level": level, "Query": query, "Expand": True}))

    def sop_instance_uids(self, patient_id: str) -> set[str]:
        """SOP Instance UIDs Orthanc stores for ``patient_id`` (via REST)."""
        return {
            item["MainDicomTags"]["SOPInstanceUID"] for item in self.find_instances({"PatientID": patient_id})
        }


def _orthanc_config(tmp: Path, dicom_port: int, http_port: int, move_port: int) -> dict[str, Any]:
    return {
        "Name": "theradose-test",
        "StorageDirectory": str(tmp / "storage"),
        "IndexDirectory": str(tmp / "storage"),
        "StorageCompression": False,
        "Plugins": [],
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "SslEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": False,
        "DicomModalities": {"theradose": [OUR_AET, "127.0.0.1", move_port]},
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAssociationCloseDelay": 0,
        "DicomScpTimeout": 30,
        "DicomScuTimeout": 10,
        "UnknownSopClassAccepted": True,
        "SynchronousCMove": True,
        "StableAge": 1,
        "SaveJobs": False,
        "ConcurrentJobs": 1,
        "HttpDescribeErrors": True,
    }


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A fresh Orthanc on 127.0.0.1 for the whole test session (stopped at the end)."""
    import httpx

    executable = shutil.which("Orthanc")
    if executable is None:
        pytest.fail(
            "the Orthanc binary is not installed: run scripts/setup-system.sh as root "
            "(Debian: apt-get install orthanc)"
        )
    tmp = tmp_path_factory.mktemp("orthanc")
    dicom_port, http_port, move_port = free_port(), free_port(), free_port()
    while len({dicom_port, http_port, move_port}) < 3:
        http_port, move_port = free_port(), free_port()
    config_path = tmp / "orthanc.json"
    config_path.write_text(json.dumps(_orthanc_config(tmp, dicom_port, http_port, move_port), indent=2))
    log_path = tmp / "orthanc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [executable, str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env=real_clock_env(),  # Orthanc's threads busy-wait on a faked clock
        )
    http_url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + _START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"Orthanc exited with code {process.returncode} at start; "
                    f"log:\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(http_url + "/system", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Orthanc did not answer /system in {_START_TIMEOUT_S:g} s; "
                    f"log:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.1)
        yield OrthancServer(
            node=PacsNode("127.0.0.1", dicom_port, ORTHANC_AET),
            http_url=http_url,
            move_port=move_port,
            storage_dir=tmp / "storage",
            log_path=log_path,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass(frozen=True)
class SeededTimepoint:
    """Files of one imaging time point written locally and stored in Orthanc."""

    study_uid: str
    acquired: datetime
    ct_files: tuple[Path, ...]
    nm_file: Path
    ct_volume: Volume
    nm_volume: Volume


@dataclass(frozen=True)
class SeededPatient:
    patient_id: str
    patient: PatientInfo
    timepoints: tuple[SeededTimepoint, ...]


def _volumes(
    rng: np.random.Generator, acquired: datetime, shape: tuple[int, int, int]
) -> tuple[Volume, Volume]:
    ct = rng.integers(-1000, 1500, size=shape).astype(np.float64)
    nm = rng.uniform(0.0, 5.0e4, size=shape)
    from pydicom.uid import generate_uid

    frame = str(generate_uid())
    ct_volume = Volume.from_spacing(
        ct,
        spacing_mm=(4.0, 2.0, 2.0),
        origin_mm=(-32.0, -32.0, 0.0),
        unit="HU",
        frame_uid=frame,
        acquisition_datetime=acquired,
    )
    nm_volume = Volume.from_spacing(
        nm,
        spacing_mm=(4.0, 4.0, 4.0),
        origin_mm=(-32.0, -32.0, 0.0),
        unit="Bq/mL",
        frame_uid=frame,
        acquisition_datetime=acquired,
    )
    return ct_volume, nm_volume


@pytest.fixture(scope="session")
def seed_patient(
    orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., SeededPatient]:
    """Call ``seed_patient(patient_id, n_timepoints=2)``: writes a CT series and a quantitative NM
    (SPECT) series per time point with theradose's writers (one study per time point), stores them in
    Orthanc by C-STORE and returns what was written. By default small random volumes (8 slices of 16x16)
    acquired 4 h and 28 h after an injection on 2026-11-02 09:00 CET; pass ``volumes=[(ct_hu, nm_bqml),
    ...]`` (Volumes with ``acquisition_datetime`` set, e.g. from a virtual patient) and
    ``radiopharmaceutical=`` to seed a phantom for a pipeline run. Each patient ID is seeded once."""
    cache: dict[str, SeededPatient] = {}

    def seed(
        patient_id: str,
        *,
        n_timepoints: int = 2,
        volumes: Sequence[tuple[Volume, Volume]] | None = None,
        radiopharmaceutical: RadiopharmaceuticalInfo | None = None,
    ) -> SeededPatient:
        from pydicom.uid import generate_uid

        if patient_id in cache:
            return cache[patient_id]
        rng = np.random.default_rng(zlib.crc32(patient_id.encode()))
        root = tmp_path_factory.mktemp(f"seed_{patient_id}")
        patient = PatientInfo(name=f"Test^{patient_id}", patient_id=patient_id, sex="F", weight_kg=70.0)
        injection = datetime(2026, 11, 2, 9, 0, tzinfo=CET)
        radiopharmaceutical = radiopharmaceutical or RadiopharmaceuticalInfo(
            nuclide="177Lu",
            radiopharmaceutical="177Lu-PSMA-617",
            injected_activity_mbq=7400.0,
            injection_datetime=injection,
        )
        if volumes is None:
            volumes = [
                _volumes(rng, injection + timedelta(hours=4 + 24 * index), (8, 16, 16))
                for index in range(n_timepoints)
            ]
        timepoints = []
        for index, (ct_volume, nm_volume) in enumerate(volumes):
            acquired = nm_volume.acquisition_datetime
            assert acquired is not None, "seed_patient: the NM volume needs acquisition_datetime"
            study_uid = str(generate_uid())
            folder = root / f"tp{index}"
            ct_files = write_ct_series(
                ct_volume, folder / "ct", patient=patient, study_uid=study_uid, study_datetime=acquired
            )
            nm_file = write_nm_series(
                nm_volume,
                folder / "nm",
                patient=patient,
                radiopharmaceutical=radiopharmaceutical,
                study_uid=study_uid,
                study_datetime=acquired,
            )
            store(orthanc.node, [*ct_files, nm_file])
            timepoints.append(
                SeededTimepoint(study_uid, acquired, tuple(ct_files), nm_file, ct_volume, nm_volume)
            )
        seeded = SeededPatient(patient_id, patient, tuple(timepoints))
        cache[patient_id] = seeded
        return seeded

    return seed
