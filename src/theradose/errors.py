"""Exception hierarchy.

Every error that bad *input* can cause is a :class:`TheradoseError`. Its message is one line that names
the field, the value and the fix, e.g.::

    InputError("time_h must be increasing; got [24.0, 4.0] at positions 0-1: sort the measurements")

The command-line interface turns a :class:`TheradoseError` into that line on standard error and exit
code 2, never a traceback.
"""

from __future__ import annotations


class TheradoseError(Exception):
    """Base class of all errors raised for bad input or unusable data."""


class InputError(TheradoseError, ValueError):
    """A value given by the user is invalid (wrong range, shape, unit or type)."""


class NuclideError(InputError):
    """A nuclide name is unknown or the nuclide lacks the data requested."""


class FitError(TheradoseError):
    """A time-activity fit failed or gave a non-physical result."""


class DicomError(TheradoseError):
    """A DICOM object cannot be read, understood or quantified."""


class GeometryError(InputError):
    """Volumes, grids or masks do not match in shape, spacing or frame of reference."""


class DataError(TheradoseError):
    """Shipped reference data is missing or malformed (an installation problem)."""


class ServiceError(TheradoseError):
    """A request to the traceability service cannot be carried out."""


__all__ = [
    "DataError",
    "DicomError",
    "FitError",
    "GeometryError",
    "InputError",
    "NuclideError",
    "ServiceError",
    "TheradoseError",
]
