"""Quantitative images: :class:`~theradose.imaging.volume.Volume` (array + LPS geometry + unit).

Array axis order is (slice, row, column); see :mod:`theradose.imaging.volume`.
"""

from __future__ import annotations

from theradose.imaging.volume import AXIS_ORDER, UNITS, Unit, Volume

__all__ = ["AXIS_ORDER", "UNITS", "Unit", "Volume"]
