"""The pure workflow rules: directive plausibility, two identifiers, administration times, four-eyes,
calibrator blocking and decay-in-storage eligibility (values checked by hand against their sources)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from theradose.errors import InputError
from theradose.pharmacy.administration import IdentityMismatch, check_times, confirm_identity
from theradose.pharmacy.calibrators import CheckRecord, blocking_check
from theradose.pharmacy.directives import check_plausibility, not_dispensable_reason
from theradose.pharmacy.signatures import four_eyes_conflict
from theradose.pharmacy.waste import decay_in_storage_eligibility, nuclide_mix
from theradose.planning.protocols import load_protocol
from theradose.products import get_product

# calendar: the dates in this file are data
T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def test_product_registry_resolves_aliases_and_refuses_unknown_names() -> None:
    assert get_product("Pluvicto").code == get_product("177Lu-PSMA-617").code == "lu177-psma-617"
    assert get_product("lutetium Lu 177 dotatate").code == get_product("[177Lu]Lu-DOTATATE").code
    with pytest.raises(InputError, match="Pluvicto"):
        get_product("[177Lu]Lu-PSMA-I&T")


def test_plausibility_against_the_protocol_range() -> None:
    psma = load_protocol("psma")  # PLUVICTO label: 7.4 GBq, 5.92-8.14 GBq
    assert check_plausibility(8140.0, psma).within_range
    outside = check_plausibility(9000.0, psma)
    assert not outside.within_range and not outside.implausible and "5920-8140" in outside.message
    assert check_plausibility(74000.0, psma).implausible  # > 2 x 8140 = 16280 MBq
    assert not check_plausibility(16280.0, psma).implausible
    assert not_dispensable_reason("draft", signature_valid=False) is not None
    assert not_dispensable_reason("signed", signature_valid=False) is not None
    assert not_dispensable_reason("signed", signature_valid=True) is None


def test_two_identifiers() -> None:
    expected = {"mrn": "A-17", "birth_date": "1951-04-02", "family_name": "Adler"}
    assert confirm_identity(expected, {"mrn": " a-17 ", "birth_date": "1951-04-02"}) == ("birth_date", "mrn")
    with pytest.raises(IdentityMismatch, match="confirm_mrn"):
        confirm_identity(expected, {"mrn": "B-17", "birth_date": "1951-04-02"})
    with pytest.raises(IdentityMismatch, match="1 given"):
        confirm_identity(expected, {"mrn": "A-17", "birth_date": ""})


def test_administration_times() -> None:
    check_times(syringe_measured_at=T0, injection_time=T0, residual_measured_at=T0, now=T0)
    with pytest.raises(InputError, match=r"injection_time .* in the future"):
        check_times(
            syringe_measured_at=T0,
            injection_time=T0 + timedelta(minutes=3),
            residual_measured_at=None,
            now=T0,
        )
    with pytest.raises(InputError, match="before the dose was dispensed"):
        check_times(
            syringe_measured_at=T0,
            injection_time=T0,
            residual_measured_at=None,
            now=T0 + timedelta(hours=1),
            dispensed_at=T0 + timedelta(minutes=5),
        )


def test_four_eyes() -> None:
    assert four_eyes_conflict("ann", "released", [("ann", "qc_recorded")]) is not None
    assert four_eyes_conflict("bob", "released", [("ann", "qc_recorded")]) is None
    assert four_eyes_conflict("ann", "checked", [("ann", "prepared")]) is not None
    assert four_eyes_conflict("ann", "approved", [("ann", "prepared")]) is None


def test_a_failed_constancy_check_blocks_until_a_passing_one() -> None:
    fail = CheckRecord("constancy", False, T0)
    assert blocking_check([CheckRecord("constancy", True, T0 - timedelta(days=1)), fail]) == fail
    assert blocking_check([fail, CheckRecord("constancy", True, T0 + timedelta(hours=1))]) is None
    assert blocking_check([CheckRecord("constancy", False, T0, voided=True)]) is None
    assert blocking_check([fail, CheckRecord("accuracy", True, T0 + timedelta(hours=1))]) == fail


def test_decay_in_storage_keeps_out_177mlu() -> None:
    # ICRP 107: 177Lu 6.647 d (eligible, <= 120 d); 177mLu 160.4 d (not eligible under 10 CFR 35.92)
    assert decay_in_storage_eligibility(["Lu-177"]).eligible
    mix = nuclide_mix(["Lu177"], carrier_added_lu177=True)
    assert mix == ("Lu-177", "Lu-177m")
    result = decay_in_storage_eligibility(mix)
    assert not result.eligible and "160.4 d" in result.message
