"""Identifier comparison keys (Unicode NFKC + case folding) and the physical ranges of records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from theradose.errors import InputError
from theradose.pharmacy.decay import remaining_activity_mbq
from theradose.pharmacy.identifiers import check_identifier, identifier_key, invisible_characters
from theradose.pharmacy.ranges import MAX_ACTIVITY_MBQ, MIN_ACTIVITY_MBQ

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("LOT-1", "lot-1"),  # case
        ("LOT-1", "\uff2c\uff2f\uff34\uff0d\uff11"),  # full-width forms (NFKC)
        ("Straße", "STRASSE"),  # full case folding (ß → ss)
        ("LOT\u200b-1", "LOT-1"),  # zero-width space
        ("A  B", "A B"),  # runs of white space
        ("\u212b", "\u00e5"),  # ANGSTROM SIGN and å are one letter (NFKC)
    ],
)
def test_identifiers_that_read_the_same_have_one_key(a: str, b: str) -> None:
    assert identifier_key(a) == identifier_key(b)


def test_different_identifiers_keep_different_keys() -> None:
    assert identifier_key("LOT-1") != identifier_key("LOT-l")
    assert identifier_key("A1") != identifier_key("A 1")


def test_key_is_stable() -> None:
    for text in ("ǅemal", "ﬃ", "ΣΑΣ", "İstanbul"):
        key = identifier_key(text)
        assert identifier_key(key) == key


def test_invisible_characters_are_named() -> None:
    assert invisible_characters("a\u200bb\u00adc\ufeff") == ["U+200B", "U+00AD", "U+FEFF"]
    with pytest.raises(InputError, match=r"^lot 'L\\u202e1' contains invisible characters \(U\+202E\)"):
        check_identifier("L\u202e1", "lot")
    assert check_identifier("  L1 ", "lot") == "L1"


def test_remaining_activity_of_old_records_reads_zero_never_fails() -> None:
    # Ga-68 (T½ = 67.71 min, ICRP 107): after 1 h half a half-life... computed independently
    one_hour = remaining_activity_mbq(1000.0, "Ga-68", from_time=T0, to_time=T0 + timedelta(hours=1))
    assert one_hour == pytest.approx(1000.0 * 0.5 ** (60.0 / 67.71), rel=1e-3)
    assert remaining_activity_mbq(1000.0, "Ga-68", from_time=T0, to_time=T0 + timedelta(days=60)) == 0.0
    assert remaining_activity_mbq(1000.0, "Ga-68", from_time=T0 + timedelta(days=60), to_time=T0) is None


def test_batch_activity_range() -> None:
    from theradose.pharmacy.batches import Batch

    for activity in (MIN_ACTIVITY_MBQ, MAX_ACTIVITY_MBQ):
        Batch("P", "Lu-177", "L", activity, 1.0, T0, T0 + timedelta(days=1))
    for activity in (5e-324, 1e-4, 2e6):
        with pytest.raises(InputError, match="activity_mbq must lie between"):
            Batch("P", "Lu-177", "L", activity, 1.0, T0, T0 + timedelta(days=1))
