"""Response rules beyond target lesions and SULpeak: table-driven, one case per row plus boundaries.

RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228), Table 1 (patients with target disease):

    target  non-target                  new  overall
    CR      CR                          no   CR
    CR      non-CR/non-PD               no   PR
    CR      not evaluated               no   PR
    PR      non-PD or not all evaluated no   PR
    SD      non-PD or not all evaluated no   SD
    PD      any                         any  PD
    any     PD                          any  PD
    any     any                         yes  PD

Table 2 (non-target disease only): CR/no -> CR; non-CR/non-PD/no -> non-CR/non-PD; not all evaluated/no
-> NE; unequivocal PD -> PD; any/yes -> PD. Non-target CR needs every lesion gone and nodes < 10 mm short
axis; unequivocal progression of non-target disease is the reader's judgement.

PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50:122S; as reproduced in J Cancer 2010;1:80 Table 3): PMD also
on > 75 % increase in TLG of the 5 most active lesions (up to 5, no more than 2 per organ); CMR: all
lesions below mean liver SUL and at the level of the background blood pool.

PSMA PET progression (Fanti et al., J Nucl Med 2020;61:678): >= 2 new PSMA-positive *distant* lesions; 1 new
lesion plus consistent clinical or laboratory data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from theradose.cli import main
from theradose.errors import InputError
from theradose.reading.lesions import Lesion, LesionTable, Reference, read_lesion_csv
from theradose.reading.response import assess_response, percist_tlg_change, recist_overall


def les(lesion_id: str, **kw: object) -> Lesion:
    return Lesion(lesion_id=lesion_id, **kw)  # type: ignore[arg-type]


def table(*lesions: Lesion, **refs: Reference) -> LesionTable:
    return LesionTable(tuple(lesions), dict(refs))


# ------------------------------------------------------------------- RECIST 1.1 Table 1 and Table 2


@pytest.mark.parametrize(
    ("target", "nontarget", "new", "overall"),
    [
        # Table 1
        ("CR", "CR", False, "CR"),
        ("CR", "none", False, "CR"),  # no non-target lesion at baseline
        ("CR", "non-CR/non-PD", False, "PR"),
        ("CR", "NE", False, "PR"),
        ("PR", "CR", False, "PR"),
        ("PR", "non-CR/non-PD", False, "PR"),
        ("PR", "NE", False, "PR"),
        ("PR", "none", False, "PR"),
        ("SD", "CR", False, "SD"),
        ("SD", "non-CR/non-PD", False, "SD"),
        ("SD", "NE", False, "SD"),
        ("PD", "CR", False, "PD"),
        ("PD", "NE", False, "PD"),
        ("CR", "PD", False, "PD"),
        ("PR", "PD", False, "PD"),
        ("SD", "PD", False, "PD"),
        ("CR", "CR", True, "PD"),
        ("PR", "non-CR/non-PD", True, "PD"),
        ("SD", "none", True, "PD"),
        # Table 2 (no target lesion at baseline)
        ("none", "CR", False, "CR"),
        ("none", "non-CR/non-PD", False, "non-CR/non-PD"),
        ("none", "NE", False, "NE"),
        ("none", "PD", False, "PD"),
        ("none", "CR", True, "PD"),
        ("none", "non-CR/non-PD", True, "PD"),
    ],
)
def test_recist_overall_table(target: str, nontarget: str, new: bool, overall: str) -> None:
    category, row = recist_overall(target, nontarget, new_lesions=new)
    assert category == overall
    assert "Table" in row


def test_recist_overall_needs_some_disease() -> None:
    with pytest.raises(InputError, match="no target and no non-target"):
        recist_overall("none", "none", new_lesions=False)


def _recist(
    fu_target_mm: float | None,
    nontarget_fu: Lesion | None,
    *,
    new: bool = False,
    nontarget_base: Lesion | None = None,
) -> str:
    """Baseline: target T (liver, 40 mm) and non-target NT; follow-up as given."""
    nt0 = nontarget_base or les("NT", organ="bone", tissue="bone", target=False)
    base = table(les("T", organ="liver", long_axis_mm=40.0, target=True), nt0)
    fu: list[Lesion] = []
    if fu_target_mm is not None:
        fu.append(les("T", organ="liver", long_axis_mm=fu_target_mm))
    if nontarget_fu is not None:
        fu.append(nontarget_fu)
    if new:
        fu.append(les("NEW", organ="lung", long_axis_mm=6.0))
    return assess_response(base, table(*fu), criteria="recist", match_by="id").category


@pytest.mark.parametrize(
    ("fu_target_mm", "nontarget_fu", "new", "category"),
    [
        (None, None, False, "CR"),  # target gone, non-target gone
        (None, les("NT", nontarget_response="absent"), False, "CR"),  # reader: non-target gone
        (None, les("NT"), False, "PR"),  # target CR, non-target persists -> PR (Table 1 row 2)
        (None, les("NT", nontarget_response="present"), False, "PR"),
        (None, les("NT", nontarget_response="ne"), False, "PR"),  # target CR, non-target NE -> PR
        (None, les("NT", nontarget_response="progression"), False, "PD"),
        (28.0, les("NT"), False, "PR"),  # 40 -> 28 mm: exactly -30 %
        (28.0, les("NT", nontarget_response="progression"), False, "PD"),  # PR targets, NT PD
        (30.0, les("NT"), False, "SD"),  # -25 %
        (30.0, les("NT", nontarget_response="ne"), False, "SD"),
        (48.0, les("NT"), False, "PD"),  # +20 % and +8 mm
        (None, None, True, "PD"),  # new lesion overrides CR
    ],
)
def test_recist_with_non_target_lesions(
    fu_target_mm: float | None, nontarget_fu: Lesion | None, new: bool, category: str
) -> None:
    assert _recist(fu_target_mm, nontarget_fu, new=new) == category


@pytest.mark.parametrize(("short_axis_mm", "category"), [(9.9, "CR"), (10.0, "PR"), (12.0, "PR")])
def test_recist_non_target_node_normal_below_10_mm(short_axis_mm: float, category: str) -> None:
    """A non-target node counts as gone (non-pathological) only when its short axis is < 10 mm."""
    node0 = les("NT", organ="pelvic nodes", tissue="lymph_node", short_axis_mm=12.0, target=False)
    node1 = les("NT", tissue="lymph_node", short_axis_mm=short_axis_mm)
    assert _recist(None, node1, nontarget_base=node0) == category


@pytest.mark.parametrize(
    ("nontarget_fu", "new", "category"),
    [
        (None, False, "CR"),
        (les("NT"), False, "non-CR/non-PD"),
        (les("NT", nontarget_response="ne"), False, "NE"),
        (les("NT", nontarget_response="progression"), False, "PD"),
        (les("NT"), True, "PD"),
    ],
)
def test_recist_non_target_disease_only(nontarget_fu: Lesion | None, new: bool, category: str) -> None:
    base = table(les("NT", organ="bone", tissue="bone"))  # not measurable: no target lesion
    fu = [] if nontarget_fu is None else [nontarget_fu]
    if new:
        fu.append(les("NEW"))
    result = assess_response(base, table(*fu), criteria="recist")
    assert result.category == category
    assert result.details["target_response"] == "none"


def test_recist_unselected_measurable_lesions_become_non_target() -> None:
    """Without a target column, lesions beyond 2 per organ are non-target lesions (Eisenhauer 2009 4.2)."""
    base = table(*(les(f"L{i}", organ="liver", long_axis_mm=30.0 - i) for i in range(3)))
    # targets L0 (30) and L1 (29) shrink to 0; non-target L2 persists -> target CR + non-CR/non-PD -> PR
    result = assess_response(base, table(les("L2", organ="liver", long_axis_mm=28.0)), criteria="recist")
    assert [t["lesion_id"] for t in result.details["targets"]] == ["L0", "L1"]
    assert result.details["nontarget_response"] == "non-CR/non-PD"
    assert result.category == "PR"
    result = assess_response(
        base,
        table(les("L2", organ="liver", long_axis_mm=40.0, nontarget_response="progression")),
        criteria="recist",
    )
    assert result.category == "PD"
    assert "L2" in result.rule


# ------------------------------------------------------------------------- lesion-table columns


def test_new_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "fu.csv"
    path.write_text(
        "lesion_id,nontarget_response,tlg_sul_ml,distant\n"
        "A,PD,12.5,yes\nB,non-CR/non-PD,,no\nC,not evaluated,,\nD,cr,,\nE,,,\n"
    )
    lesions = {x.lesion_id: x for x in read_lesion_csv(path).lesions}
    assert [lesions[i].nontarget_response for i in "ABCDE"] == [
        "progression",
        "present",
        "ne",
        "absent",
        None,
    ]
    assert lesions["A"].tlg_sul_ml == 12.5
    assert [lesions[i].distant for i in "ABC"] == [True, False, None]


@pytest.mark.parametrize(
    ("content", "column"),
    [
        ("lesion_id,nontarget_response\nA,worse\n", "nontarget_response"),
        ("lesion_id,tlg_sul_ml\nA,-3\n", "tlg_sul_ml"),
        ("lesion_id,tlg_sul_ml\nA,lots\n", "tlg_sul_ml"),
        ("lesion_id,distant\nA,far\n", "distant"),
    ],
)
def test_new_columns_one_line_errors(tmp_path: Path, content: str, column: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        read_lesion_csv(path)
    message = str(info.value)
    assert column in message and "\n" not in message


def test_cli_response_reads_non_target_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base.csv"
    fu = tmp_path / "fu.csv"
    base.write_text(
        "lesion_id,organ,tissue,long_axis_mm,target\nT,liver,solid_organ,40,yes\nB,bone,bone,,no\n"
    )
    fu.write_text(
        "lesion_id,organ,tissue,long_axis_mm,nontarget_response\nT,liver,solid_organ,20,\nB,bone,bone,,pd\n"
    )
    try:
        main(["read", "response", str(base), str(fu), "--criteria", "recist", "--json"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert data["category"] == "PD"  # targets -50 % (PR) but unequivocal non-target progression
    assert data["details"]["target_response"] == "PR"
    assert data["details"]["nontarget_response"] == "PD"


# ---------------------------------------------------------------------------------------- PERCIST


@pytest.mark.parametrize(
    ("tlg1", "category"),
    [
        (175.0, "SMD"),  # exactly +75 %: PMD needs more than 75 %
        (175.2, "PMD"),
        (300.0, "PMD"),
        (100.0, "SMD"),
    ],
)
def test_percist_tlg_rule(tlg1: float, category: str) -> None:
    # SULpeak unchanged (8.0 -> 8.0), so only the TLG rule can give PMD; TLG split 60 + 40 at baseline
    base = table(les("A", sul_peak=8.0, tlg_sul_ml=60.0), les("B", sul_peak=5.0, tlg_sul_ml=40.0))
    fu = table(les("A", sul_peak=8.0, tlg_sul_ml=tlg1 - 40.0), les("B", sul_peak=5.0, tlg_sul_ml=40.0))
    result = assess_response(base, fu, criteria="percist")
    assert result.category == category
    assert result.details["tlg"]["baseline_tlg_sul_ml"] == pytest.approx(100.0)
    assert result.details["tlg"]["followup_tlg_sul_ml"] == pytest.approx(tlg1)


def test_percist_tlg_five_most_active_two_per_organ() -> None:
    # liver lesions SULpeak 9, 8, 7 (only 9 and 8 count), bone 6, 5, 4 (6 and 5), node 3 (counts: 5th)
    rows = [
        ("L1", "liver", 9.0, 10.0),
        ("L2", "liver", 8.0, 20.0),
        ("L3", "liver", 7.0, 1000.0),
        ("B1", "bone", 6.0, 30.0),
        ("B2", "bone", 5.0, 40.0),
        ("B3", "bone", 4.0, 1000.0),
        ("N1", "node", 3.0, 50.0),
        ("N2", "node", 2.0, 1000.0),
    ]
    base = table(*(les(i, organ=o, sul_peak=s, tlg_sul_ml=t) for i, o, s, t in rows))
    tlg = percist_tlg_change(base, base)
    assert tlg is not None
    assert tlg["baseline_ids"] == ["L1", "L2", "B1", "B2", "N1"]
    assert tlg["baseline_tlg_sul_ml"] == pytest.approx(10 + 20 + 30 + 40 + 50)
    assert tlg["change_fraction"] == 0.0


def test_percist_tlg_not_assessed_without_column() -> None:
    base = table(les("A", sul_peak=8.0, tlg_sul_ml=10.0))
    fu = table(les("A", sul_peak=8.0))
    result = assess_response(base, fu, criteria="percist")
    assert result.details["tlg"] is None
    assert result.category == "SMD"


@pytest.mark.parametrize(
    ("sul1", "blood_pool", "category"),
    [
        (1.5, None, "CMR"),  # < liver 2.0, no blood-pool reference given
        (1.5, 1.5, "CMR"),  # at blood-pool level
        (1.5, 1.4, "PMR"),  # above blood pool: not complete (-85 %, -8.5 SUL -> PMR)
        (2.0, None, "PMR"),  # equal to liver mean is not below it
    ],
)
def test_percist_cmr_liver_and_blood_pool(sul1: float, blood_pool: float | None, category: str) -> None:
    liver = Reference("liver", sul_mean=2.0, sul_sd=0.3)
    refs: dict[str, Reference] = {"liver": liver}
    if blood_pool is not None:
        refs["blood_pool"] = Reference("blood_pool", sul_mean=blood_pool)
    base = table(les("A", sul_peak=10.0), liver=liver)
    fu = LesionTable((les("A", sul_peak=sul1),), refs)
    assert assess_response(base, fu, criteria="percist").category == category


def test_percist_new_lesion_is_pmd_even_when_uptake_falls() -> None:
    base = table(les("A", sul_peak=10.0))
    fu = table(les("A", sul_peak=1.0), les("NEW", sul_peak=3.0))
    result = assess_response(base, fu, criteria="percist")
    assert result.category == "PMD"
    assert "NEW" in result.rule


# -------------------------------------------------------------------------------------------- PPP


@pytest.mark.parametrize(
    ("distant", "clinical", "category"),
    [
        ((True, True), False, "PPP"),  # 2 new distant lesions
        ((None, None), False, "PPP"),  # not stated: counted as distant, listed as assumed
        ((True, False), False, "no PPP"),  # only 1 distant
        ((False, False), False, "no PPP"),
        ((False, False), True, "PPP"),  # new lesion(s) plus clinical/laboratory progression
        ((True,), False, "no PPP"),
        ((True,), True, "PPP"),
        ((True, True, False), False, "PPP"),
    ],
)
def test_ppp_distant_new_lesions(distant: tuple[bool | None, ...], clinical: bool, category: str) -> None:
    base = table(les("A", suv_max=10.0))
    fu = [les("A", suv_max=10.0)] + [les(f"N{i}", suv_max=8.0, distant=d) for i, d in enumerate(distant)]
    result = assess_response(base, table(*fu), criteria="ppp", clinical_progression=clinical)
    assert result.category == category
    assert result.details["new_distant_lesions"] == [f"N{i}" for i, d in enumerate(distant) if d is not False]
    assert result.details["distant_assumed"] == [f"N{i}" for i, d in enumerate(distant) if d is None]
