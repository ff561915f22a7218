"""Shipped protocols load, every number is cited, and user protocol files are validated."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from theradose.errors import InputError
from theradose.planning import available_protocols, load_protocol
from theradose.planning.protocols import PROTOCOL_DIR

DOTATATE = (PROTOCOL_DIR / "dotatate.toml").read_text(encoding="utf-8")


def _numbers_without_citation(node: Any, path: str = "") -> list[str]:
    missing = []
    if isinstance(node, dict):
        if "value" in node:
            if not str(node.get("citation", "")).strip():
                missing.append(path)
            return missing
        for key, value in node.items():
            missing += _numbers_without_citation(value, f"{path}.{key}")
    elif isinstance(node, (int, float)) and not isinstance(node, bool) and path != ".schema_version":
        missing.append(path)
    return missing


def test_shipped_protocols() -> None:
    assert set(available_protocols()) >= {"psma", "dotatate"}
    psma = load_protocol("psma")
    assert psma.nuclide == "Lu-177"
    assert psma.standard_activity_mbq.value == 7400.0 and psma.max_cycles.value == 6
    assert psma.interval_weeks.value == 6
    dotatate = load_protocol("dotatate")
    assert dotatate.max_cycles.value == 4 and dotatate.interval_weeks.value == 8
    kidneys = dotatate.organ("kidney")
    # Bodei et al. 2008: 40 Gy BED without, 28 Gy with risk factors
    assert kidneys.bed_limit_for(()).value == 40.0  # type: ignore[union-attr]
    assert kidneys.bed_limit_for(("diabetes",)).value == 28.0  # type: ignore[union-attr]
    assert kidneys.dose_limit_gy is not None and kidneys.dose_limit_gy.value == 23.0
    assert dotatate.organ("red_marrow").dose_limit_gy.value == 2.0  # type: ignore[union-attr]
    for organ in ("salivary_glands", "lacrimal_glands", "liver"):
        assert "external-beam" in dotatate.organ(organ).dose_limit_gy.citation  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["psma", "dotatate"])
def test_every_number_has_a_citation(name: str) -> None:
    data = tomllib.loads((PROTOCOL_DIR / f"{name}.toml").read_text(encoding="utf-8"))
    assert _numbers_without_citation(data) == []


def test_user_protocol_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        DOTATATE.replace('name = "dotatate"', 'name = "mine"').replace(
            "max_mbq = { value = 7400.0,", 'max_mbq = { value = 11100.0, citation = "local protocol" } #'
        )
    )
    protocol = load_protocol(path)
    assert protocol.name == "mine" and protocol.max_activity_mbq.value == 11100.0
    assert protocol.source == str(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("schema_version = 2", "schema_version = 7", "schema_version must be 2"),
        ("schema_version = 2", "schema_version = 1", "schema_version 1 protocols are no longer read"),
        (
            'citation = "Emami et al. 1991 IJROBP 21:109, TD5/5 whole kidney 23 Gy (external-beam derived)"',
            'citation = ""',
            r"organs.kidneys.dose_limit_gy.citation must be a non-empty string",
        ),
        (
            "dose_limit_gy = { value = 2.0,",
            "dose_limit_gy = { value = -2.0,",
            r"organs.red_marrow.dose_limit_gy.value must be > 0",
        ),
        (
            "max_mbq = { value = 7400.0,",
            "max_mbq = { value = 3000.0,",
            "activity.min_mbq <= activity.standard_mbq <= activity.max_mbq",
        ),
        (
            "max_cycles = { value = 4,",
            "max_cycles = { value = 4.5,",
            "schedule.max_cycles must be a whole number",
        ),
        (
            "[organs.lacrimal_glands]\n",
            '[organs.lacrimal_glands]\ncolour = "red"\n',
            "organs.lacrimal_glands.colour is not a known key",
        ),
        (
            "[organs.liver]\n",
            '[organs.spleen]\nbed_limit_gy = { value = 10.0, citation = "x" }\n\n[organs.liver]\n',
            "organs.spleen.bed_limit_gy needs linear-quadratic parameters, but tissue 'spleen' has none",
        ),
        (
            "[organs.liver]\n",
            "[organs.livr]\n",
            r"organs.livr in .*organ 'livr' is not in the organ registry",
        ),
        (
            "[organs.liver]\n",
            '[organs.normal_liver]\ndose_limit_gy = { value = 30.0, citation = "x" }\n\n[organs.liver]\n',
            "organs names 'liver' twice",
        ),
        ('tissue = "tumour"', 'tissue = "tumer"', "tumour.tissue in .*unknown tissue 'tumer'"),
        (
            'precycle_rules = "precycle_dotatate.toml"',
            'precycle_rules = "nope.toml"',
            "precycle_rules 'nope.toml'",
        ),
        (
            'product = "lu177-dotatate"',
            'product = "lu177-dotatoc"',
            "product 'lu177-dotatoc' in .*not in the product registry",
        ),
        ('product = "lu177-dotatate"', "product = 1", "product must be a product code"),
        ('stop_on = ["progressive_disease"]', 'stop_on = ["cured"]', "response.stop_on must be a list"),
        ("[schedule]\n", "[schedule]\nmax_cycles_typo = 1\n", "schedule.max_cycles_typo is not a known key"),
        ("title = ", 'titel = "x"\ntitle = ', "titel is not a known key"),
        ("[tumour]\n", "[tumour]\nmax_cycles = 1\n[tumour.x]\n", "tumour.max_cycles is not a known key"),
        ('name = "dotatate"', 'name = "dotatate"\nname = "again"', None),  # duplicate key
        (
            "interval_weeks = {",
            "interval_weeks = 8 #",
            "schedule.interval_weeks must be a table",
        ),
        ('nuclide = "Lu-177"\n', "", "nuclide must be a non-empty string"),
    ],
)
def test_protocol_validation_errors_name_the_key(
    tmp_path: Path, old: str, new: str, message: str | None
) -> None:
    assert old in DOTATATE
    path = tmp_path / "bad.toml"
    path.write_text(DOTATATE.replace(old, new, 1))
    if message is None:  # duplicate key → TOML syntax error
        with pytest.raises(InputError, match="not valid TOML"):
            load_protocol(path)
        return
    with pytest.raises(InputError, match=message) as info:
        load_protocol(path)
    assert "\n" not in str(info.value)


def test_unknown_protocol_name() -> None:
    with pytest.raises(InputError, match="neither a shipped protocol"):
        load_protocol("psma-999")


def test_products_name_their_protocol_and_unknown_products_are_refused() -> None:
    """Every spelling of a product finds its protocol; an unknown product is an error naming the products
    (never a fallback to another protocol's rules)."""
    from theradose.planning.protocols import find_protocol_for_product, protocol_for_product

    assert protocol_for_product("[177Lu]Lu-PSMA-617").name == "psma"
    assert protocol_for_product("177Lu-PSMA-617").name == "psma"
    assert protocol_for_product("Pluvicto").name == "psma"
    assert protocol_for_product("Lutetium Lu 177 dotatate").name == "dotatate"
    assert protocol_for_product("Lutathera").name == "dotatate"
    assert find_protocol_for_product("177Lu-DOTATOC") is None
    assert find_protocol_for_product("177Lu-PSMA-I&T") is None
    with pytest.raises(InputError) as info:
        protocol_for_product("177Lu-DOTATOC")
    assert "[177Lu]Lu-PSMA-617 (psma)" in str(info.value) and "(dotatate)" in str(info.value)


def test_radiobiology_and_rules_come_from_the_registries() -> None:
    from theradose.tissues import get_tissue

    for name in available_protocols():
        protocol = load_protocol(name)
        assert protocol.tumour.tissue == "tumour"
        assert protocol.tumour.alpha_beta_gy is not None
        assert protocol.tumour.alpha_beta_gy.value == get_tissue("tumour").alpha_beta_gy
        kidneys = protocol.organ("kidneys")
        assert kidneys.alpha_beta_gy is not None and kidneys.alpha_beta_gy.value == 2.6
        assert "tissue registry" in kidneys.alpha_beta_gy.citation
        assert protocol.precycle_rules is not None and protocol.precycle_rules.name == f"precycle_{name}.toml"
        assert kidneys.matches("Kidneys_Total") and not kidneys.matches("kidney_left")


def test_unknown_organ_lists_known() -> None:
    with pytest.raises(InputError, match="use one of kidneys, red_marrow"):
        load_protocol("psma").organ("spleen")
