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
        ("schema_version = 1", "schema_version = 7", "schema_version must be 1"),
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
            'aliases = ["lacrimal"]',
            'aliases = ["lacrimal"]\ncolour = "red"',
            "organs.lacrimal_glands.colour is not a known key",
        ),
        (
            'alpha_beta_gy = { value = 2.6, citation = "Wessels et al. 2008 JNM 49:1884, '
            'kidney alpha/beta 2.6 Gy" }\n',
            "",
            "organs.kidneys.bed_limit_gy needs organs.kidneys.alpha_beta_gy",
        ),
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


def test_unknown_organ_lists_known() -> None:
    with pytest.raises(InputError, match="use one of kidneys, red_marrow"):
        load_protocol("psma").organ("spleen")
