"""DICOM in and out: CT, quantitative SPECT (NM) and PET series, RT Dose; series discovery.

Readers return :class:`theradose.imaging.volume.Volume`; writers take one.
"""

from __future__ import annotations

from theradose.io.dicom.info import PatientInfo, RadiopharmaceuticalInfo, SeriesInfo
from theradose.io.dicom.read import (
    FolderContents,
    UnreadableFile,
    discover_series,
    read_counts,
    read_radiopharmaceutical,
    read_series,
    scan_folder,
)
from theradose.io.dicom.write import write_ct_series, write_nm_series, write_pet_series, write_rtdose

__all__ = [
    "FolderContents",
    "PatientInfo",
    "RadiopharmaceuticalInfo",
    "SeriesInfo",
    "UnreadableFile",
    "discover_series",
    "read_counts",
    "read_radiopharmaceutical",
    "read_series",
    "scan_folder",
    "write_ct_series",
    "write_nm_series",
    "write_pet_series",
    "write_rtdose",
]
