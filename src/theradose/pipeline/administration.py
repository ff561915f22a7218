"""Where a study's administration comes from: the service's record, an RRDSR file, or the study file.

``theradose run --administration ID --service URL --token TOKEN`` reads the administration the service
recorded (``GET /administrations/{id}/record``, :func:`fetch_service_record`); ``--rrdsr FILE`` reads a
Radiopharmaceutical Radiation Dose SR (:func:`read_rrdsr_record`). The net activity, injection time,
radiopharmaceutical, nuclide, patient pseudonym and cycle of the study are then the record's
(:func:`apply_record`): the study file may leave them out, and where it states them they must agree
(:func:`theradose.pharmacy.reconcile.compare_administration`), else the run stops naming both values.
``provenance.json`` names the record and its SHA-256 (:meth:`RecordSource.provenance`).

Studies from elsewhere keep their typed-in values (no record).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from theradose.errors import InputError
from theradose.pharmacy.administration_record import AdministrationRecord
from theradose.pharmacy.reconcile import AdministrationFacts, compare_administration

#: Environment variable holding the service token when ``--token`` is not given.
TOKEN_ENV = "THERADOSE_TOKEN"
#: Seconds to wait for the service.
SERVICE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RecordSource:
    """An administration record and where it was read from.

    Attributes
    ----------
    record : AdministrationRecord
    source : {"service", "rrdsr"}
    location : str
        The service's base URL, or the RRDSR file's path.
    sha256 : str
        The service's ``record_sha256`` (checked against the content), or the SHA-256 of the RRDSR file.
    sop_instance_uid : str or None
        The RRDSR's SOP Instance UID.
    """

    record: AdministrationRecord
    source: str
    location: str
    sha256: str
    sop_instance_uid: str | None = None

    @property
    def label(self) -> str:
        """How messages name the record: ``administration 12 of http://host`` or ``RRDSR 1.2.3``."""
        if self.source == "service":
            return f"administration {self.record.administration_id} of {self.location}"
        return f"RRDSR {self.sop_instance_uid or self.location}"

    def provenance(self) -> dict[str, Any]:
        """What ``provenance.json`` says about the record (``administration_record``)."""
        out: dict[str, Any] = {"source": self.source, "sha256": self.sha256}
        if self.source == "service":
            out |= {"service": self.location, "administration_id": self.record.administration_id}
        else:
            out |= {"file": self.location, "sop_instance_uid": self.sop_instance_uid}
        return out | {"record": self.record.to_dict()}


def fetch_service_record(
    service_url: str, administration_id: int, token: str, *, timeout_s: float = SERVICE_TIMEOUT_S
) -> RecordSource:
    """Read ``GET {service_url}/administrations/{administration_id}/record`` with a bearer token.

    Raises
    ------
    InputError
        The service cannot be reached, refuses the token or the role, has no such administration, or
        answers something that is not an administration record. Messages never contain the token.
    """
    import urllib.error
    import urllib.request

    base = service_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InputError(f"--service {service_url!r} is not an http(s) URL: give e.g. http://127.0.0.1:8000")
    if not token:
        raise InputError(
            f"--token: no service token; log in (POST /auth/login) and pass it or set ${TOKEN_ENV}"
        )
    url = f"{base}/administrations/{administration_id}/record"
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        raise InputError(_refusal(exc.code, _error_message(exc.read()), administration_id, base)) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"--service {base}: cannot reach the service ({reason}): check the URL") from None
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"--service {base}: the answer is not JSON: is this a theradose service?") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("record_sha256"), str):
        raise InputError(f"--service {base}: the answer has no record_sha256: update the service")
    record = AdministrationRecord.from_dict(data, source=f"administration {administration_id} of {base}")
    if record.administration_id != administration_id:
        raise InputError(
            f"--administration {administration_id}: the service answered administration "
            f"{record.administration_id}: check the URL"
        )
    return RecordSource(record, "service", base, str(data["record_sha256"]))


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        return str(data["error"]["message"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return ""


def _refusal(status: int, message: str, administration_id: int, base: str) -> str:
    if status == 401:
        return (
            f"--token: {base} refused the token (401): log in again (POST /auth/login) and pass the new token"
        )
    if status == 403:
        return (
            f"--token: the user of this token may not read administrations on {base} (403): "
            "use the token of a clinical role"
        )
    if status == 404:
        return f"--administration {administration_id}: {base} has no administration {administration_id}"
    detail = f": {message}" if message else ""
    return f"--service {base}: the service answered {status}{detail}"


def read_rrdsr_record(path: str | Path) -> RecordSource:
    """Read the administration of an RRDSR file (patient ID, product, nuclide, activity, time); it names no
    cycle, so the study file must."""
    from theradose.errors import DicomError
    from theradose.service.rrdsr import read_rrdsr

    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"--rrdsr {str(file)!r}: cannot read ({exc.strerror}): check the path") from None
    try:
        report = read_rrdsr(data)
    except DicomError as exc:
        raise InputError(f"--rrdsr {file.name}: {exc}") from None
    record = AdministrationRecord(
        patient=report.patient_id or "",
        cycle=None,
        radiopharmaceutical=report.radiopharmaceutical,
        nuclide=_rrdsr_nuclide(report.nuclide),
        activity_mbq=report.administered_activity_mbq,
        injection_time=report.injection_time,
        route=report.route,
        event_uid=report.event_uid,
        lot=report.lot or "",
        syringe_activity_mbq=report.pre_activity_mbq,
        residual_activity_mbq=report.post_activity_mbq,
    )
    return RecordSource(
        record,
        "rrdsr",
        str(file.resolve()),
        hashlib.sha256(data).hexdigest(),
        sop_instance_uid=report.sop_instance_uid,
    )


def _rrdsr_nuclide(meaning: str) -> str:
    """A nuclide name from an RRDSR code meaning (``^177^Lutetium``, ``Lutetium-177``, ``Lu-177``)."""
    from theradose.nuclides import get_nuclide

    text = meaning.strip()
    parts = [p for p in text.replace("-", "^").split("^") if p]
    candidates = [text]
    if len(parts) == 2:
        number, name = (parts[0], parts[1]) if parts[0].isdigit() else (parts[1], parts[0])
        candidates += [f"{name}-{number}", f"{_element_symbol(name)}-{number}"]
    for candidate in candidates:
        try:
            return get_nuclide(candidate).name
        except InputError:
            continue
    raise InputError(f"--rrdsr: radionuclide {meaning!r} is not a nuclide theradose knows")


def _element_symbol(name: str) -> str:
    """``Lutetium`` → ``Lu`` (element names and symbols of xraydb); the name itself when unknown."""
    import xraydb

    try:
        return str(xraydb.atomic_symbol(xraydb.atomic_number(name)))
    except (ValueError, KeyError, TypeError):
        return name


def token_from_environment(token: str | None) -> str:
    """The token given, else ``$THERADOSE_TOKEN`` (empty when neither)."""
    return token if token else os.environ.get(TOKEN_ENV, "")


# ------------------------------------------------------------------------------------------ the study file
def apply_record(data: Mapping[str, Any], source: RecordSource) -> dict[str, Any]:
    """The study file's data with the administration, patient and cycle of the record.

    Where the study file states a value the record also gives, they must agree (same product, nuclide and
    patient; injection time within 1 min; activity within 1 %); the first disagreement stops the run,
    naming the study file's value and the record's. Values the study file has and the record lacks (the
    patient's name, sex and weight; syringe readings) are kept. An RRDSR names no cycle: the study file
    must give ``cycle``.
    """
    record = source.record
    out = dict(data)
    patient = dict(_table(data, "patient"))
    administration = dict(_table(data, "administration"))
    stated = AdministrationFacts(
        patient=_text(patient, "id", "patient"),
        cycle=_cycle(data.get("cycle")),
        radiopharmaceutical=_text(administration, "radiopharmaceutical", "administration"),
        nuclide=_text(administration, "nuclide", "administration"),
        activity_mbq=_positive(administration, "activity_mbq", "administration"),
        injection_time=_aware(administration, "datetime", "administration"),
    )
    found = compare_administration(
        stated, record.facts(), stated_name="the study file", recorded_name=source.label
    )
    if found:
        raise InputError(found[0].message.replace("check the study or the record", "correct the study file"))
    cycle = record.cycle if record.cycle is not None else data.get("cycle")
    if cycle is None:
        raise InputError(f"cycle: {source.label} names no therapy cycle: add cycle = N to the study file")
    out["cycle"] = cycle
    patient["id"] = record.patient
    out["patient"] = patient
    administration.update(
        nuclide=record.nuclide,
        radiopharmaceutical=record.radiopharmaceutical,
        activity_mbq=record.activity_mbq,
        datetime=record.injection_time,
    )
    out["administration"] = administration
    return out


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise InputError(f"'{key}' must be a table [{key}]; got {value!r}")
    return value


def _text(table: Mapping[str, Any], key: str, section: str) -> str | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{section}.{key} must be a non-empty string; got {value!r}")
    return value.strip()


def _cycle(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"cycle must be a whole number >= 1; got {value!r}")
    return value


def _positive(table: Mapping[str, Any], key: str, section: str) -> float | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{section}.{key} must be a number > 0; got {value!r}")
    return float(value)


def _aware(table: Mapping[str, Any], key: str, section: str) -> datetime | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"{section}.{key} = {value!r} is not an ISO date-time") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InputError(f"{section}.{key} = {value!r} needs a date-time with its UTC offset")
    return value


__all__ = [
    "TOKEN_ENV",
    "RecordSource",
    "apply_record",
    "fetch_service_record",
    "read_rrdsr_record",
    "token_from_environment",
]
