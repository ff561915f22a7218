"""The command-line shell: help is fast and lists groups; bad input exits 2 with one line."""

import pytest

from cli_runner import run_cli as run


def test_help_lists_groups() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "nuclide" in result.stdout
    assert "kinetics" in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run("no-such-group")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_tables_keep_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """Cell text such as a citation key "[VISION]" is printed literally, not read as rich markup."""
    from theradose.cli._output import print_table

    print_table("t [x]", ["rule"], [["uptake > liver [VISION]"]])
    out = capsys.readouterr().out
    assert "[VISION]" in out and "t [x]" in out
