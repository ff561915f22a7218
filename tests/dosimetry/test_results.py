"""The study dose record: validity, JSON round trip, the published schema, the upgrades of versions 1 and 2,
the uncertainty budget of the reference dose, the kinetics record and the calibration."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema_rs
import numpy as np
import pytest

from theradose.dosimetry.dvh import Dvh, mean_dose_gy
from theradose.dosimetry.engines.registry import engine_names
from theradose.dosimetry.results import (
    DOSES_VERSION,
    Administration,
    Bed,
    Calibration,
    EngineDose,
    KineticsRecord,
    Patient,
    RegionKind,
    RegionResult,
    StudyDoses,
    doses_schema,
    read_doses,
    round_sig,
)
from theradose.dosimetry.uncertainty_budget import BudgetInputs, propagate_budget
from theradose.errors import InputError

#: doses.json written by theradose before the dose record (version 1): the demo's virtual patient, as
#: written by ``theradose demo`` of the main branch (29 regions, engines local and vsv).
V1_DEMO = Path(__file__).parent / "data" / "doses_v1_demo.json"


#: BED of 4.1 Gy with T_eff 40 h, α/β 2.6 Gy, T_rep 2.8 h by hand (Dale 1985):
#: G = (ln2/40)/(ln2/40 + ln2/2.8) = 2.8/42.8; BED = 4.1 (1 + 4.1 · G/2.6) = 4.52297 Gy.
KIDNEY_BED_GY = round(4.1 * (1 + 4.1 * (2.8 / 42.8) / 2.6), 5)


def _budget(sigma_rel: float = 0.21 / 4.1) -> object:
    return propagate_budget(
        BudgetInputs(
            region="kidneys",
            dose_gy=4.1,
            calibration_rel_sigma=0.03,
            fit_tia_rel_sigma=(sigma_rel**2 - 0.03**2) ** 0.5,
            effective_half_life_h=40.0,
            fit_half_life_rel_sigma=0.02,
            alpha_beta_gy=2.6,
            repair_half_time_h=2.8,
            sources={"calibration": "QA record"},
        )
    ).rounded()


KINETICS = KineticsRecord(
    method="fit",
    model="mono",
    flags=("goodness_of_fit_failed",),
    notes=("chi-square test failed",),
    selection_criterion="AIC",
    chi_square=12.5,
    dof=2,
    p_value=0.00193,
    tia_sigma_scaled_mbq_h=250.0,
    parameters={"A1": 100.0, "lambda1": 0.0173},
    covariance=((4.0, 0.001), (0.001, 1e-6)),
    decay_constant_per_h=0.00434,
    effective_half_life_sigma_h=1.2,
    time_h=(4.0, 24.0),
    activity_mbq=(93.0, 66.0),
    sigma_mbq=(4.65, 3.3),
)


def _record(**changes: object) -> StudyDoses:
    kidneys = RegionResult(
        "kidneys",
        RegionKind.ORGAN,
        (
            EngineDose("local", 4.0, 0.2, "local", Dvh((0.0, 4.0, 8.0), (1.0, 0.5, 0.0))),
            EngineDose("organ", 4.1, 0.21, "MIRD"),
        ),
        mass_g=300.0,
        effective_half_life_h=40.0,
        organ="kidneys",
        tissue="kidney",
        bed=Bed(KIDNEY_BED_GY, 4.1, "organ", "kidney", 2.6, 2.8, 40.0, "Barone 2005"),
        uncertainty=_budget(),  # type: ignore[arg-type]
        kinetics=KINETICS,
        flags=("below_resolution",),
    )
    tumour = RegionResult("tumour_1", RegionKind.TUMOUR, (EngineDose("local", 30.0, None),))
    fields: dict[str, object] = {
        "patient": Patient("P-1", "Doe^Jane"),
        "cycle": 2,
        "administration": Administration(
            "Lu-177", "[177Lu]Lu-PSMA-617", 7400.0, datetime(2030, 3, 4, 9, 30, tzinfo=UTC)
        ),
        "reference_dose": "organ",
        "engines": ("local",),
        "regions": (kidneys, tumour),
        "timepoints_h": (4.0, 24.0),
        "calibration": Calibration(
            "bqml", 5.67, 0.11, datetime(2030, 2, 25, 8, 0, tzinfo=UTC), "camera A", "qa.json (SHA-256 ab)"
        ),
        "site_time_zone": "Europe/Berlin",
        "provenance": {"software": "theradose 0", "inputs_sha256": "00", "input_files": 3},
    }
    fields.update(changes)
    return StudyDoses(**fields)  # type: ignore[arg-type]


def test_json_round_trip_is_exact_and_validates_against_the_published_schema() -> None:
    record = _record()
    text = record.to_json()
    again = StudyDoses.from_json(text)
    assert again == record
    assert again.to_json() == text
    data = json.loads(text)
    jsonschema_rs.validate(doses_schema(), data)
    assert data["version"] == DOSES_VERSION
    kidneys = data["regions"][0]
    # the region's dose is named, and per GBq by hand: 4.1 Gy / 7.4 GBq = 0.554054
    assert kidneys["dose"] == {
        "source": "organ",
        "dose_gy": 4.1,
        "dose_sigma_gy": 0.21,
        "dose_gy_per_gbq": 0.554054,
    }
    assert kidneys["bed"]["dose_gy"] == kidneys["dose"]["dose_gy"]


def test_the_schema_lists_the_engines_of_the_registry() -> None:
    items = doses_schema()["properties"]["engines"]["items"]["enum"]
    assert tuple(items) == engine_names()


def test_rows_show_the_reference_dose_and_only_its_bed() -> None:
    record = _record()
    kidneys = record.row("kidneys")
    assert (kidneys.source, kidneys.dose_gy, kidneys.bed_gy) == ("organ", 4.1, KIDNEY_BED_GY)
    budget = record.region("kidneys").uncertainty
    assert budget is not None and kidneys.bed_sigma_gy == budget.bed_sigma_gy
    assert kidneys.dominant == budget.dominant and kidneys.flags == (
        "below_resolution",
        "goodness_of_fit_failed",
    )
    local = record.row("kidneys", source="local")
    assert (local.dose_gy, local.bed_gy) == (4.0, None)  # no BED next to a dose it was not computed from
    assert record.row("tumour_1").dose_gy is None  # no organ-level dose: none, and no stand-in
    with pytest.raises(InputError, match="dose source 'mc' is not in this study"):
        record.row("kidneys", source="mc")
    with pytest.raises(InputError, match="region 'liver' is not in the dose record: use one of kidneys"):
        record.region("liver")


def test_bed_must_come_from_the_reference_dose() -> None:
    with pytest.raises(InputError, match=r"BED of region 'kidneys' is computed from organ 4\.1 Gy"):
        _record(reference_dose="local")


def test_the_reference_must_be_a_dose_of_the_study() -> None:
    with pytest.raises(
        InputError, match="reference_dose 'vsv' is not a dose of this study: use one of organ"
    ):
        _record(reference_dose="vsv")


def test_a_hand_edited_dose_is_refused(tmp_path: Path) -> None:
    data = json.loads(_record().to_json())
    data["regions"][0]["dose"]["dose_gy"] = 3.0
    with pytest.raises(InputError, match=r"regions\[0\].dose .* is not the region's organ dose"):
        StudyDoses.from_dict(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something"}, "is not a theradose dose record"),
        ({"version": 9}, "has doses version 9; this theradose reads versions 1 to 3"),
        ({"site_time_zone": "Mars/Olympus"}, "is not an IANA time zone"),
        ({"cycle": "one"}, "cycle must be a whole number"),
        ({"administration": {"nuclide": "Lu-177"}}, "administration.datetime"),
        ({"engines": ["local", "lokal"]}, "engines entry 'lokal' is not a dose engine"),
    ],
)
def test_bad_records_are_refused_with_the_field_named(change: dict[str, object], message: str) -> None:
    data = {**json.loads(_record().to_json()), **change}
    with pytest.raises(InputError, match=message) as info:
        StudyDoses.from_dict(data, source="x.json")
    assert "\n" not in str(info.value)


def test_a_cumulative_dvh_cannot_increase() -> None:
    with pytest.raises(InputError, match="cannot increase"):
        Dvh((0.0, 1.0), (0.5, 1.0))
    with pytest.raises(InputError, match="as many fractions as doses"):
        Dvh((0.0, 1.0, 2.0), (1.0, 0.0))


def test_version_1_written_by_the_previous_code_is_upgraded() -> None:
    """The v1 demo file: 'kidneys' local 4.30589 Gy, BED 4.72623 Gy computed from it; the upgrade names the
    local engine as the reference (the dose v1's report showed and its BED used) and records the kidney
    parameters (α/β 2.6 Gy, T_rep 2.8 h)."""
    raw = json.loads(V1_DEMO.read_text(encoding="utf-8"))
    assert raw["version"] == 1 and "bed_gy" in raw["regions"][0]
    record = read_doses(V1_DEMO)
    assert record.upgraded_from == 1
    assert record.reference_dose == "local" and record.engines == ("local", "vsv")
    kidneys = record.region("kidneys")
    v1 = next(r for r in raw["regions"] if r["name"] == "kidneys")
    assert kidneys.dose("local") == EngineDose(
        "local", v1["doses"]["local"]["dose_gy"], v1["doses"]["local"]["dose_sigma_gy"]
    )
    assert kidneys.dose("organ").dose_gy == v1["organ_dose"]["dose_gy"]  # type: ignore[union-attr]
    assert kidneys.bed is not None
    assert (kidneys.bed.bed_gy, kidneys.bed.dose_gy, kidneys.bed.dose_source) == (4.72623, 4.30589, "local")
    assert (kidneys.bed.alpha_beta_gy, kidneys.bed.repair_half_time_h) == (2.6, 2.8)
    # Dale 1985 by hand: 4.30589 (1 + 4.30589 · 2.8/(2.8 + 44.7013)/2.6) = 4.72623 Gy
    assert 4.30589 * (1 + 4.30589 * 2.8 / (2.8 + 44.7013) / 2.6) == pytest.approx(4.72623, abs=2e-5)
    upgraded = json.loads(record.to_json())
    jsonschema_rs.validate(doses_schema(), upgraded)
    assert upgraded["upgraded_from"] == 1 and StudyDoses.from_dict(upgraded) == record


def test_mass_weighted_mean_dose_by_hand() -> None:
    """Two voxels, 2 Gy in 1 g and 5 Gy in 2 g: (2·1 + 5·2)/3 = 4 Gy (the plain mean would be 3.5)."""
    dose = np.array([2.0, 5.0, 100.0])
    mask = np.array([True, True, False])
    assert mean_dose_gy(dose, mask, np.array([1.0, 2.0, 7.0])) == pytest.approx(4.0)
    assert mean_dose_gy(dose, mask) == pytest.approx(3.5)  # equal masses


def test_round_sig() -> None:
    assert round_sig(4.305891234) == 4.30589
    assert round_sig(0.0) == 0.0 and round_sig(None) is None and round_sig(float("nan")) is None


def test_schema_command_prints_the_published_schema_and_check_upgrades(tmp_path: Path) -> None:
    from cli_runner import run_in_process

    printed = run_in_process("schema", "doses")
    assert printed.returncode == 0 and json.loads(printed.stdout) == doses_schema()
    out = tmp_path / "doses_v2.json"
    checked = run_in_process("schema", "check-doses", str(V1_DEMO), "--upgrade", str(out), "--json")
    assert checked.returncode == 0, checked.stderr
    summary = json.loads(checked.stdout)
    assert (summary["version"], summary["upgraded_to"], summary["reference_dose"]) == (1, 3, "local")
    assert read_doses(out) == read_doses(V1_DEMO)
    bad = run_in_process("schema", "check-doses", str(tmp_path / "missing.json"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_the_budget_is_that_of_the_reference_dose_and_its_bed() -> None:
    """A budget of another dose, a reference σ other than the budget's, or a budget without the record's
    BED is refused."""
    import dataclasses

    good = _record()
    kidneys = good.region("kidneys")
    budget = kidneys.uncertainty
    assert budget is not None
    assert budget.dose_sigma_gy == pytest.approx(0.21, rel=1e-5)
    other = dataclasses.replace(kidneys, uncertainty=dataclasses.replace(budget, dose_gy=4.0))
    with pytest.raises(InputError, match=r"is of 4\.0 Gy, not of the region's organ dose"):
        _record(regions=(other,))
    sigma = dataclasses.replace(kidneys, doses=(kidneys.doses[0], EngineDose("organ", 4.1, 0.3, "MIRD")))
    with pytest.raises(InputError, match="is not the budget's"):
        _record(regions=(sigma,))
    no_bed = dataclasses.replace(kidneys, uncertainty=dataclasses.replace(budget, bed_gy=None))
    with pytest.raises(InputError, match="the budget's BED None is not the record's"):
        _record(regions=(no_bed,))


def test_kinetics_budget_and_calibration_round_trip_through_json() -> None:
    record = _record()
    data = json.loads(record.to_json())
    jsonschema_rs.validate(doses_schema(), data)
    kidneys = data["regions"][0]
    assert kidneys["kinetics"]["flags"] == ["goodness_of_fit_failed"] and kidneys["flags"] == [
        "below_resolution"
    ]
    assert kidneys["uncertainty"]["dominant"] and kidneys["uncertainty"]["not_assessed"]
    assert data["calibration"]["factor_cps_per_mbq"] == 5.67 and data["site_time_zone"] == "Europe/Berlin"
    again = StudyDoses.from_dict(data)
    assert again == record
    assert again.region("kidneys").kinetics == KINETICS


def test_version_2_is_upgraded_with_its_tia_term_as_the_one_assessed_component() -> None:
    """A version 2 record held the TIA term alone (relative σ 0.21/4.1 = 5.12 %); upgraded, that is a
    budget with the fit component assessed and every other component listed as not assessed."""
    data = json.loads(_record().to_json())
    data["version"] = 2
    for key in ("calibration", "site_time_zone", "provenance"):
        del data[key]
    for region in data["regions"]:
        for key in ("kinetics", "flags"):
            region.pop(key)
        if region["uncertainty"] is not None:
            region["uncertainty"] = {
                "method": "EANM",
                "combined_relative_sigma": 0.0512195,
                "components": [
                    {"name": "time-integrated activity", "relative_sigma": 0.0512195, "source": "fit"}
                ],
            }
    data["regions"][0]["bed"] = None
    record = StudyDoses.from_dict(data)
    assert record.upgraded_from == 2
    budget = record.region("kidneys").uncertainty
    assert budget is not None and [c.name for c in budget.components] == ["fit_tia"]
    assert budget.dose_sigma_gy == 0.21 and "calibration" in budget.not_assessed
    assert record.calibration is None and record.region("kidneys").kinetics is None
    upgraded = json.loads(record.to_json())
    jsonschema_rs.validate(doses_schema(), upgraded)
