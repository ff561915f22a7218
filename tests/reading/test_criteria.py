"""Lesion scores and eligibility, one case per category plus the boundaries, against the published rules.

Sources: PSMA-RADS 1.0 — Rowe et al., J Nucl Med 2018;59:479, Table 1; SSTR-RADS 1.0 — Werner et al.,
J Nucl Med 2018;59:1085; Krenning grades — Kwekkeboom & Krenning, Semin Nucl Med 2002;32:84 (1 < liver,
2 = liver, 3 > liver, 4 > spleen); miPSMA — PROMISE (Eiber et al., J Nucl Med 2018;59:469) / PROMISE V2
(Seifert et al. 2023): 0 < blood pool <= 1 < liver <= 2 < parotid <= 3, spleen for [18F]PSMA-1007;
VISION — Sartor et al., NEJM 2021;385:1091; TheraP — Hofman et al., Lancet 2021;397:797; NETTER-1 —
Strosberg et al., NEJM 2017;376:125.
"""

from __future__ import annotations

import pytest

from theradose.errors import InputError
from theradose.reading.criteria import eligibility, krenning_score, mipsma_score, rads_category, score_lesions
from theradose.reading.lesions import Lesion, LesionTable, Reference, lesion_table_from_rows


def lesion(**kw: object) -> Lesion:
    return Lesion(lesion_id=str(kw.pop("lesion_id", "L1")), **kw)  # type: ignore[arg-type]


def refs(**values: float) -> dict[str, Reference]:
    return {name: Reference(name, suv_mean=v) for name, v in values.items()}


# ------------------------------------------------------------------------------------ PSMA-RADS 1.0

RADS_CASES = [
    # (benign, uptake, site_typical, anatomic_correlate, tissue) -> category  (Rowe 2018, Table 1)
    ((True, "none", None, None, "bone"), "1A"),
    ((True, "intense", None, None, "bone"), "1B"),
    ((True, "equivocal", None, None, "soft_tissue"), "1B"),
    ((False, "equivocal", False, None, "lymph_node"), "2"),
    ((False, "equivocal", False, None, "bone"), "2"),
    ((False, "equivocal", True, None, "lymph_node"), "3A"),
    ((False, "equivocal", True, None, "bone"), "3B"),
    ((False, "intense", False, True, "solid_organ"), "3C"),
    ((False, "none", None, True, "lymph_node"), "3D"),
    ((False, "intense", True, False, "bone"), "4"),
    ((False, "intense", True, True, "lymph_node"), "5"),
]


@pytest.mark.parametrize("framework", ["psma-rads", "sstr-rads"])
@pytest.mark.parametrize(("features", "category"), RADS_CASES)
def test_rads_categories(framework: str, features: tuple[object, ...], category: str) -> None:
    benign, uptake, typical, correlate, tissue = features
    les = lesion(
        benign=benign, uptake=uptake, site_typical=typical, anatomic_correlate=correlate, tissue=tissue
    )
    decision = rads_category(les, framework=framework)  # type: ignore[arg-type]
    prefix = "PSMA-RADS" if framework == "psma-rads" else "SSTR-RADS"
    assert decision.category == f"{prefix}-{category}"
    assert decision.rule.startswith(f"{prefix}-{category}: ")
    key = "rowe2018_psmarads" if framework == "psma-rads" else "werner2018_sstrrads"
    assert f"[{key}]" in decision.rule
    assert decision.citation_key == key


def test_rads_missing_findings_are_named() -> None:
    with pytest.raises(InputError, match="uptake"):
        rads_category(lesion(), framework="psma-rads")
    with pytest.raises(InputError, match="site_typical"):
        rads_category(lesion(uptake="intense"), framework="psma-rads")
    with pytest.raises(InputError, match="anatomic_correlate"):
        rads_category(lesion(uptake="intense", site_typical=True), framework="psma-rads")
    with pytest.raises(InputError, match="no finding"):
        rads_category(lesion(uptake="none", anatomic_correlate=False), framework="sstr-rads")


# ---------------------------------------------------------------------------------------- Krenning

KRENNING_TABLE = LesionTable((), refs(liver=6.0, spleen=20.0))


@pytest.mark.parametrize(
    ("suv_max", "tolerance", "grade"),
    [
        (3.0, 0.0, "1"),  # below liver
        (5.999, 0.0, "1"),  # just below liver (strict)
        (6.0, 0.0, "2"),  # equal to liver
        (6.001, 0.0, "3"),  # just above liver
        (6.5, 0.1, "2"),  # within 10 % of liver: 'equal'
        (5.5, 0.1, "2"),
        (6.7, 0.1, "3"),  # outside the band, above liver
        (20.0, 0.0, "3"),  # equal to spleen is not 'higher than spleen'
        (20.001, 0.0, "4"),
        (40.0, 0.0, "4"),
    ],
)
def test_krenning_grades(suv_max: float, tolerance: float, grade: str) -> None:
    decision = krenning_score(lesion(suv_max=suv_max), KRENNING_TABLE, equal_tolerance=tolerance)
    assert decision.category == grade
    assert decision.rule.startswith(f"Krenning {grade}: ")


def test_krenning_needs_references_and_suv() -> None:
    with pytest.raises(InputError, match="spleen"):
        krenning_score(lesion(suv_max=5.0), LesionTable((), refs(liver=6.0)))
    with pytest.raises(InputError, match="suv_max"):
        krenning_score(lesion(), KRENNING_TABLE)
    with pytest.raises(InputError, match="equal_tolerance"):
        krenning_score(lesion(suv_max=5.0), KRENNING_TABLE, equal_tolerance=1.5)


# ------------------------------------------------------------------------------------------ miPSMA

MIPSMA_TABLE = LesionTable((), refs(blood_pool=1.5, liver=5.0, spleen=8.0, parotid=15.0))


@pytest.mark.parametrize(
    ("suv_max", "tracer", "score"),
    [
        (1.0, "", "0"),
        (1.4999, "", "0"),
        (1.5, "", "1"),  # equal to blood pool -> 1
        (4.9999, "", "1"),
        (5.0, "", "2"),  # equal to liver -> 2
        (14.999, "", "2"),
        (15.0, "", "3"),  # equal to parotid -> 3
        (40.0, "", "3"),
        (6.0, "PSMA-1007", "1"),  # spleen (8.0) replaces liver for [18F]PSMA-1007
        (8.0, "18F-PSMA-1007", "2"),
    ],
)
def test_mipsma_scores(suv_max: float, tracer: str, score: str) -> None:
    decision = mipsma_score(lesion(suv_max=suv_max), MIPSMA_TABLE, tracer=tracer)
    assert decision.category == score
    assert "[seifert2023_promise2]" in decision.rule
    if tracer:
        assert "spleen" in decision.rule


def test_score_lesions_empty_table() -> None:
    with pytest.raises(InputError, match="no lesion rows"):
        score_lesions(LesionTable(()), framework="krenning")


# --------------------------------------------------------------------------------------- VISION


def vision_table(*lesions: Lesion, liver: float = 6.0) -> LesionTable:
    return LesionTable(tuple(lesions), refs(liver=liver))


def test_vision_eligible_with_psma_positive_lesion() -> None:
    result = eligibility(vision_table(lesion(suv_max=12.0, tissue="bone")), trial="vision")
    assert result.eligible
    assert result.citation_key == "sartor2021_vision"


def test_vision_uptake_equal_to_liver_is_not_positive() -> None:
    # PSMA-positive = uptake GREATER than liver: a lesion equal to liver is PSMA-negative
    result = eligibility(vision_table(lesion(suv_max=6.0, tissue="bone")), trial="vision")
    assert not result.eligible
    assert "no PSMA-positive lesion" in result.reasons[0]


@pytest.mark.parametrize(
    ("negative", "excluded"),
    [
        (lesion(lesion_id="N", suv_max=3.0, tissue="lymph_node", short_axis_mm=25.0), True),  # node 2.5 cm
        (lesion(lesion_id="N", suv_max=3.0, tissue="lymph_node", short_axis_mm=24.9), False),
        (lesion(lesion_id="N", suv_max=3.0, tissue="solid_organ", short_axis_mm=10.0), True),  # 1.0 cm
        (lesion(lesion_id="N", suv_max=3.0, tissue="solid_organ", short_axis_mm=9.9), False),
        (lesion(lesion_id="N", suv_max=3.0, tissue="bone", soft_tissue_short_axis_mm=10.0), True),
        (lesion(lesion_id="N", suv_max=3.0, tissue="bone", soft_tissue_short_axis_mm=9.0), False),
        (lesion(lesion_id="N", suv_max=3.0, tissue="bone"), False),  # no soft-tissue component
        (lesion(lesion_id="N", suv_max=6.0, tissue="lymph_node", short_axis_mm=30.0), True),  # = liver
        (lesion(lesion_id="N", suv_max=6.1, tissue="lymph_node", short_axis_mm=30.0), False),  # positive
    ],
)
def test_vision_psma_negative_size_limits(negative: Lesion, excluded: bool) -> None:
    positive = lesion(lesion_id="P", suv_max=20.0, tissue="bone")
    result = eligibility(vision_table(positive, negative), trial="vision")
    assert result.eligible is (not excluded)
    assert any("exclusion" in r for r in result.reasons) is excluded


def test_vision_needs_node_size_and_liver() -> None:
    with pytest.raises(InputError, match="short_axis_mm"):
        eligibility(vision_table(lesion(suv_max=3.0, tissue="lymph_node")), trial="vision")
    with pytest.raises(InputError, match="liver"):
        eligibility(LesionTable((lesion(suv_max=3.0, tissue="bone"),)), trial="vision")


# --------------------------------------------------------------------------------------- TheraP


@pytest.mark.parametrize(
    ("lesions", "eligible", "marker"),
    [
        ([lesion(suv_max=20.0, tissue="bone", long_axis_mm=20.0)], True, "SUVmax 20 (L1) >= 20"),
        ([lesion(suv_max=19.9, tissue="bone", long_axis_mm=20.0)], False, "SUVmax 19.9 (L1) < 20"),
        (  # measurable site SUVmax exactly 10: not > 10
            [
                lesion(lesion_id="A", suv_max=25.0, tissue="bone", long_axis_mm=20.0),
                lesion(lesion_id="B", suv_max=10.0, tissue="lymph_node", short_axis_mm=15.0),
            ],
            False,
            "not > 10",
        ),
        (  # same node below RECIST measurability (short axis 14 mm): not considered
            [
                lesion(lesion_id="A", suv_max=25.0, tissue="bone", long_axis_mm=20.0),
                lesion(lesion_id="B", suv_max=10.0, tissue="lymph_node", short_axis_mm=14.0),
            ],
            True,
            "all measurable",
        ),
        (
            [
                lesion(lesion_id="A", suv_max=25.0, tissue="bone", long_axis_mm=20.0),
                lesion(lesion_id="B", suv_max=10.1, tissue="solid_organ", long_axis_mm=10.0),
            ],
            True,
            "all measurable",
        ),
        (  # FDG-positive lesion with low PSMA expression: discordance
            [
                lesion(lesion_id="A", suv_max=25.0, tissue="bone", long_axis_mm=20.0),
                lesion(lesion_id="B", suv_max=4.0, tissue="bone", long_axis_mm=5.0, fdg_positive=True),
            ],
            False,
            "discordance",
        ),
        (  # measurable column overrides the size rule
            [
                lesion(lesion_id="A", suv_max=25.0, tissue="bone", long_axis_mm=20.0),
                lesion(lesion_id="B", suv_max=8.0, tissue="bone", long_axis_mm=5.0, measurable=True),
            ],
            False,
            "not > 10",
        ),
    ],
)
def test_therap(lesions: list[Lesion], eligible: bool, marker: str) -> None:
    result = eligibility(LesionTable(tuple(lesions)), trial="therap")
    assert result.eligible is eligible
    assert any(marker in r for r in result.reasons)
    assert result.citation_key == "hofman2021_therap"


# ------------------------------------------------------------------------------------- NETTER-1


@pytest.mark.parametrize(
    ("values", "tolerance", "eligible"),
    [
        ((10.0, 30.0), 0.0, True),  # Krenning 3 and 4
        ((6.0, 30.0), 0.0, True),  # = liver: Krenning 2 is enough
        ((5.9, 30.0), 0.0, False),  # < liver: Krenning 1
        ((5.9, 30.0), 0.05, True),  # within 5 % of liver: Krenning 2
    ],
)
def test_netter1_all_targets_krenning_at_least_2(
    values: tuple[float, float], tolerance: float, eligible: bool
) -> None:
    lesions = tuple(lesion(lesion_id=f"T{i}", suv_max=v, target=True) for i, v in enumerate(values))
    # a non-target lesion below liver does not matter
    lesions += (lesion(lesion_id="X", suv_max=1.0, target=False),)
    result = eligibility(
        LesionTable(lesions, refs(liver=6.0, spleen=20.0)), trial="netter1", equal_tolerance=tolerance
    )
    assert result.eligible is eligible
    assert result.citation_key == "strosberg2017_netter1"


def test_rows_round_trip_through_csv_parser() -> None:
    table = lesion_table_from_rows(
        [
            {"lesion_id": "A", "suv_max": "12", "tissue": "bone", "uptake": "high", "site_typical": "Y"},
            {"lesion_id": "liver", "kind": "reference", "organ": "liver", "suv_mean": "6"},
        ]
    )
    assert table.lesions[0].uptake == "intense"
    assert table.lesions[0].site_typical is True
    assert table.reference_suv("liver", needed_for="test") == 6.0
