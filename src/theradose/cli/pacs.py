"""``theradose pacs``: verify, query, retrieve from and send to a PACS (DICOM networking)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from theradose.io.pacs import PacsNode

app = typer.Typer(
    help="PACS exchange: echo, find (C-FIND), get (C-GET/C-MOVE), send (C-STORE).", no_args_is_help=True
)

Host = Annotated[str, typer.Option("--host", help="PACS host name or IP address.")]
Port = Annotated[int, typer.Option("--port", help="PACS DICOM port.")]
Aet = Annotated[str, typer.Option("--aet", help="AE title of the PACS (called AE).")]
OurAet = Annotated[str, typer.Option("--our-aet", help="Our AE title (calling AE, C-MOVE destination).")]
Timeout = Annotated[float, typer.Option("--timeout-s", help="Time limit in s per network step.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def _node(host: str, port: int, aet: str) -> PacsNode:
    from theradose.io.pacs import PacsNode

    return PacsNode(host, port, aet)


def _date(value: str | None, name: str) -> date | None:
    from theradose.errors import InputError

    if value is None or value == "":
        return None
    for text in (value, f"{value[:4]}-{value[4:6]}-{value[6:]}" if len(value) == 8 else value):
        try:
            return date.fromisoformat(text)
        except ValueError:
            continue
    raise InputError(f"{name} {value!r} is not a date: write YYYY-MM-DD, e.g. 2026-11-02")


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


@app.command("echo")
def echo_command(
    host: Host = "127.0.0.1",
    port: Port = 4242,
    aet: Aet = "ORTHANC",
    our_aet: OurAet = "THERADOSE",
    timeout_s: Timeout = 30.0,
    json_output: JsonOutput = False,
) -> None:
    """Check that the PACS answers (C-ECHO)."""
    from theradose.cli._output import print_json, print_mapping
    from theradose.io.pacs import echo

    result = echo(_node(host, port, aet), calling_ae_title=our_aet, timeout_s=timeout_s)
    summary = {"node": str(result.node), "status": "success", "round_trip_s": round(result.round_trip_s, 4)}
    if json_output:
        print_json(summary)
    else:
        print_mapping("C-ECHO", summary)


@app.command("find")
def find_command(
    level: Annotated[str, typer.Option("--level", help="patient, study or series.")] = "study",
    patient_id: Annotated[str, typer.Option("--patient-id", help="Patient ID (wildcards * ?).")] = "",
    patient_name: Annotated[str, typer.Option("--patient-name", help="Family^Given (wildcards * ?).")] = "",
    study_uid: Annotated[str, typer.Option("--study-uid", help="Study Instance UID (series level).")] = "",
    date_from: Annotated[
        str | None, typer.Option("--date-from", help="First study date, YYYY-MM-DD.")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--date-to", help="Last study date, YYYY-MM-DD.")] = None,
    modality: Annotated[str, typer.Option("--modality", help="Modality, e.g. NM, CT, PT.")] = "",
    model: Annotated[str, typer.Option("--model", help="Query model: study or patient root.")] = "study",
    host: Host = "127.0.0.1",
    port: Port = 4242,
    aet: Aet = "ORTHANC",
    our_aet: OurAet = "THERADOSE",
    timeout_s: Timeout = 30.0,
    json_output: JsonOutput = False,
) -> None:
    """Query patients, studies or series (C-FIND)."""
    from theradose.cli._output import print_json, print_table
    from theradose.errors import InputError
    from theradose.io.pacs import find_patients, find_series, find_studies

    node = _node(host, port, aet)
    first, last = _date(date_from, "--date-from"), _date(date_to, "--date-to")
    if model not in ("study", "patient"):
        raise InputError(f"--model must be study or patient; got {model!r}")
    query_model: Any = model
    rows: list[dict[str, Any]]
    if level == "patient":
        patients = find_patients(
            node,
            patient_id=patient_id,
            patient_name=patient_name,
            calling_ae_title=our_aet,
            timeout_s=timeout_s,
        )
        rows = [
            {
                "patient_id": p.patient_id,
                "patient_name": p.patient_name,
                "birth_date": _iso(p.birth_date),
                "sex": p.sex,
                "n_studies": p.n_studies,
            }
            for p in patients
        ]
    elif level == "study":
        studies = find_studies(
            node,
            patient_id=patient_id,
            patient_name=patient_name,
            date_from=first,
            date_to=last,
            modality=modality,
            model=query_model,
            calling_ae_title=our_aet,
            timeout_s=timeout_s,
        )
        rows = [
            {
                "patient_id": s.patient_id,
                "patient_name": s.patient_name,
                "study_uid": s.study_uid,
                "study_date": _iso(s.study_date),
                "description": s.study_description,
                "modalities": list(s.modalities),
                "n_series": s.n_series,
            }
            for s in studies
        ]
    elif level == "series":
        series = find_series(
            node,
            study_uid=study_uid,
            patient_id=patient_id,
            patient_name=patient_name,
            date_from=first,
            date_to=last,
            modality=modality,
            model=query_model,
            calling_ae_title=our_aet,
            timeout_s=timeout_s,
        )
        rows = [
            {
                "patient_id": s.patient_id,
                "study_uid": s.study_uid,
                "study_date": _iso(s.study_date or s.series_date),
                "series_uid": s.series_uid,
                "modality": s.modality,
                "series_number": s.series_number,
                "description": s.series_description,
                "n_instances": s.n_instances,
            }
            for s in series
        ]
    else:
        raise InputError(f"--level must be patient, study or series; got {level!r}")
    if json_output:
        print_json(rows)
        return
    columns = list(rows[0]) if rows else ["matches"]
    print_table(f"C-FIND {level} on {node}: {len(rows)} matches", columns, [list(r.values()) for r in rows])


@app.command("get")
def get_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created; must be new or empty).")],
    series_uid: Annotated[str, typer.Option("--series-uid", help="Series to retrieve.")] = "",
    study_uid: Annotated[str, typer.Option("--study-uid", help="Study of --series-uid.")] = "",
    patient_id: Annotated[
        str, typer.Option("--patient-id", help="Without --series-uid: all NM/CT series of this patient.")
    ] = "",
    modality: Annotated[
        list[str] | None, typer.Option("--modality", help="Modalities for --patient-id (default NM and CT).")
    ] = None,
    method: Annotated[str, typer.Option("--method", help="get (C-GET) or move (C-MOVE).")] = "get",
    move_port: Annotated[
        int | None, typer.Option("--move-port", help="Port of our C-MOVE storage SCP (as known by the PACS).")
    ] = None,
    move_host: Annotated[
        str, typer.Option("--move-host", help="Address of our C-MOVE storage SCP.")
    ] = "127.0.0.1",
    host: Host = "127.0.0.1",
    port: Port = 4242,
    aet: Aet = "ORTHANC",
    our_aet: OurAet = "THERADOSE",
    timeout_s: Timeout = 30.0,
    json_output: JsonOutput = False,
) -> None:
    """Retrieve one series, or every NM/CT series of a patient grouped by study date (C-GET or C-MOVE)."""
    from theradose.cli._output import print_json, print_table
    from theradose.errors import InputError
    from theradose.io.pacs import retrieve_patient_timepoints, retrieve_series

    node = _node(host, port, aet)
    if method not in ("get", "move"):
        raise InputError(f"--method must be get or move; got {method!r}")
    if method == "move" and move_port is None:
        raise InputError(
            "--move-port is required with --method move: "
            "give the port the PACS has configured for our AE title"
        )
    how: Any = method
    rows: list[dict[str, Any]]
    if series_uid:
        if not study_uid:
            raise InputError("--study-uid is required with --series-uid: find it with 'theradose pacs find'")
        result = retrieve_series(
            node,
            series_uid,
            out,
            study_uid=study_uid,
            method=how,
            calling_ae_title=our_aet,
            timeout_s=timeout_s,
            move_host=move_host,
            move_port=move_port,
        )
        rows = [{"series_uid": result.series_uid, "folder": str(result.folder), "n_files": len(result.files)}]
    elif patient_id:
        timepoints = retrieve_patient_timepoints(
            node,
            patient_id,
            out,
            modalities=tuple(modality) if modality else ("NM", "CT"),
            method=how,
            calling_ae_title=our_aet,
            timeout_s=timeout_s,
            move_host=move_host,
            move_port=move_port,
        )
        rows = [
            {
                "study_date": _iso(tp.study_date),
                "series_uid": s.series_uid,
                "modality": s.modality,
                "folder": str(s.folder),
                "n_files": len(s.files),
            }
            for tp in timepoints
            for s in tp.series
        ]
    else:
        raise InputError("give --series-uid with --study-uid, or --patient-id: nothing to retrieve")
    if json_output:
        print_json(rows)
        return
    print_table(f"Retrieved from {node} into {out}", list(rows[0]), [list(r.values()) for r in rows])


@app.command("send")
def send_command(
    paths: Annotated[list[Path], typer.Argument(help="DICOM files or folders (searched recursively).")],
    host: Host = "127.0.0.1",
    port: Port = 4242,
    aet: Aet = "ORTHANC",
    our_aet: OurAet = "THERADOSE",
    timeout_s: Timeout = 30.0,
    json_output: JsonOutput = False,
) -> None:
    """Send DICOM files to the PACS (C-STORE): RT Dose, SEG, RRDSR, images."""
    from theradose.cli._output import print_json, print_table
    from theradose.io.pacs import store

    node = _node(host, port, aet)
    result = store(node, paths, calling_ae_title=our_aet, timeout_s=timeout_s)
    rows = [
        {
            "path": str(i.path),
            "sop_class_uid": i.sop_class_uid,
            "sop_instance_uid": i.sop_instance_uid,
            "status": f"0x{i.status:04X}",
        }
        for i in result.instances
    ]
    skipped = [{"path": str(path), "reason": reason} for path, reason in result.skipped]
    if json_output:
        print_json({"node": str(node), "n_stored": result.n_stored, "instances": rows, "skipped": skipped})
        return
    print_table(
        f"C-STORE to {node}: {result.n_stored} stored", list(rows[0]), [list(r.values()) for r in rows]
    )
    for item in skipped:
        typer.echo(f"left out {item['path']}: {item['reason']}", err=True)
