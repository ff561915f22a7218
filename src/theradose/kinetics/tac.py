"""Time–activity curves: measured activity of one region at several times after administration.

A :class:`TimeActivityCurve` is valid once constructed: times are finite, non-negative and strictly
increasing, activities are finite and non-negative, and per-point standard uncertainties (when given)
are finite and positive. Every violation raises :class:`~theradose.errors.InputError` with a one-line
message naming the field, the value and the fix.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError

FloatArray = npt.NDArray[np.float64]

#: CSV columns understood by :func:`read_tac_csv` (the last one is optional).
CSV_COLUMNS: tuple[str, str, str] = ("time_h", "activity_mbq", "sigma_mbq")


def _as_1d(values: npt.ArrayLike, name: str) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric; got {values!r}: pass a sequence of numbers") from exc
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional; got shape {array.shape}: pass a flat sequence")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{name} must be finite; got {array[i]} at position {i}: remove or fix that point")
    return array


@dataclass(frozen=True, eq=False)
class TimeActivityCurve:
    """Activity of one region measured at several times.

    Parameters
    ----------
    time_h : ndarray, shape (n,)
        Time after administration of each measurement, h; non-negative and strictly increasing.
    activity_mbq : ndarray, shape (n,)
        Activity in the region at each time, MBq; non-negative.
    sigma_mbq : ndarray, shape (n,), optional
        Standard uncertainty of each activity, MBq; positive. ``None`` means unknown (an unweighted fit
        then estimates the residual variance from the scatter).

    Raises
    ------
    InputError
        If any of the conditions above is violated.
    """

    time_h: FloatArray
    activity_mbq: FloatArray
    sigma_mbq: FloatArray | None = None

    def __post_init__(self) -> None:
        time_h = _as_1d(self.time_h, "time_h")
        activity_mbq = _as_1d(self.activity_mbq, "activity_mbq")
        if time_h.size == 0:
            raise InputError("time_h is empty: give at least one measurement")
        if activity_mbq.size != time_h.size:
            raise InputError(
                f"activity_mbq has {activity_mbq.size} values but time_h has {time_h.size}: "
                "give one activity per time point"
            )
        negative_time = np.flatnonzero(time_h < 0)
        if negative_time.size:
            i = int(negative_time[0])
            raise InputError(
                f"time_h must be >= 0 (hours after administration); got {time_h[i]} at position {i}: "
                "measure time from the administration"
            )
        steps = np.flatnonzero(np.diff(time_h) <= 0)
        if steps.size:
            i = int(steps[0])
            raise InputError(
                f"time_h must be strictly increasing; got [{time_h[i]}, {time_h[i + 1]}] at positions "
                f"{i}-{i + 1}: sort the measurements and merge duplicates"
            )
        negative = np.flatnonzero(activity_mbq < 0)
        if negative.size:
            i = int(negative[0])
            raise InputError(
                f"activity_mbq must be >= 0; got {activity_mbq[i]} at time_h={time_h[i]}: "
                "check background subtraction of that point"
            )
        sigma_mbq = None
        if self.sigma_mbq is not None:
            sigma_mbq = _as_1d(self.sigma_mbq, "sigma_mbq")
            if sigma_mbq.size != time_h.size:
                raise InputError(
                    f"sigma_mbq has {sigma_mbq.size} values but time_h has {time_h.size}: "
                    "give one uncertainty per time point"
                )
            nonpositive = np.flatnonzero(sigma_mbq <= 0)
            if nonpositive.size:
                i = int(nonpositive[0])
                raise InputError(
                    f"sigma_mbq must be > 0; got {sigma_mbq[i]} at time_h={time_h[i]}: "
                    "give a positive standard uncertainty or omit sigma_mbq"
                )
            sigma_mbq.setflags(write=False)
        time_h.setflags(write=False)
        activity_mbq.setflags(write=False)
        object.__setattr__(self, "time_h", time_h)
        object.__setattr__(self, "activity_mbq", activity_mbq)
        object.__setattr__(self, "sigma_mbq", sigma_mbq)

    @property
    def n_points(self) -> int:
        """Number of measurements."""
        return int(self.time_h.size)


def _parse_float(text: str, column: str, line: int, path: Path) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"{path.name} line {line}: column {column} has non-numeric value {text!r}: write a plain number"
        ) from None
    if not math.isfinite(value):
        raise InputError(f"{path.name} line {line}: column {column} is {text!r}: write a finite number")
    return value


def read_tac_csv(path: str | Path) -> TimeActivityCurve:
    """Read a time–activity curve from a CSV file with a header row.

    Parameters
    ----------
    path : str or Path
        CSV file with columns ``time_h``, ``activity_mbq`` and optionally ``sigma_mbq`` (any order;
        other columns are ignored). Empty lines are skipped.

    Returns
    -------
    TimeActivityCurve

    Raises
    ------
    InputError
        If the file cannot be read, a required column is missing, a value is not numeric, or the curve
        is invalid (see :class:`TimeActivityCurve`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"TAC file {str(path)!r} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"TAC file {str(path)!r} cannot be read ({exc}): give a UTF-8 CSV file") from None
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(
            f"TAC file {path.name} is empty: write a header line time_h,activity_mbq[,sigma_mbq]"
        )
    header = [cell.strip() for cell in rows[0]]
    for required in CSV_COLUMNS[:2]:
        if required not in header:
            raise InputError(
                f"{path.name} has no column {required!r} (header: {','.join(header)}): "
                "the header must be time_h,activity_mbq[,sigma_mbq]"
            )
    index = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    columns: dict[str, list[float]] = {name: [] for name in index}
    for line, row in enumerate(rows[1:], start=2):
        for name, i in index.items():
            if i >= len(row) or not row[i].strip():
                raise InputError(f"{path.name} line {line}: column {name} is empty: fill in a number")
            columns[name].append(_parse_float(row[i].strip(), name, line, path))
    if not columns["time_h"]:
        raise InputError(f"TAC file {path.name} has a header but no data rows: add the measurements")
    sigma = columns.get("sigma_mbq")
    return TimeActivityCurve(
        time_h=np.array(columns["time_h"]),
        activity_mbq=np.array(columns["activity_mbq"]),
        sigma_mbq=None if sigma is None else np.array(sigma),
    )
