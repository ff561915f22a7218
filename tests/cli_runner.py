"""Run the ``theradose`` command line in tests: in a fresh interpreter (exit codes and streams exactly as a
user sees them) or in this process (fast)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m theradose ARGS`` in a fresh process with this checkout's sources first on the path."""
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "theradose", *args], capture_output=True, text=True, env=env)


def run_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``theradose.cli.main(ARGS)`` in this process; same exit code and streams as :func:`run_cli`."""
    from theradose.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = main(list(args))
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
