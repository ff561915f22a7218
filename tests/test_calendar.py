"""The suite does not depend on the calendar.

Two guards: (1) the test folders whose code under test reads the wall clock (the service checks expiry,
ordering against now and "today") hold no literal calendar date from 2000 on — their times come from
``tests/clock.py`` — unless a file states at the top that its dates are data the clock never sees;
(2) the service workflow tests pass with the wall clock moved five years ahead under libfaketime, which
fails the moment a fixture date expires.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from clock import now_utc

TESTS = Path(__file__).parent
ROOT = TESTS.parent
#: Folders whose code under test compares times with the wall clock.
CLOCK_READING = (TESTS / "service",)
#: A file carrying this line keeps its literal dates (reader/writer round trips of fixed DICOM content).
DATA_ONLY = "# calendar: the dates in this file are data"
#: ISO dates (2026-11-22), DICOM DA/DT values ("20261122", "20261122080000") and datetime/date calls.
DATE_LITERAL = re.compile(
    r"(?<![\d.])20\d\d-[01]\d-[0-3]\d(?!\d)"
    r"|[\"']20\d\d[01]\d[0-3]\d(?:\d{2,6}(?:\.\d+)?)?(?:[+-]\d{4})?[\"']"
    r"|\b(?:datetime|date)\(\s*20\d\d\s*,"
)


def literal_dates(text: str) -> list[tuple[int, str]]:
    """(line number, match) of every literal calendar date from the year 2000 on in ``text``."""
    return [
        (number, match.group(0))
        for number, line in enumerate(text.splitlines(), start=1)
        for match in DATE_LITERAL.finditer(line)
    ]


def test_the_pattern_finds_the_forms_that_expire() -> None:
    found = literal_dates(
        'a = "2026-11-22T08:00:00Z"\n'
        'b = "20261123110000.250000+0100"\n'
        "c = datetime(2026, 11, 23, tzinfo=UTC)\n"
        'd = "1950-02-03"  # a birth date\n'
        "e = iso(days_from_now(-1))\n"
        'f = "1.2.826.0.1.3680043.8.498.20261123"\n'
    )
    assert [line for line, _ in found] == [1, 2, 3]


def test_no_literal_dates_where_the_code_reads_the_clock() -> None:
    offenders = []
    for folder in CLOCK_READING:
        for path in sorted(folder.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if DATA_ONLY in text:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{n}: {m}" for n, m in literal_dates(text)]
    assert offenders == [], (
        "literal dates in tests whose code reads the clock; compute them with tests/clock.py:\n"
        + "\n".join(offenders)
    )


@pytest.mark.slow
def test_service_workflow_passes_five_years_ahead(tmp_path: Path) -> None:
    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.fail("faketime not found: install Debian faketime (scripts/setup-system.sh)", pytrace=False)
    ahead = (now_utc() + timedelta(days=5 * 365 + 17)).strftime("%Y-%m-%d %H:%M:%S")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "FAKETIME"))}
    env.pop("LD_PRELOAD", None)
    out = subprocess.run(
        [
            faketime,
            ahead,
            "bash",
            str(ROOT / "scripts" / "run-tests.sh"),
            "tests/service/test_workflow.py",
            "tests/service/test_validation.py",
            "-k",
            "not postgresql",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # generous: the nested run may share the machine with the rest of the suite
        check=False,
    )
    summary = (out.stdout + out.stderr)[-3000:]
    assert out.returncode == 0, f"at {ahead}:\n{summary}"
    assert "passed" in summary and "failed" not in summary
