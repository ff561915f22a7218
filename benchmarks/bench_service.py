"""Throughput and latency of the traceability service's main endpoints over real HTTP.

Starts ``theradose serve`` (uvicorn) on 127.0.0.1 against a fresh SQLite file (or ``--db URL``), then
drives it with ``--concurrency`` client threads, ``--requests`` requests per endpoint. Prints requests/s,
p50 and p99 latency per endpoint and the ratio to the trivial ``GET /health`` endpoint measured in the
same run (the baseline: HTTP + framework overhead without auth or database).

Usage::

    PYTHONPATH=src python benchmarks/bench_service.py [--requests 400] [--concurrency 8] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROLES = {"pharmacist": "bench-pharmacist-pw", "physician": "bench-physician-pw"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(db: str) -> None:
    import contextlib
    import io

    from theradose.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        main(["db", "upgrade", "--db", db, "--json"])
        for role, password in ROLES.items():
            os.environ["THERADOSE_PASSWORD"] = password
            main(["users", "add", role, "--role", role, "--db", db, "--json"])
    os.environ.pop("THERADOSE_PASSWORD", None)


def _run(
    n: int, concurrency: int, make_call: Callable[[httpx.Client], Callable[[int], httpx.Response]], base: str
) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(n))
    failures = []

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            call = make_call(client)
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                response = call(i)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if response.status_code >= 400:
                        failures.append(response.status_code)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. HTTP {failures[0]}")
    latencies.sort()
    return {
        "requests_per_s": n / wall,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="theradose-bench-")
    db = args.db or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    _prepare(db)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    server = subprocess.Popen(
        [sys.executable, "-m", "theradose", "serve", "--db", db, "--port", str(port), "--no-upgrade"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=60) as c:
            tokens = {}
            for role, password in ROLES.items():
                token = c.post("/auth/login", json={"username": role, "password": password}).json()["token"]
                tokens[role] = {"Authorization": f"Bearer {token}"}
            ph = tokens["pharmacist"]
            pseudonym = c.post("/patients", json={"family_name": "Bench", "mrn": "B-1"}, headers=ph).json()[
                "pseudonym"
            ]
            rx = c.post(
                "/prescriptions",
                headers=tokens["physician"],
                json={
                    "patient": pseudonym,
                    "radiopharmaceutical": "[177Lu]Lu-PSMA-617",
                    "nuclide": "Lu-177",
                    "prescribed_activity_mbq": 100.0,
                },
            ).json()["id"]
            batch = c.post(
                "/batches",
                headers=ph,
                json={
                    "product": "[177Lu]Lu-PSMA-617",
                    "nuclide": "Lu-177",
                    "lot": "BENCH",
                    "activity_mbq": 1e6,
                    "volume_ml": 1e4,
                    "reference_time": "2026-11-22T08:00:00Z",
                    "expiry_time": "2026-12-01T08:00:00Z",
                },
            ).json()["id"]
            for qc in (
                {"test": "radiochemical_purity", "value": 99, "unit": "%", "lower_limit": 95},
                {"test": "ph", "value": 5, "unit": "pH", "lower_limit": 4.5, "upper_limit": 7},
            ):
                c.post(f"/batches/{batch}/qc", json=qc, headers=ph)
            assert c.post(f"/batches/{batch}/release", json={}, headers=ph).status_code == 200

        dispense = {
            "prescription_id": rx,
            "activity_mbq": 100.0,
            "planned_time": "2026-11-22T10:00:00Z",
            "draw_time": "2026-11-22T09:00:00Z",
        }
        endpoints: dict[str, Callable[[httpx.Client], Callable[[int], httpx.Response]]] = {
            "GET /health (baseline)": lambda cl: lambda i: cl.get("/health"),
            "GET /batches/{id}": lambda cl: lambda i: cl.get(f"/batches/{batch}", headers=ph),
            "GET /worklist": lambda cl: lambda i: cl.get("/worklist", headers=ph),
            "POST /batches/{id}/dispensings": lambda cl: (
                lambda i: cl.post(f"/batches/{batch}/dispensings", json=dispense, headers=ph)
            ),
            "POST /patients": lambda cl: (
                lambda i: cl.post("/patients", json={"family_name": "P", "mrn": f"BENCH-{i}"}, headers=ph)
            ),
        }
        results = {
            name: _run(args.requests, args.concurrency, make, base) for name, make in endpoints.items()
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        tmp.cleanup()

    baseline = results["GET /health (baseline)"]
    for stats in results.values():
        stats["throughput_ratio_vs_health"] = stats["requests_per_s"] / baseline["requests_per_s"]
        stats["p99_ratio_vs_health"] = stats["p99_ms"] / baseline["p99_ms"]
    report = {
        "database": "sqlite" if db.startswith("sqlite") else "postgresql",
        "requests_per_endpoint": args.requests,
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"theradose service benchmark: {report['database']}, {args.requests} requests/endpoint, "
        f"{args.concurrency} clients, {os.cpu_count()} CPUs"
    )
    print(
        f"{'endpoint':34s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'rps/health':>10s} {'p99/health':>10s}"
    )
    for name, s in results.items():
        print(
            f"{name:34s} {s['requests_per_s']:8.1f} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} "
            f"{s['throughput_ratio_vs_health']:10.3f} {s['p99_ratio_vs_health']:10.2f}"
        )


if __name__ == "__main__":
    main()
