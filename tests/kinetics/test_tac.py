"""TimeActivityCurve validation and CSV reading: one-line errors naming field, value and fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.kinetics import TimeActivityCurve, read_tac_csv


def test_valid_curve_is_read_only() -> None:
    tac = TimeActivityCurve(np.array([1.0, 24.0]), np.array([10.0, 5.0]), np.array([1.0, 0.5]))
    assert tac.n_points == 2
    with pytest.raises(ValueError):
        tac.time_h[0] = 3.0


@pytest.mark.parametrize(
    ("time_h", "activity_mbq", "sigma_mbq", "match"),
    [
        (
            [24.0, 4.0],
            [1.0, 2.0],
            None,
            r"time_h must be strictly increasing; got \[24.0, 4.0\] at positions 0-1",
        ),
        ([4.0, 4.0], [1.0, 2.0], None, "strictly increasing"),
        ([-1.0, 4.0], [1.0, 2.0], None, "time_h must be >= 0"),
        ([1.0, 4.0], [1.0, -2.0], None, r"activity_mbq must be >= 0; got -2.0 at time_h=4.0"),
        ([1.0, 4.0], [1.0], None, "activity_mbq has 1 values but time_h has 2"),
        ([1.0, 4.0], [1.0, 2.0], [1.0, 0.0], "sigma_mbq must be > 0; got 0.0"),
        ([1.0, 4.0], [1.0, 2.0], [1.0], "sigma_mbq has 1 values"),
        ([1.0, np.nan], [1.0, 2.0], None, "time_h must be finite"),
        ([], [], None, "time_h is empty"),
        ([[1.0, 2.0]], [[1.0, 2.0]], None, "one-dimensional"),
    ],
)
def test_invalid_curves_raise_one_line_input_errors(
    time_h: list[float], activity_mbq: list[float], sigma_mbq: list[float] | None, match: str
) -> None:
    with pytest.raises(InputError, match=match) as info:
        TimeActivityCurve(
            np.asarray(time_h), np.asarray(activity_mbq), None if sigma_mbq is None else np.asarray(sigma_mbq)
        )
    assert "\n" not in str(info.value)


def test_csv_with_sigma_in_any_column_order(tmp_path: Path) -> None:
    path = tmp_path / "tac.csv"
    path.write_text("sigma_mbq,activity_mbq,time_h,organ\n1.5,100,4,kidney\n\n0.5,50,24,kidney\n")
    tac = read_tac_csv(path)
    np.testing.assert_array_equal(tac.time_h, [4.0, 24.0])
    np.testing.assert_array_equal(tac.activity_mbq, [100.0, 50.0])
    assert tac.sigma_mbq is not None
    np.testing.assert_array_equal(tac.sigma_mbq, [1.5, 0.5])


def test_csv_without_sigma(tmp_path: Path) -> None:
    path = tmp_path / "tac.csv"
    path.write_text("time_h,activity_mbq\n4,100\n24,50\n")
    assert read_tac_csv(path).sigma_mbq is None


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("time_h,activity\n4,100\n", "no column 'activity_mbq'"),
        ("time_h,activity_mbq\n4,abc\n", "line 2: column activity_mbq has non-numeric value 'abc'"),
        ("time_h,activity_mbq\n4,\n", "line 2: column activity_mbq is empty"),
        ("time_h,activity_mbq\n4,inf\n", "write a finite number"),
        ("", "is empty"),
        ("time_h,activity_mbq\n", "no data rows"),
        ("time_h,activity_mbq\n24,100\n4,50\n", "strictly increasing"),
        ("time_h,activity_mbq\n4,-100\n", "activity_mbq must be >= 0"),
    ],
)
def test_bad_csv_raises_input_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "tac.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        read_tac_csv(path)


def test_missing_csv_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_tac_csv(tmp_path / "nope.csv")
