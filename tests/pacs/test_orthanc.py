"""DICOM networking against a real Orthanc PACS (started by the ``orthanc`` fixture on loopback).

What Orthanc holds is checked through its REST API, independently of the DIMSE client under test.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from theradose.imaging.volume import Volume
from theradose.io.dicom import read_series, write_rtdose
from theradose.io.pacs import (
    RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE,
    RT_DOSE_STORAGE,
    AssociationAbortedError,
    AssociationRejectedError,
    PacsNode,
    PacsStatusError,
    echo,
    find_patients,
    find_series,
    find_studies,
    retrieve_patient_timepoints,
    retrieve_series,
    store,
    timepoints_toml,
)

pytestmark = pytest.mark.orthanc


def _uids(paths: tuple[Path, ...] | list[Path]) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


def test_echo(orthanc):
    result = echo(orthanc.node)
    assert result.node == orthanc.node
    assert result.round_trip_s > 0


def test_store_then_orthanc_holds_the_instances(orthanc, seed_patient):
    seeded = seed_patient("TD-STORE")
    expected = set()
    for tp in seeded.timepoints:
        expected |= _uids([*tp.ct_files, tp.nm_file])
    assert len(expected) == 2 * (8 + 1)
    assert orthanc.sop_instance_uids("TD-STORE") == expected


def test_find_by_patient_id_patient_and_study_root(orthanc, seed_patient):
    seeded = seed_patient("TD-FIND")
    seed_patient("TD-OTHER")  # must not appear in the matches
    patients = find_patients(orthanc.node, patient_id="TD-FIND")
    assert [(p.patient_id, p.patient_name, p.sex, p.n_studies) for p in patients] == [
        ("TD-FIND", "Test^TD-FIND", "F", 2)
    ]
    assert {p.patient_id for p in find_patients(orthanc.node, patient_id="TD-*")} >= {"TD-FIND", "TD-OTHER"}

    for model in ("study", "patient"):
        studies = find_studies(orthanc.node, patient_id="TD-FIND", model=model)
        assert [s.study_uid for s in studies] == [tp.study_uid for tp in seeded.timepoints]
        # Acquisitions at 13:00 CET on 2 and 3 November 2026 (conftest: injection 09:00 + 4 h and + 28 h).
        assert [s.study_date for s in studies] == [date(2026, 11, 2), date(2026, 11, 3)]
        assert all(s.n_series == 2 for s in studies)
        assert all(sorted(s.modalities) == ["CT", "NM"] for s in studies)

    only_second = find_studies(orthanc.node, patient_id="TD-FIND", date_from=date(2026, 11, 3))
    assert [s.study_uid for s in only_second] == [seeded.timepoints[1].study_uid]

    series = find_series(orthanc.node, patient_id="TD-FIND")
    assert [(s.modality, s.n_instances) for s in series] == [("CT", 8), ("NM", 1), ("CT", 8), ("NM", 1)]
    nm = find_series(orthanc.node, patient_id="TD-FIND", modality="NM", model="patient")
    nm_uids = {
        str(dcmread(tp.nm_file, stop_before_pixels=True).SeriesInstanceUID) for tp in seeded.timepoints
    }
    assert {s.series_uid for s in nm} == nm_uids
    by_study = find_series(orthanc.node, study_uid=seeded.timepoints[0].study_uid)
    assert {s.modality for s in by_study} == {"CT", "NM"}


def _same_series(retrieved: tuple[Path, ...], originals: list[Path]) -> None:
    assert _uids(retrieved) == _uids(originals)
    by_uid = {str(dcmread(p).SOPInstanceUID): dcmread(p) for p in originals}
    for path in retrieved:
        ds = dcmread(path)
        assert ds.PixelData == by_uid[str(ds.SOPInstanceUID)].PixelData


@pytest.mark.parametrize(
    ("method", "model"), [("get", "study"), ("move", "study"), ("get", "patient"), ("move", "patient")]
)
def test_retrieve_series_matches_the_originals(orthanc, seed_patient, tmp_path, method, model):
    seeded = seed_patient("TD-RETRIEVE")
    tp = seeded.timepoints[0]
    ct_series_uid = str(dcmread(tp.ct_files[0], stop_before_pixels=True).SeriesInstanceUID)
    target = tmp_path / "ct"
    result = retrieve_series(
        orthanc.node,
        ct_series_uid,
        target,
        study_uid=tp.study_uid,
        patient_id=seeded.patient_id,
        method=method,
        model=model,
        move_port=orthanc.move_port,
    )
    assert result.method == method
    assert result.folder == target
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in result.files)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    # ordered by Instance Number like the originals (slice 0 first)
    assert [int(dcmread(p).InstanceNumber) for p in result.files] == list(range(1, 9))
    _same_series(result.files, list(tp.ct_files))
    volume = read_series(target)
    np.testing.assert_array_equal(volume.array, tp.ct_volume.array)  # integral HU stored unscaled


def test_c_move_to_a_free_port_registered_through_orthanc_rest(orthanc, seed_patient, tmp_path):
    """Our Storage SCP listens on a free port; ``on_listening`` tells Orthanc (PUT /modalities) before the
    C-MOVE request, so a destination unknown at Orthanc's start receives the series."""
    seeded = seed_patient("TD-RETRIEVE")
    tp = seeded.timepoints[1]
    series_uid = str(dcmread(tp.nm_file, stop_before_pixels=True).SeriesInstanceUID)
    ports: list[int] = []

    def register(host: str, port: int) -> None:
        ports.append(port)
        orthanc.rest("PUT", "/modalities/freeport", json={"AET": "TDFREEPORT", "Host": host, "Port": port})

    try:
        result = retrieve_series(
            orthanc.node,
            series_uid,
            tmp_path / "nm",
            study_uid=tp.study_uid,
            method="move",
            calling_ae_title="TDFREEPORT",
            on_listening=register,
        )
    finally:
        orthanc.rest("DELETE", "/modalities/freeport")
    assert len(ports) == 1 and ports[0] not in (orthanc.move_port, orthanc.node.port)
    _same_series(result.files, [tp.nm_file])


def test_retrieve_patient_timepoints_groups_by_study_date(orthanc, seed_patient, tmp_path):
    seeded = seed_patient("TD-TIMEPOINTS")
    timepoints = retrieve_patient_timepoints(orthanc.node, "TD-TIMEPOINTS", tmp_path / "in")
    assert [tp.study_date for tp in timepoints] == [date(2026, 11, 2), date(2026, 11, 3)]
    assert [tp.folder.name for tp in timepoints] == ["20261102", "20261103"]
    for got, want in zip(timepoints, seeded.timepoints, strict=True):
        assert sorted(s.modality for s in got.series) == ["CT", "NM"]
        nm = next(s for s in got.series if s.modality == "NM")
        assert nm.is_spect and nm.image_type == ("ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION")
        _same_series(nm.files, [want.nm_file])
        read_back = read_series(nm.folder)
        # 16-bit storage with slope = max / 65535 (write.py): error at most half a step
        step = float(want.nm_volume.array.max()) / 65535
        np.testing.assert_allclose(read_back.array, want.nm_volume.array, atol=step)
        assert read_back.unit == "Bq/mL"

    # the [[timepoints]] tables of a pipeline study file point at these folders
    study = tomllib.loads(timepoints_toml(timepoints, base_dir=tmp_path))
    nm_uids = [
        str(dcmread(tp.nm_file, stop_before_pixels=True).SeriesInstanceUID) for tp in seeded.timepoints
    ]
    ct_uids = [
        str(dcmread(tp.ct_files[0], stop_before_pixels=True).SeriesInstanceUID) for tp in seeded.timepoints
    ]
    assert [t["series_uid"] for t in study["timepoints"]] == nm_uids
    assert [t["ct_series_uid"] for t in study["timepoints"]] == ct_uids
    for table in study["timepoints"]:
        assert table["spect"].startswith("in/2026110")
        assert len(list((tmp_path / table["spect"]).glob("*.dcm"))) == 1
        assert len(list((tmp_path / table["ct"]).glob("*.dcm"))) == 8


def test_c_move_to_a_destination_orthanc_cannot_reach_names_the_status(orthanc, seed_patient, tmp_path):
    """Orthanc knows THERADOSE at ``orthanc.move_port``; a storage SCP listening elsewhere never receives
    anything, and Orthanc reports the failed sub-operations with a failure or warning status."""
    seeded = seed_patient("TD-RETRIEVE")
    tp = seeded.timepoints[0]
    series_uid = str(dcmread(tp.nm_file, stop_before_pixels=True).SeriesInstanceUID)
    with pytest.raises(PacsStatusError) as info:
        retrieve_series(orthanc.node, series_uid, tmp_path / "nm", study_uid=tp.study_uid, method="move")
    assert "C-MOVE" in str(info.value) and f"0x{info.value.status:04X}" in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "nm").exists()
    assert list(tmp_path.iterdir()) == []

    # a calling AE title Orthanc does not know as a destination: Orthanc aborts the association
    with pytest.raises(AssociationAbortedError) as aborted:
        retrieve_series(
            orthanc.node,
            series_uid,
            tmp_path / "nm",
            study_uid=tp.study_uid,
            method="move",
            calling_ae_title="NOBODY",
        )
    assert "check that the PACS knows AE title NOBODY as a C-MOVE destination" in str(aborted.value)
    assert list(tmp_path.iterdir()) == []


def test_wrong_called_ae_title_is_rejected(orthanc):
    node = PacsNode(orthanc.node.host, orthanc.node.port, "NOTORTHANC")
    with pytest.raises(
        AssociationRejectedError, match=r"rejected the association.*Called AE title not recognised"
    ):
        echo(node)


def test_retrieve_unknown_series_is_a_clear_error(orthanc, tmp_path):
    from theradose.io.pacs import PacsError

    for method in ("get", "move"):
        with pytest.raises(PacsError) as info:
            retrieve_series(
                orthanc.node,
                "1.2.3.4",
                tmp_path / "x",
                study_uid="1.2.3",
                method=method,
                move_port=orthanc.move_port,
            )
        message = str(info.value)
        assert "\n" not in message
        # Orthanc answers an unknown series with 0xC000; a PACS that answers success but sends nothing gets
        # "returned no instance"
        assert "0xC000" in message or "returned no instance of series 1.2.3.4" in message
        assert list(tmp_path.iterdir()) == []


# --- results back to the PACS -------------------------------------------------------------------------------
def _rt_dose(tmp_path: Path, seeded, index: int) -> tuple[Path, Volume]:
    """An RT Dose on the NM grid of time point ``index`` (theradose's writer), in that study."""
    tp = seeded.timepoints[index]
    dose = tp.nm_volume.with_array(tp.nm_volume.array * 1.0e-4, unit="Gy")
    path = write_rtdose(
        dose,
        tmp_path / "rtdose.dcm",
        patient=seeded.patient,
        study_uid=tp.study_uid,
        frame_uid=dose.frame_uid,
    )
    return path, dose


def _segmentation(tmp_path: Path, seeded) -> Path:
    """A binary SEG (highdicom) on the first CT time point: one segment, a 4x4 block in each slice."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    ct = [dcmread(p) for p in seeded.timepoints[0].ct_files]
    mask = np.zeros((len(ct), int(ct[0].Rows), int(ct[0].Columns)), dtype=bool)
    mask[:, 6:10, 6:10] = True
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="kidney",
        segmented_property_category=codes.SCT.Organ,
        segmented_property_type=codes.SCT.Kidney,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=ct,
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=90,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="theradose",
        manufacturer_model_name="theradose",
        software_versions="0.1",
        device_serial_number="0",
    )
    path = tmp_path / "seg.dcm"
    seg.save_as(path)
    return path


def _rrdsr(tmp_path: Path, seeded) -> Path:
    """The RRDSR of the administration (theradose's writer, TID 10021) in the first time point's study."""
    from theradose.service.rrdsr import AdministrationReport, build_rrdsr

    report = AdministrationReport(
        patient_id=seeded.patient_id,
        radiopharmaceutical="[177Lu]Lu-PSMA-617",
        nuclide="Lu-177",
        administered_activity_mbq=7400.0,
        injection_time=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        route="intravenous",
        event_uid=str(generate_uid()),
    )
    path = tmp_path / "rrdsr.dcm"
    build_rrdsr(report, study_uid=seeded.timepoints[0].study_uid).save_as(path, enforce_file_format=True)
    return path


def test_send_results_back_and_find_them_in_orthanc(orthanc, seed_patient, tmp_path):
    seeded = seed_patient("TD-RESULTS")
    dose_path, dose = _rt_dose(tmp_path, seeded, 1)
    files = [dose_path, _segmentation(tmp_path, seeded), _rrdsr(tmp_path, seeded)]
    result = store(orthanc.node, files)
    assert result.n_stored == 3
    assert [i.status for i in result.instances] == [0, 0, 0]
    sent = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in files}
    assert {i.sop_instance_uid for i in result.instances} == set(sent)

    stored = orthanc.find_instances({"PatientID": "TD-RESULTS"})
    by_uid = {item["MainDicomTags"]["SOPInstanceUID"]: item["ID"] for item in stored}
    assert set(sent) <= set(by_uid)
    classes = {orthanc.rest("GET", f"/instances/{by_uid[uid]}/tags?simplify")["SOPClassUID"] for uid in sent}
    assert classes == {
        RT_DOSE_STORAGE,
        "1.2.840.10008.5.1.4.1.1.66.4",
        RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE,
    }
    # the RT Dose went into the second time point's study, its dose grid intact
    dose_id = by_uid[str(dcmread(files[0], stop_before_pixels=True).SOPInstanceUID)]
    tags = orthanc.rest("GET", f"/instances/{dose_id}/tags?simplify")
    assert tags["StudyInstanceUID"] == seeded.timepoints[1].study_uid
    import httpx

    raw = httpx.get(f"{orthanc.http_url}/instances/{dose_id}/file", timeout=30.0).content
    (tmp_path / "back").mkdir()
    (tmp_path / "back" / "rtdose.dcm").write_bytes(raw)
    assert dcmread(tmp_path / "back" / "rtdose.dcm").PixelData == dcmread(files[0]).PixelData
    back = read_series(tmp_path / "back")
    assert back.unit == "Gy"
    # 32-bit storage with DoseGridScaling = max / (2**32 - 1) (write.py): error at most half a step
    np.testing.assert_allclose(back.array, dose.array, atol=float(dose.array.max()) / 4294967295)
    np.testing.assert_allclose(back.affine, dose.affine, atol=1e-6)

    # and the C-FIND client sees the new series in the study
    modalities = {s.modality for s in find_series(orthanc.node, study_uid=seeded.timepoints[0].study_uid)}
    assert modalities == {"CT", "NM", "SEG", "SR"}
