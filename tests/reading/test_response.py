"""Response criteria, one case per category plus boundaries, against the published definitions.

RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228): PR >= 30 % decrease of the sum of diameters from
baseline; PD >= 20 % AND >= 5 mm increase from the nadir, or a new lesion; CR all targets gone and target
nodes < 10 mm short axis. PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50:122S): PMR >= 30 % and >= 0.8 SUL
decrease of the hottest lesion's SULpeak; PMD > 30 % and > 0.8 SUL increase or a new lesion; measurable
>= 1.5 x liver SULmean + 2 SD. RECIP 1.0 (Gafita et al., J Nucl Med 2022;63:1651): PR >= 30 % PSMA-VOL
decrease without new lesions, PD >= 20 % increase with new lesions, CR no uptake, SD otherwise. PPP (Fanti
et al., J Nucl Med 2020;61:678): >= 2 new lesions; 1 new lesion or >= 30 % increase with clinical data.
"""

from __future__ import annotations

import pytest

from theradose.errors import InputError
from theradose.reading.lesions import Lesion, LesionTable, Reference
from theradose.reading.response import (
    assess_response,
    match_lesions,
    select_recist_targets,
)


def les(lesion_id: str, **kw: object) -> Lesion:
    return Lesion(lesion_id=lesion_id, **kw)  # type: ignore[arg-type]


def table(*lesions: Lesion, **refs: Reference) -> LesionTable:
    return LesionTable(tuple(lesions), dict(refs))


# ------------------------------------------------------------------------------------------ matching


def test_match_by_id_when_shared() -> None:
    m = match_lesions(table(les("A"), les("B")), table(les("A"), les("C")))
    assert m.pairs == (("A", "A"),)
    assert m.new == ("C",)
    assert m.disappeared == ("B",)
    assert m.method == "lesion_id"


def test_match_by_position_optimal_and_gated() -> None:
    base = table(les("a", x_mm=0.0, y_mm=0.0, z_mm=0.0), les("b", x_mm=30.0, y_mm=0.0, z_mm=0.0))
    # f1 is 12 mm from a and 18 mm from b; f2 is 11 mm from a and 41 mm from b.
    # greedy nearest-first would give f2->a and f1->b (11 + 18 = 29 mm); the optimal one-to-one
    # assignment is the same here; f3 is 100 mm away from everything -> new
    fu = table(
        les("f1", x_mm=12.0, y_mm=0.0, z_mm=0.0),
        les("f2", x_mm=-11.0, y_mm=0.0, z_mm=0.0),
        les("f3", x_mm=0.0, y_mm=100.0, z_mm=0.0),
    )
    m = match_lesions(base, fu, max_distance_mm=20.0)
    assert set(m.pairs) == {("a", "f2"), ("b", "f1")}
    assert m.new == ("f3",)
    assert m.disappeared == ()
    assert sorted(d for d in m.distances_mm if d is not None) == pytest.approx([11.0, 18.0])


def test_match_by_position_needs_centroids() -> None:
    with pytest.raises(InputError, match="x_mm"):
        match_lesions(table(les("a")), table(les("b")))
    with pytest.raises(InputError, match="max_distance_mm"):
        match_lesions(table(), table(), max_distance_mm=0.0)


# ---------------------------------------------------------------------------------------- RECIST 1.1


def recist_pair(d0: tuple[float, ...], d1: tuple[float | None, ...], new: bool = False) -> str:
    """Non-nodal targets with the given baseline/follow-up longest diameters (None = disappeared)."""

    def target(i: int, d: float) -> Lesion:
        return les(
            f"T{i}", organ=f"o{i}", tissue="solid_organ", long_axis_mm=d, x_mm=100.0 * i, y_mm=0.0, z_mm=0.0
        )

    base = table(*(target(i, d) for i, d in enumerate(d0)))
    fu_lesions = [target(i, d) for i, d in enumerate(d1) if d is not None]
    if new:
        fu_lesions.append(les("NEW", tissue="bone", long_axis_mm=8.0, x_mm=900.0, y_mm=0.0, z_mm=0.0))
    return assess_response(base, table(*fu_lesions), criteria="recist").category


@pytest.mark.parametrize(
    ("d0", "d1", "new", "category"),
    [
        ((50.0, 50.0), (None, None), False, "CR"),
        ((50.0, 50.0), (35.0, 35.0), False, "PR"),  # exactly -30 %
        ((50.0, 50.0), (35.0, 35.1), False, "SD"),  # -29.9 %
        ((50.0, 50.0), (60.0, 60.0), False, "PD"),  # exactly +20 % and +20 mm
        ((50.0, 50.0), (59.9, 60.0), False, "SD"),  # +19.9 %
        ((10.0, 10.0), (12.0, 12.0), False, "SD"),  # +20 % but only +4 mm
        ((10.0, 10.0), (12.5, 12.5), False, "PD"),  # +25 % and +5 mm
        ((50.0, 50.0), (20.0, 20.0), True, "PD"),  # new lesion beats PR
        ((50.0, 50.0), (None, None), True, "PD"),  # new lesion beats CR
    ],
)
def test_recist_categories(
    d0: tuple[float, ...], d1: tuple[float | None, ...], new: bool, category: str
) -> None:
    assert recist_pair(d0, d1, new) == category


def test_recist_pd_from_nadir_not_baseline() -> None:
    base = table(les("T", tissue="solid_organ", long_axis_mm=100.0))
    fu = table(les("T", tissue="solid_organ", long_axis_mm=72.0))
    # vs baseline: -28 % (SD); vs nadir 60 mm: +20 % and +12 mm -> PD
    assert assess_response(base, fu, criteria="recist").category == "SD"
    assert assess_response(base, fu, criteria="recist", nadir_sum_mm=60.0).category == "PD"


def test_recist_nodes_use_short_axis_and_cr_needs_nodes_below_10_mm() -> None:
    base = table(les("N", tissue="lymph_node", short_axis_mm=20.0, long_axis_mm=30.0))
    assert (
        assess_response(
            base, table(les("N", tissue="lymph_node", short_axis_mm=9.9)), criteria="recist"
        ).category
        == "CR"
    )
    result = assess_response(
        base, table(les("N", tissue="lymph_node", short_axis_mm=10.0)), criteria="recist"
    )
    assert result.category == "PR"  # -50 % but node not < 10 mm
    assert result.details["baseline_sum_mm"] == 20.0


def test_recist_target_selection_5_total_2_per_organ() -> None:
    lesions = [les(f"L{i}", organ="liver", tissue="solid_organ", long_axis_mm=40.0 - i) for i in range(4)]
    lesions += [les(f"P{i}", organ="lung", tissue="solid_organ", long_axis_mm=30.0 - i) for i in range(3)]
    lesions += [les("B", organ="adrenal", tissue="solid_organ", long_axis_mm=25.0)]
    lesions += [les("S", organ="adrenal2", tissue="solid_organ", long_axis_mm=9.9)]  # not measurable
    lesions += [les("N", organ="node", tissue="lymph_node", short_axis_mm=14.9, long_axis_mm=30.0)]  # not
    lesions += [les("M", organ="node2", tissue="lymph_node", short_axis_mm=15.0)]
    chosen = [x.lesion_id for x in select_recist_targets(table(*lesions))]
    assert chosen == ["L0", "L1", "P0", "P1", "B"]
    assert len(chosen) == 5


def test_recist_without_target_uses_non_target_table() -> None:
    """Eisenhauer 2009 Table 2: non-target disease only; a lesion gone at follow-up -> CR."""
    result = assess_response(table(les("S", tissue="bone", long_axis_mm=5.0)), table(), criteria="recist")
    assert result.category == "CR"
    assert result.details["target_response"] == "none"
    with pytest.raises(InputError, match="target"):
        assess_response(table(), table(), criteria="recist")


# --------------------------------------------------------------------------------------- PERCIST 1.0

LIVER = Reference("liver", sul_mean=2.0, sul_sd=0.3)  # measurable >= 1.5*2.0 + 2*0.3 = 3.6


@pytest.mark.parametrize(
    ("sul0", "sul1", "new", "category"),
    [
        (10.0, 6.9, False, "PMR"),  # -31 %, -3.1
        (10.0, 7.0, False, "PMR"),  # exactly -30 %, -3.0
        (10.0, 7.1, False, "SMD"),  # -29 %
        (10.0, 13.1, False, "PMD"),  # +31 %, +3.1
        (10.0, 13.0, False, "SMD"),  # exactly +30 %: PMD needs more than 30 %
        (2.5, 1.7, False, "PMR"),  # -32 %, -0.8 SUL (boundary of the absolute rule)
        (2.5, 1.75, False, "SMD"),  # -30 % but only -0.75 SUL
        (3.6, 4.7, False, "PMD"),  # +30.6 %, +1.1
        (10.0, 9.0, True, "PMD"),  # new lesion
        (10.0, 1.9, False, "CMR"),  # below follow-up liver mean (2.0)
        (10.0, 2.0, False, "PMR"),  # equal to liver mean is not 'less than mean liver activity'
    ],
)
def test_percist_categories(sul0: float, sul1: float, new: bool, category: str) -> None:
    base = table(les("A", sul_peak=sul0), liver=LIVER)
    fu_lesions = [les("A", sul_peak=sul1)] + ([les("NEW", sul_peak=5.0)] if new else [])
    fu = table(*fu_lesions, liver=LIVER)
    if sul0 < 3.6:  # no liver reference: measurability and CMR-vs-liver not checked
        base = table(les("A", sul_peak=sul0))
        fu = table(*fu_lesions)
    assert assess_response(base, fu, criteria="percist").category == category


def test_percist_hottest_lesion_not_necessarily_same() -> None:
    base = table(les("A", sul_peak=10.0), les("B", sul_peak=4.0))
    fu = table(les("A", sul_peak=3.0), les("B", sul_peak=9.0))
    result = assess_response(base, fu, criteria="percist")
    assert result.details["followup_hottest"] == {"lesion_id": "B", "sul_peak": 9.0}
    assert result.category == "SMD"  # -10 %


def test_percist_not_measurable_and_no_lesion() -> None:
    base = table(les("A", sul_peak=3.5), liver=LIVER)
    assert assess_response(base, table(les("A", sul_peak=1.0)), criteria="percist").category == "NE"
    assert assess_response(table(les("A", sul_peak=8.0)), table(), criteria="percist").category == "CMR"
    with pytest.raises(InputError, match="sul_peak"):
        assess_response(table(les("A")), table(), criteria="percist")


# ------------------------------------------------------------------------------------------ RECIP 1.0


@pytest.mark.parametrize(
    ("v0", "v1", "new", "category"),
    [
        (100.0, 0.0, False, "CR"),
        (100.0, 70.0, False, "PR"),  # exactly -30 %
        (100.0, 70.1, False, "SD"),
        (100.0, 50.0, True, "SD"),  # PR volume but new lesions
        (100.0, 120.0, True, "PD"),  # exactly +20 % with new lesions
        (100.0, 119.9, True, "SD"),
        (100.0, 150.0, False, "SD"),  # increase without new lesions
    ],
)
def test_recip_categories(v0: float, v1: float, new: bool, category: str) -> None:
    base = table(les("A", volume_ml=v0))
    fu_lesions = [les("A", volume_ml=v1 - (1.0 if new else 0.0))]
    if new:
        fu_lesions.append(les("NEW", volume_ml=1.0))
    result = assess_response(base, table(*fu_lesions), criteria="recip")
    assert result.category == category
    assert result.details["followup_psma_vol_ml"] == pytest.approx(v1)


def test_recip_needs_volumes() -> None:
    with pytest.raises(InputError, match="volume_ml"):
        assess_response(table(les("A")), table(), criteria="recip")
    with pytest.raises(InputError, match="PSMA-VOL is 0"):
        assess_response(table(les("A", volume_ml=0.0)), table(), criteria="recip")


# ------------------------------------------------------------------------------------------------ PPP


@pytest.mark.parametrize(
    ("n_new", "suv1", "clinical", "category"),
    [
        (2, 10.0, False, "PPP"),  # two new lesions suffice
        (1, 10.0, False, "no PPP"),  # one new lesion needs clinical data
        (1, 10.0, True, "PPP"),
        (0, 13.0, True, "PPP"),  # +30 % uptake with clinical data
        (0, 13.0, False, "no PPP"),
        (0, 12.9, True, "no PPP"),  # +29 %
        (0, 10.0, False, "no PPP"),
    ],
)
def test_ppp(n_new: int, suv1: float, clinical: bool, category: str) -> None:
    base = table(les("A", suv_max=10.0, tissue="bone", long_axis_mm=20.0))
    fu = [les("A", suv_max=suv1, tissue="bone", long_axis_mm=20.0)]
    fu += [les(f"N{i}", suv_max=8.0) for i in range(n_new)]
    result = assess_response(base, table(*fu), criteria="ppp", clinical_progression=clinical)
    assert result.category == category
    assert "[fanti2020_ppp]" in result.rule


def test_ppp_size_increase_counts() -> None:
    base = table(les("A", suv_max=10.0, tissue="lymph_node", short_axis_mm=10.0))
    fu = table(les("A", suv_max=10.0, tissue="lymph_node", short_axis_mm=13.0))
    result = assess_response(base, fu, criteria="ppp", clinical_progression=True)
    assert result.category == "PPP"
    assert "size" in result.rule


def test_unknown_criteria() -> None:
    with pytest.raises(InputError, match="criteria"):
        assess_response(table(), table(), criteria="who")  # type: ignore[arg-type]
