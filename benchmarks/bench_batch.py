"""Batch throughput: studies per minute with 1 and 2 Dask workers, and the scaling ratio (goal ≥ 1.8×).

Run: ``PYTHONPATH=src python benchmarks/bench_batch.py [--studies N]``.

What runs: each study is a synthetic-cohort study file (:mod:`theradose.population.cohort`) executed by
the default runner — per region (kidneys, salivary glands, tumour) a mono-exponential fit of a 4-point
time–activity curve (:func:`theradose.kinetics.fit_tac`), integration, local-deposition dose and BED, then
a voxel stage on a CI-size grid (default 48³ voxels of 6 mm, the regions as spheres) with the Monte Carlo
photon engine (:func:`theradose.dosimetry.engines.dose_rate_or_dose`, ``engine="mc"``, one thread) — and
the outputs written to ``<out>/<study_id>/``. ``--kind pipeline`` runs instead virtual 177Lu-PSMA
patients (:func:`theradose.population.cohort.write_virtual_patient_studies`, ``--grid 32`` for CI size)
through the study pipeline (``theradose run``), with the same batch code. ``--engine local`` measures
the batch overhead alone. Each
configuration starts its own LocalCluster (single-threaded worker processes); cluster start-up and one
warm-up study per worker are excluded from the timing, so the figure is the steady throughput of the
batch loop (submit, run, record, write). The 1-worker run is the baseline of the ratio, measured in the
same process.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path


def _throughput(studies: list[Path], out: Path, workers: int) -> tuple[float, float, float]:
    """Studies per minute for one batch of ``studies`` on a fresh LocalCluster of ``workers``, the mean
    wall time of one study inside its worker (s), and the mean CPU time of the worker process per study."""
    from distributed import Client, LocalCluster

    from theradose.population.batch import run_batch

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            dashboard_address="127.0.0.1:0",
            memory_limit="2GiB",
            silence_logs=logging.ERROR,
        ) as cl,
        Client(cl) as client,
    ):
        address = cl.scheduler_address
        client.wait_for_workers(workers)
        # warm-up: import the scientific stack in every worker
        run_batch(studies[:workers], out / "warmup", scheduler=address, force=True)
        started = time.perf_counter()
        result = run_batch(studies, out / f"w{workers}", scheduler=address, force=True)
        elapsed = time.perf_counter() - started
    assert not result.failed, result.failed
    task_s = sum(r.elapsed_s for r in result.records) / len(result.records)
    cpu_s = sum(r.cpu_s for r in result.records) / len(result.records)
    return len(studies) / elapsed * 60.0, task_s, cpu_s


def _pipeline(n_studies: int, grid: int) -> None:
    """Virtual 177Lu-PSMA patients (SPECT/CT at 4 time points on a ``grid`` matrix) through the pipeline."""
    try:
        from theradose.population.cohort import write_virtual_patient_studies
    except ImportError:
        raise SystemExit("--kind pipeline needs theradose.pipeline and theradose.phantoms") from None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        studies = list(write_virtual_patient_studies(n_studies, root / "patients", seed=1, grid=grid))
        one = _throughput(studies, root / "out", 1)
        two = _throughput(studies, root / "out", 2)
    print(f"CPUs visible: {os.cpu_count()}  studies: {len(studies)} virtual patients, grid {grid}, pipeline")
    _report(one, two)


def _report(one: tuple[float, float, float], two: tuple[float, float, float]) -> None:
    for label, r in (("1 worker ", one), ("2 workers", two)):
        print(
            f"{label}: {r[0]:8.1f} studies/min   ({r[1]:.3f} s per study inside the worker, "
            f"{r[2]:.3f} s CPU: {r[2] / r[1]:.2f} cores busy)"
        )
    print(f"scaling ratio 2/1: {two[0] / one[0]:.2f}x (goal >= 1.8x)")
    # With N workers and no batch overhead the ratio is N x (time per study with 1 worker / with 2):
    # a per-study time that grows with the worker count means the CPUs are shared, not a batch bottleneck.
    print(f"ratio expected from the per-study times alone: {2 * one[1] / two[1]:.2f}x")
    try:
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    except OSError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=40)
    parser.add_argument("--grid", type=int, default=48)
    parser.add_argument("--engine", choices=("local", "vsv", "mc"), default="mc")
    parser.add_argument("--photons", type=int, default=500_000)
    parser.add_argument(
        "--kind",
        choices=("synthetic", "pipeline"),
        default="synthetic",
        help="pipeline: virtual patients (theradose.phantoms, --grid) through the study pipeline",
    )
    args = parser.parse_args()
    if args.kind == "pipeline":
        _pipeline(args.studies, args.grid)
        return
    from theradose.population.cohort import generate_cohort, write_study_files

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cohort = generate_cohort(max(args.studies, 10), seed=1).head(args.studies)
        voxel = {"grid": args.grid, "voxel_mm": 6.0, "engine": args.engine, "mc_photons": args.photons}
        written = write_study_files(cohort, root / "studies", seed=2, voxel=voxel)
        studies = list(written.studies)
        one = _throughput(studies, root / "out", 1)
        two = _throughput(studies, root / "out", 2)
    print(
        f"CPUs visible: {os.cpu_count()}  studies: {len(studies)} synthetic (3 regions, TAC fits + "
        f"{args.grid}^3 voxel dose, engine {args.engine}, {args.photons} photons)"
    )
    _report(one, two)


if __name__ == "__main__":
    main()
