"""The organ registry: names, aliases, SNOMED CT codes checked against DICOM PS3.16, display colours."""

from __future__ import annotations

import pytest

from theradose.errors import InputError
from theradose.organs import (
    CATEGORY_CODES,
    LATERALITY_CODES,
    Laterality,
    dicom_cielab,
    find_organ,
    get_organ,
    is_part_of,
    leaf_parts,
    organ_names,
    organs,
    srgb_to_cielab,
)


def _ps3_16_concepts() -> dict[str, dict[str, list[int]]]:
    """SNOMED CT code → {meaning: CIDs listing it} from the DICOM PS3.16 tables shipped with pydicom (an
    independent transcription of the standard)."""
    from pydicom.sr._concepts_dict import concepts

    out: dict[str, dict[str, list[int]]] = {}
    for by_code in concepts["SCT"].values():
        for code, (meaning, cids) in by_code.items():
            if cids:
                out.setdefault(code, {})[meaning] = list(cids)
    return out


def test_every_code_and_meaning_is_the_one_dicom_ps3_16_lists() -> None:
    table = _ps3_16_concepts()
    for organ in organs():
        assert organ.code.scheme == "SCT"
        assert organ.code.value in table, organ.name
        meanings = table[organ.code.value]
        assert organ.code.meaning in meanings, organ.name
        listed = {cid for cids in meanings.values() for cid in cids}
        for cid in (int(c) for c in organ.code_cids.split(",")):
            assert cid in listed, (organ.name, cid)
    for code in (*CATEGORY_CODES.values(), *LATERALITY_CODES.values()):
        assert code.meaning in table[code.value]


def test_categories_and_lateralities_are_the_dicom_context_groups() -> None:
    table = _ps3_16_concepts()
    for code in CATEGORY_CODES.values():
        assert 7150 in table[code.value][code.meaning]  # CID 7150 Segmentation Property Categories
    for code in LATERALITY_CODES.values():
        assert 244 in table[code.value][code.meaning]  # CID 244 Laterality


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Kidneys", "kidneys"),
        ("kidney", "kidneys"),
        ("Left Kidney", "kidney_left"),
        ("kidney-r", "kidney_right"),
        ("parotid_l", "parotid_left"),
        ("Salivary", "salivary_glands"),
        ("bone marrow", "red_marrow"),
        ("tumor", "tumour"),
        ("tumour_3", "tumour"),
        ("lesion12", "tumour"),
        ("Lesion-2", "tumour"),
        ("whole body", "body"),
    ],
)
def test_spellings_resolve_to_one_canonical_organ(spelling: str, canonical: str) -> None:
    assert get_organ(spelling).name == canonical


def test_numbered_instances_only_for_numbered_organs_and_unknown_names_are_none() -> None:
    assert find_organ("kidney_2") is None
    assert find_organ("liver_met_1") is None
    assert find_organ("my_region") is None


def test_unknown_organ_is_an_input_error_naming_the_choices() -> None:
    with pytest.raises(InputError) as caught:
        get_organ("spleeen")
    message = str(caught.value)
    assert "'spleeen'" in message and "did you mean 'spleen'" in message
    for name in ("kidneys", "liver", "salivary_glands", "tumour"):
        assert name in message


def test_an_alias_names_one_organ_only() -> None:
    seen: dict[str, str] = {}
    for organ in organs():
        for key in (organ.name, *organ.aliases):
            assert seen.setdefault(key, organ.name) == organ.name, key


def test_paired_organs_have_a_left_and_a_right_part_coded_like_the_whole() -> None:
    paired = [o for o in organs() if o.paired]
    assert {o.name for o in paired} >= {"kidneys", "parotids", "submandibulars", "lacrimal_glands", "lungs"}
    for organ in paired:
        assert organ.laterality is Laterality.BILATERAL
        leaves = leaf_parts(organ.name)
        sides = {leaf.laterality for leaf in leaves}
        assert sides == {Laterality.LEFT, Laterality.RIGHT}, organ.name
        if all(get_organ(p).parts == () for p in organ.parts):
            assert all(leaf.code == organ.code for leaf in leaves), organ.name
    assert get_organ("kidney_left").part_of == "kidneys"
    assert get_organ("kidney_left").laterality_code == LATERALITY_CODES[Laterality.LEFT]
    assert is_part_of("parotid_right", "salivary_glands")
    assert not is_part_of("kidney_left", "salivary_glands")
    assert get_organ("liver").laterality is None and not get_organ("liver").paired


def test_tumour_is_a_morphologically_abnormal_structure() -> None:
    tumour = get_organ("tumour")
    assert tumour.is_tumour
    assert tumour.category_code.value == "49755003"
    assert not any(o.is_tumour for o in organs() if o.name != "tumour")


def test_srgb_to_cielab_matches_the_published_value_of_srgb_red() -> None:
    """sRGB (255, 0, 0) is L* 53.24, a* 80.09, b* 67.20 under D65 (Lindbloom's reference calculator,
    brucelindbloom.com, from the CIE 15 formulas)."""
    lightness, a_star, b_star = srgb_to_cielab((255, 0, 0))
    assert lightness == pytest.approx(53.24, abs=0.01)
    assert a_star == pytest.approx(80.09, abs=0.01)
    assert b_star == pytest.approx(67.20, abs=0.01)
    assert srgb_to_cielab((255, 255, 255)) == pytest.approx((100.0, 0.0, 0.0), abs=1e-2)


def test_dicom_cielab_scaling_matches_highdicom_for_every_organ_colour() -> None:
    """highdicom (an independent implementation of DICOM PS3.3 C.10.7.1.1, with the 4-digit sRGB matrix)
    gives the same encoded value within 8 units of 65535 (0.012 in L*, 0.03 in a* and b*)."""
    from highdicom.color import CIELabColor

    assert dicom_cielab((255, 255, 255)) == (65535, 32896, 32896)  # L* 100, a* = b* = 0 by hand
    for organ in organs():
        expected = CIELabColor.from_rgb(*organ.display_rgb).value
        assert all(abs(a - b) <= 8 for a, b in zip(organ.display_cielab, expected, strict=True)), organ.name
    assert get_organ("kidneys").display_hex == "#b96653"


def test_names_are_in_file_order_and_unique() -> None:
    names = organ_names()
    assert names[0] == "kidneys" and len(set(names)) == len(names)
