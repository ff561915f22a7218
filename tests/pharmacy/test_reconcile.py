"""The rule that a dosimetry study is of the administration the service recorded (pure, no database)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from theradose.errors import InputError
from theradose.pharmacy.administration_record import AdministrationRecord
from theradose.pharmacy.reconcile import (
    AdministrationFacts,
    compare_administration,
    require_same_administration,
    same_product,
)

#: A fixed instant: only differences between two statements of it are compared (no clock involved).
INJECTED = datetime(2030, 1, 7, 9, 30, tzinfo=UTC)
RECORDED = AdministrationFacts(
    patient="PT-0123456789",
    cycle=2,
    radiopharmaceutical="[177Lu]Lu-PSMA-617",
    nuclide="Lu-177",
    activity_mbq=7202.0,
    injection_time=INJECTED,
)


def _stated(**changes: object) -> AdministrationFacts:
    fields = {
        "patient": RECORDED.patient,
        "cycle": RECORDED.cycle,
        "radiopharmaceutical": RECORDED.radiopharmaceutical,
        "nuclide": RECORDED.nuclide,
        "activity_mbq": RECORDED.activity_mbq,
        "injection_time": RECORDED.injection_time,
    } | changes
    return AdministrationFacts(**fields)  # type: ignore[arg-type]


def _compare(stated: AdministrationFacts) -> list[str]:
    return [
        m.field
        for m in compare_administration(
            stated,
            RECORDED,
            stated_name="doses.json",
            recorded_name="administration 3",
            patient_aliases=("MRN7",),
        )
    ]


def test_the_same_administration_passes() -> None:
    assert _compare(_stated()) == []


def test_activity_three_percent_apart_is_refused_and_0_9_percent_accepted() -> None:
    # 7202 MBq x 1.03 = 7418.06 MBq; x 1.009 = 7266.818 MBq (hand calculation)
    assert _compare(_stated(activity_mbq=7418.06)) == ["activity_mbq"]
    assert _compare(_stated(activity_mbq=7266.818)) == []
    assert _compare(_stated(activity_mbq=7202.0 * 0.991)) == []
    with pytest.raises(InputError) as err:
        require_same_administration(
            _stated(activity_mbq=7418.06),
            RECORDED,
            stated_name="doses.json",
            recorded_name="administration 3",
        )
    message = str(err.value)
    assert message.startswith("activity_mbq: ")
    assert "7418.06 MBq" in message and "7202 MBq" in message and "3.0 %" in message
    assert "\n" not in message


def test_injection_time_within_one_minute() -> None:
    assert _compare(_stated(injection_time=INJECTED + timedelta(seconds=59))) == []
    assert _compare(_stated(injection_time=INJECTED - timedelta(minutes=2))) == ["injection_time"]
    # the same instant written in another UTC offset is the same time
    cet = timezone(timedelta(hours=1))
    assert _compare(_stated(injection_time=INJECTED.astimezone(cet))) == []
    # the 2025-01-06 study imported as the 2026-12-07 cycle of the issue: refused, both times named
    found = compare_administration(
        _stated(injection_time=INJECTED - timedelta(days=700)),
        RECORDED,
        stated_name="doses.json",
        recorded_name="administration 3",
    )
    assert found[0].field == "injection_time"
    assert "2030-01-07T09:30:00Z" in found[0].message and "2028-02-07T09:30:00Z" in found[0].message


def test_radiopharmaceutical_by_registry_spelling() -> None:
    assert same_product("Pluvicto", "[177Lu]Lu-PSMA-617")
    assert same_product("177Lu-PSMA-617", "lutetium Lu 177 vipivotide tetraxetan")
    assert not same_product("[177Lu]Lu-DOTA-TATE", "[177Lu]Lu-PSMA-617")
    assert not same_product("Lutathera", "177Lu-PSMA-617")
    # a name no protocol lists matches only itself, never a registry product
    assert same_product("177Lu-NeoB", "177lu neob")
    assert not same_product("177Lu-NeoB", "177Lu-PSMA-617")
    assert _compare(_stated(radiopharmaceutical="Pluvicto")) == []
    assert _compare(_stated(radiopharmaceutical="Lutathera")) == ["radiopharmaceutical"]


def test_patient_cycle_and_nuclide() -> None:
    assert _compare(_stated(patient="MRN7")) == []  # the record number the images carry
    assert _compare(_stated(patient="PT-ZZZZZZZZZZ")) == ["patient"]
    assert _compare(_stated(cycle=1)) == ["cycle"]
    assert _compare(_stated(nuclide="177Lu")) == []
    assert _compare(_stated(nuclide="Y-90")) == ["nuclide"]
    # what a source leaves out is not compared
    assert _compare(AdministrationFacts(activity_mbq=7202.0)) == []


def test_every_field_is_listed_in_order() -> None:
    stated = _stated(cycle=1, activity_mbq=9000.0, injection_time=INJECTED + timedelta(hours=1))
    assert _compare(stated) == ["cycle", "injection_time", "activity_mbq"]


def test_naive_time_is_refused() -> None:
    with pytest.raises(InputError, match="time zone"):
        AdministrationFacts(injection_time=datetime(2030, 1, 7, 9, 30))


def test_record_round_trip_and_hash() -> None:
    record = AdministrationRecord(
        patient="PT-0123456789",
        cycle=2,
        radiopharmaceutical="[177Lu]Lu-PSMA-617",
        nuclide="Lu-177",
        activity_mbq=7202.25,
        injection_time=INJECTED,
        administration_id=3,
        prescription_id=4,
        dispensing_id=5,
        route="intravenous",
        event_uid="1.2.3",
        lot="L1",
        syringe_activity_mbq=7400.0,
        residual_activity_mbq=None,
    )
    data = record.to_dict()
    # the hash is that of the canonical JSON text (sorted keys, no spaces), computed here independently
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert record.sha256() == hashlib.sha256(text.encode()).hexdigest()
    wire = json.loads(json.dumps({**data, "record_sha256": record.sha256()}))
    assert AdministrationRecord.from_dict(wire) == record
    wire["activity_mbq"] = 7402.25
    with pytest.raises(InputError, match="record_sha256"):
        AdministrationRecord.from_dict(wire)
    with pytest.raises(InputError, match="not a theradose administration record"):
        AdministrationRecord.from_dict({"format": "other"})
