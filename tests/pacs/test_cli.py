"""``theradose pacs``: JSON contract, tables, exit code 2 with one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from theradose.cli import main

pytestmark = pytest.mark.orthanc

SRC = Path(__file__).resolve().parents[2] / "src"


def _address(orthanc) -> list[str]:
    node = orthanc.node
    return ["--host", node.host, "--port", str(node.port), "--aet", node.ae_title, "--our-aet", "THERADOSE"]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err


def test_echo_json_and_table(orthanc, capsys):
    code, out, _ = _run(["pacs", "echo", *_address(orthanc), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["node"] == str(orthanc.node) and data["status"] == "success"
    code, out, _ = _run(["pacs", "echo", *_address(orthanc)], capsys)
    assert code == 0 and "C-ECHO" in out and "success" in out


def test_find_levels_json(orthanc, seed_patient, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # a wide table: UIDs and descriptions are not wrapped
    seeded = seed_patient("TD-CLI")
    code, out, _ = _run(
        ["pacs", "find", "--level", "patient", "--patient-id", "TD-CLI", *_address(orthanc), "--json"], capsys
    )
    assert code == 0
    assert json.loads(out) == [
        {
            "patient_id": "TD-CLI",
            "patient_name": "Test^TD-CLI",
            "birth_date": None,
            "sex": "F",
            "n_studies": 2,
        }
    ]
    code, out, _ = _run(
        ["pacs", "find", "--patient-id", "TD-CLI", "--date-from", "2026-11-03", *_address(orthanc), "--json"],
        capsys,
    )
    assert code == 0
    assert [s["study_uid"] for s in json.loads(out)] == [seeded.timepoints[1].study_uid]
    code, out, _ = _run(
        [
            "pacs",
            "find",
            "--level",
            "series",
            "--patient-id",
            "TD-CLI",
            "--modality",
            "NM",
            *_address(orthanc),
            "--json",
        ],
        capsys,
    )
    rows = json.loads(out)
    code, table, _ = _run(
        ["pacs", "find", "--level", "series", "--patient-id", "TD-CLI", *_address(orthanc)], capsys
    )
    assert code == 0 and "4 matches" in table and "SPECT" in table
    assert [(r["modality"], r["n_instances"], r["study_date"]) for r in rows] == [
        ("NM", 1, "2026-11-02"),
        ("NM", 1, "2026-11-03"),
    ]


def test_get_and_send_json(orthanc, seed_patient, tmp_path, capsys):
    seeded = seed_patient("TD-CLI")
    tp = seeded.timepoints[0]
    series_uid = str(dcmread(tp.nm_file, stop_before_pixels=True).SeriesInstanceUID)
    code, out, _ = _run(
        [
            "pacs",
            "get",
            "--series-uid",
            series_uid,
            "--study-uid",
            tp.study_uid,
            "--out",
            str(tmp_path / "nm"),
            "--method",
            "move",
            "--move-port",
            str(orthanc.move_port),
            *_address(orthanc),
            "--json",
        ],
        capsys,
    )
    assert code == 0
    assert json.loads(out) == [{"series_uid": series_uid, "folder": str(tmp_path / "nm"), "n_files": 1}]

    code, out, _ = _run(
        [
            "pacs",
            "get",
            "--patient-id",
            "TD-CLI",
            "--modality",
            "CT",
            "--out",
            str(tmp_path / "all"),
            *_address(orthanc),
            "--json",
        ],
        capsys,
    )
    rows = json.loads(out)
    assert code == 0 and [(r["study_date"], r["modality"], r["n_files"]) for r in rows] == [
        ("2026-11-02", "CT", 8),
        ("2026-11-03", "CT", 8),
    ]

    code, out, _ = _run(["pacs", "send", str(tmp_path / "nm"), *_address(orthanc), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["n_stored"] == 1 and data["instances"][0]["status"] == "0x0000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["pacs", "echo", "--port", "PORT", "--json"],
            "cannot reach DICOM node ORTHANC@127.0.0.1:PORT (connection refused)",
        ),
        (["pacs", "echo", "--aet", "WRONG", "--json"], "error: WRONG@127.0.0.1:"),
        (
            ["pacs", "find", "--level", "instance", "--json"],
            "--level must be patient, study or series; got 'instance'",
        ),
        (["pacs", "find", "--date-from", "02/11/2026", "--json"], "--date-from '02/11/2026' is not a date"),
        (["pacs", "get", "--out", "OUT", "--series-uid", "1.2.3", "--json"], "--study-uid is required"),
        (["pacs", "send", "MISSING", "--json"], "does not exist"),
        (
            ["pacs", "get", "--out", "OUT", "--patient-id", "P", "--method", "move", "--json"],
            "--move-port is required",
        ),
    ],
)
def test_errors_exit_2_with_one_line(orthanc, tmp_path, args, message, capsys):
    port = str(_free_port())
    argv = [
        a.replace("PORT", port)
        .replace("OUT", str(tmp_path / "o"))
        .replace("MISSING", str(tmp_path / "m.dcm"))
        for a in args
    ]
    if "--port" not in argv:
        argv += ["--port", str(orthanc.node.port)]
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message.replace("PORT", port) in err


def test_subprocess_rejected_association_prints_no_traceback(orthanc):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "theradose",
            "pacs",
            "echo",
            "--port",
            str(orthanc.node.port),
            "--aet",
            "WRONG",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        result.stderr.startswith("error: WRONG@127.0.0.1:")
        and "Called AE title not recognised" in result.stderr
    )
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
