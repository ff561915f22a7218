"""DICOM Structured Report (TID 1500 Measurement Report) of a PET read, built with highdicom.

One measurement group (TID 1501) per lesion, tracked by its ``lesion_id``, with SUVbw max / peak / mean
(DCM 126401 "SUVbw" with derivation Maximum / Peak Value Within ROI / Mean), volume, short and long axis,
and the lesion categories as qualitative evaluations. The categories of the reading frameworks have no
standard codes: they use the local coding scheme ``99THERADOSE`` (DICOM PS3.16 8.2: private coding
schemes start with "99").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from theradose.errors import DicomError, InputError
from theradose.reading.criteria import Decision
from theradose.reading.lesions import Lesion, LesionTable

if TYPE_CHECKING:
    from pydicom import Dataset

LOCAL_SCHEME = "99THERADOSE"

_EVIDENCE_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def _measurements(lesion: Lesion) -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    suv_bw = hd.sr.CodedConcept("126401", "DCM", "SUVbw")
    suv_unit = codes.UCUM.StandardizedUptakeValueBodyWeight
    mm = codes.UCUM.Millimeter
    ml = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
    out: list[Any] = []
    for value, derivation in (
        (lesion.suv_max, codes.SCT.Maximum),
        (lesion.suv_peak, codes.DCM.PeakValueWithinROI),
        (lesion.suv_mean, codes.SCT.Mean),
    ):
        if value is not None:
            out.append(hd.sr.Measurement(name=suv_bw, value=value, unit=suv_unit, derivation=derivation))
    for value, name, unit in (
        (lesion.volume_ml, codes.SCT.Volume, ml),
        (lesion.short_axis_mm, codes.SCT.ShortAxis, mm),
        (lesion.long_axis_mm, codes.SCT.LongAxis, mm),
    ):
        if value is not None:
            out.append(hd.sr.Measurement(name=name, value=value, unit=unit))
    return out


#: Attributes that say how a patient's identity was removed (PS3.3 C.7.1.1, Type 1C with Patient
#: Identity Removed = YES: at least one of the method and the method code sequence).
_DEIDENTIFICATION = ("DeidentificationMethod", "DeidentificationMethodCodeSequence")


def _identity_removed_with_method(sr: Any, evidence: Any) -> None:
    """Patient Identity Removed = YES only together with the de-identification method.

    The SR copies the Patient module of its evidence. A YES there without the method (a Type 1C
    violation) is not repeated: the method is copied when the evidence names it, otherwise the SR states
    nothing about identity removal.
    """
    if str(getattr(sr, "PatientIdentityRemoved", "")).upper() != "YES":
        return
    present = [keyword for keyword in _DEIDENTIFICATION if keyword in evidence and evidence[keyword].value]
    if present:
        for keyword in present:
            sr[keyword] = evidence[keyword]
        return
    del sr.PatientIdentityRemoved
    for keyword in _DEIDENTIFICATION:
        if keyword in sr:
            del sr[keyword]


def measurement_report(
    table: LesionTable,
    evidence: Sequence[Dataset],
    *,
    decisions: Sequence[Decision] = (),
    series_number: int = 900,
    manufacturer: str = "theradose",
) -> Dataset:
    """A Comprehensive 3D SR (TID 1500) with one measurement group per lesion.

    Parameters
    ----------
    table : LesionTable
        Lesions to report (reference rows are not reported).
    evidence : sequence of pydicom.Dataset
        The PET images read (headers suffice): patient, study and the evidence sequence come from them.
    decisions : sequence of Decision
        Lesion categories (from :mod:`theradose.reading.criteria`) added as qualitative evaluations.

    Returns
    -------
    pydicom.Dataset
        The SR instance (``save_as`` writes it).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    if not evidence:
        raise InputError("evidence is empty: the SR needs the PET images that were read")
    for keyword in _EVIDENCE_ATTRIBUTES:
        if keyword not in evidence[0]:
            raise DicomError(
                f"missing {keyword} in the PET header: the SR copies patient and study attributes from it"
            )
    if not table.lesions:
        raise InputError(f"{table.source or 'the lesion table'} has no lesion rows: nothing to report")
    by_lesion: dict[str, list[Decision]] = {}
    for d in decisions:
        by_lesion.setdefault(d.lesion_id, []).append(d)
    groups = []
    for lesion in table.lesions:
        evaluations = [
            hd.sr.QualitativeEvaluation(
                name=hd.sr.CodedConcept(d.citation_key[:16], LOCAL_SCHEME, f"{d.framework} category"[:64]),
                value=hd.sr.CodedConcept(d.category[:16], LOCAL_SCHEME, d.category[:64]),
            )
            for d in by_lesion.get(lesion.lesion_id, [])
        ]
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=lesion.lesion_id),
                finding_type=codes.SCT.Lesion,
                measurements=_measurements(lesion) or None,
                qualitative_evaluations=evaluations or None,
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=manufacturer
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=list(evidence),
        content=report,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=manufacturer,
    )
    _identity_removed_with_method(sr, evidence[0])
    if decisions:
        from pydicom import Dataset as PlainDataset
        from pydicom.sequence import Sequence as DicomSequence

        scheme = PlainDataset()
        scheme.CodingSchemeDesignator = LOCAL_SCHEME
        scheme.CodingSchemeName = "theradose PET reading framework categories"
        scheme.CodingSchemeResponsibleOrganization = "theradose developers"
        existing: list[PlainDataset] = list(getattr(sr, "CodingSchemeIdentificationSequence", []))
        sr.CodingSchemeIdentificationSequence = DicomSequence([*existing, scheme])  # type: ignore[assignment]
    dataset: Dataset = sr
    return dataset
