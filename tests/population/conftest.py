"""Fixtures: a real Dask scheduler and two workers on loopback, a small batch of synthetic studies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subprocess_env() -> dict[str, str]:
    """Environment of child processes: this checkout's src first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a process group we started (the worker's nanny and its child), then kill if needed."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    else:
        try:  # the leader exited; make sure no child of its group survives
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Address of a `dask scheduler` with two single-threaded `dask worker` processes (1 GiB each)."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask-logs")
    env = subprocess_env()
    procs: list[subprocess.Popen[bytes]] = []
    log_files = [(logs / name).open("wb") for name in ("scheduler.log", "worker0.log", "worker1.log")]
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dask",
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log_files[0],
                start_new_session=True,
            )
        )
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dask",
                        "worker",
                        address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--memory-limit",
                        "1GiB",
                        "--no-dashboard",
                        "--death-timeout",
                        "60",
                        "--name",
                        f"w{i}",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log_files[1 + i],
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 90
        with Client(address, timeout=60) as client:
            while len(client.scheduler_info(n_workers=-1)["workers"]) < 2:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"Dask cluster did not start; logs in {logs}")
                time.sleep(0.2)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for fh in log_files:
            fh.close()


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    """Six synthetic patients as study files (cohort frame, written files)."""
    from theradose.population.cohort import generate_cohort, write_study_files

    cohort = generate_cohort(10, seed=11).head(6)
    written = write_study_files(cohort, tmp_path_factory.mktemp("cohort") / "studies", seed=12)
    return cohort, written
