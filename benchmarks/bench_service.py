"""Throughput and latency of the traceability service over real HTTP, quiet and under a password attack.

Starts ``theradose serve`` (uvicorn) on 127.0.0.1 against a fresh SQLite file (or ``--db URL``) with
the production Argon2id cost, then

1. drives the main endpoints with ``--concurrency`` client threads, ``--requests`` requests each, and
   prints requests/s, p50 and p99 with the ratio to ``GET /health`` in the same run (the baseline: HTTP
   and framework without authentication or database);
2. measures the latency of writes (``POST /patients`` and ``POST /batches`` from
   ``--writers`` threads) quiet, then while ``--attackers`` clients send wrong passwords to
   ``/auth/login`` as fast as the server answers, in two attacks:

   * ``8 clients``: each attacker from its own loopback address (127.0.0.10, .11, ...), cycling
     through the real account names and unknown ones; throttling by account and by address stops them;
   * ``rotating addresses``: every attempt from a new loopback address and a new unknown name (a
     botnet spraying), so no throttle engages and every attempt costs an Argon2id check: only the
     hashing threads (half the CPUs, lowest priority), hashing outside the writers' lock and the
     delayed refusals protect the writes (a stress case beyond the goal);
   The phases alternate for ``--rounds`` rounds and are pooled per phase, so that the drift of a shared
   machine hits each alike; a warm-up phase is written first and not counted (the accounts attacked by
   name stay locked from round to round, as in a long attack). The goal: p99 of the writes while 8
   clients send wrong passwords < 2 x the quiet p99 (ratio printed).

Usage::

    PYTHONPATH=src python benchmarks/bench_service.py [--requests 400] [--concurrency 8] [--db URL]
        [--writes 200] [--writers 2] [--attackers 8] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROLES = {
    "pharmacist": "bench-pharmacist-pw",
    "physician": "bench-physician-pw",
    "qp": "bench-qp-pw",
    "physicist": "bench-physicist-pw",
}
#: Master key of the benchmark server (given as $THERADOSE_SECRET_KEY).
BENCH_KEY = "benchmark-master-key-not-for-production"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _prepare(db: str) -> None:
    import contextlib
    import io

    from theradose.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        main(["db", "upgrade", "--db", db, "--json"])
        for role, password in ROLES.items():
            os.environ["THERADOSE_PASSWORD"] = password
            # "qp": a second pharmacist, the qualified person who releases (four-eyes with the QC recorder)
            main(
                ["users", "add", role, "--role", "pharmacist" if role == "qp" else role, "--db", db, "--json"]
            )
    os.environ.pop("THERADOSE_PASSWORD", None)


def _stats(latencies: list[float], wall: float) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3,
    }


def _run(
    n: int, concurrency: int, make_call: Callable[[httpx.Client], Callable[[int], httpx.Response]], base: str
) -> dict[str, float]:
    latencies, wall = _run_raw(n, concurrency, make_call, base)
    return _stats(latencies, wall)


def _run_raw(
    n: int, concurrency: int, make_call: Callable[[httpx.Client], Callable[[int], httpx.Response]], base: str
) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(n))
    failures = []

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
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
                        failures.append((response.status_code, response.text[:200]))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0]}")
    return latencies, wall


class Attack:
    """``n`` threads sending wrong passwords until stopped; counts the answers."""

    def __init__(self, base_port: int, n: int, *, rotate: bool) -> None:
        self.port = base_port
        self.n = n
        self.rotate = rotate
        self.stop = threading.Event()
        self.answers: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._attacker, args=(i,)) for i in range(n)]
        self._addresses = itertools.count()

    def _attacker(self, index: int) -> None:
        names = itertools.cycle([*ROLES, f"ghost{index}", "admin", f"nobody{index}"])
        client = None if self.rotate else self._client(f"127.0.0.{10 + index}")
        try:
            while not self.stop.is_set():
                if self.rotate:  # a new address and a new name for every attempt
                    k = next(self._addresses)
                    address = f"127.{1 + k // 65025 % 250}.{1 + k // 255 % 255}.{1 + k % 255}"
                    with self._client(address) as one:
                        code = self._try(one, f"spray{k}")
                else:
                    assert client is not None
                    code = self._try(client, next(names))
                with self.lock:
                    self.answers[code] += 1
        finally:
            if client is not None:
                client.close()

    def _client(self, address: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120, transport=transport)

    @staticmethod
    def _try(client: httpx.Client, username: str) -> int:
        try:
            r = client.post("/auth/login", json={"username": username, "password": "not-the-password"})
        except httpx.TransportError:
            return 0
        return r.status_code

    def __enter__(self) -> Attack:
        for t in self.threads:
            t.start()
        time.sleep(2.0)  # let the attack reach its steady state
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def _writes(
    base: str,
    headers: dict[str, dict[str, str]],
    n: int,
    writers: int,
    tag: str,
    new_batch: Callable[[str], dict[str, object]],
) -> tuple[list[float], float]:
    """``n`` writes, alternately a new batch (pharmacist) and a new patient (physician)."""

    def make(cl: httpx.Client) -> Callable[[int], httpx.Response]:
        def call(i: int) -> httpx.Response:
            if i % 2:
                return cl.post("/batches", json=new_batch(f"{tag}-{i}"), headers=headers["pharmacist"])
            return cl.post(
                "/patients",
                json={"family_name": "W", "mrn": f"{tag}-{i}", "birth_date": "1950-03-14"},
                headers=headers["physician"],
            )

        return call

    return _run_raw(n, writers, make, base)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint (part 1)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (part 1)")
    parser.add_argument("--writes", type=int, default=200, help="writes per phase (part 2)")
    parser.add_argument("--writers", type=int, default=2, help="writer threads (part 2)")
    parser.add_argument("--attackers", type=int, default=8, help="attacking clients (part 2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of quiet/attacked phases (part 2)")
    parser.add_argument("--skip-endpoints", action="store_true", help="only part 2")
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    os.environ.pop("THERADOSE_KEY_FILE", None)
    os.environ["THERADOSE_SECRET_KEY"] = BENCH_KEY
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
    now = datetime.now(UTC)
    results: dict[str, dict[str, float]] = {}
    attack_results: dict[str, dict[str, object]] = {}
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
        with httpx.Client(base_url=base, timeout=120) as c:
            tokens = {}
            for role, password in ROLES.items():
                r = c.post("/auth/login", json={"username": role, "password": password})
                r.raise_for_status()
                tokens[role] = {"Authorization": f"Bearer {r.json()['token']}"}
            ph = tokens["pharmacist"]
            doc = tokens["physician"]

            def created(r: httpx.Response) -> dict[str, object]:
                if r.status_code not in (200, 201):
                    raise RuntimeError(
                        f"setup {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
                    )
                return dict(r.json())

            pseudonym = created(
                c.post(
                    "/patients",
                    json={"family_name": "Bench", "mrn": "B-1", "birth_date": "1950-03-14"},
                    headers=doc,
                )
            )["pseudonym"]
            rx = created(
                c.post(
                    "/prescriptions",
                    headers=doc,
                    json={
                        "patient": pseudonym,
                        "radiopharmaceutical": "[177Lu]Lu-PSMA-617",
                        "prescribed_activity_mbq": 7400.0,
                        "plan_id": "BENCH",
                        "cycle": 1,
                    },
                )
            )["id"]
            created(
                c.post(
                    "/signatures",
                    headers=doc,
                    json={"record_type": "prescription", "record_id": rx, "meaning": "approved",
                          "password": ROLES["physician"]},
                )
            )  # fmt: skip
            calibrator = created(
                c.post("/calibrators", json={"name": "CRC-BENCH"}, headers=tokens["physicist"])
            )["id"]

            def new_batch(lot: str) -> dict[str, object]:
                return {
                    "product": "[177Lu]Lu-PSMA-617",
                    "carrier_added": False,
                    "lot": lot,
                    "activity_mbq": 30000.0,
                    "volume_ml": 30.0,
                    "reference_time": _iso(now - timedelta(days=1)),
                    "expiry_time": _iso(now + timedelta(days=2)),
                }

            batch = created(c.post("/batches", headers=ph, json=new_batch("BENCH")))["id"]
            for qc in ({"test": "radiochemical_purity", "value": 98.7}, {"test": "ph", "value": 5.5}):
                created(c.post(f"/batches/{batch}/qc", json=qc, headers=ph))
            created(c.post(f"/batches/{batch}/release", json={"password": ROLES["qp"]}, headers=tokens["qp"]))
            # one dispensing per directive: the dispensing is read, not written, in the loops below
            created(
                c.post(
                    f"/batches/{batch}/dispensings",
                    headers=ph,
                    json={
                        "prescription_id": rx,
                        "activity_mbq": 7400.0,
                        "planned_time": _iso(now + timedelta(hours=2)),
                        "draw_time": _iso(now + timedelta(hours=1)),
                        "calibrator_id": calibrator,
                    },
                )
            )

        if not args.skip_endpoints:
            endpoints: dict[str, Callable[[httpx.Client], Callable[[int], httpx.Response]]] = {
                "GET /health (baseline)": lambda cl: lambda i: cl.get("/health"),
                "GET /batches/{id}": lambda cl: lambda i: cl.get(f"/batches/{batch}", headers=ph),
                "GET /worklist": lambda cl: lambda i: cl.get("/worklist", headers=ph),
                "POST /batches": lambda cl: (
                    lambda i: cl.post("/batches", json=new_batch(f"P1-{i}"), headers=ph)
                ),
                "POST /patients": lambda cl: (
                    lambda i: cl.post(
                        "/patients",
                        json={"family_name": "P", "mrn": f"BENCH-{i}", "birth_date": "1950-03-14"},
                        headers=doc,
                    )
                ),
            }
            results = {
                name: _run(args.requests, args.concurrency, make, base) for name, make in endpoints.items()
            }

        heads = {"pharmacist": ph, "physician": doc}
        _writes(base, heads, max(50, args.writes // 4), args.writers, "W", new_batch)  # warm-up
        # Rounds of quiet / attacked phases, pooled per phase: the machine's drift hits each alike.
        pooled: dict[str, list[float]] = {}
        walls: dict[str, float] = {}
        answers: dict[str, Counter[int]] = {}
        phases = (("quiet", None), (f"{args.attackers} clients", False), ("rotating addresses", True))
        for r in range(args.rounds):
            for label, rotate in phases:
                tag = f"{label[:1].upper()}{r}"
                if rotate is None:
                    latencies, wall = _writes(base, heads, args.writes, args.writers, tag, new_batch)
                else:
                    with Attack(port, args.attackers, rotate=rotate) as attack:
                        latencies, wall = _writes(base, heads, args.writes, args.writers, tag, new_batch)
                    answers.setdefault(label, Counter()).update(attack.answers)
                pooled.setdefault(label, []).extend(latencies)
                walls[label] = walls.get(label, 0.0) + wall
        quiet = _stats(pooled["quiet"], walls["quiet"])
        for label, _rotate in phases:
            stats = _stats(pooled[label], walls[label])
            attack_results[label] = {
                **stats,
                "p50_ratio_vs_quiet": stats["p50_ms"] / quiet["p50_ms"],
                "p99_ratio_vs_quiet": stats["p99_ms"] / quiet["p99_ms"],
                "attacker_answers": dict(sorted(answers.get(label, Counter()).items())),
            }
    finally:
        server.terminate()
        server.wait(timeout=60)
        tmp.cleanup()

    if results:
        baseline = results["GET /health (baseline)"]
        for stats in results.values():
            stats["throughput_ratio_vs_health"] = stats["requests_per_s"] / baseline["requests_per_s"]
            stats["p99_ratio_vs_health"] = stats["p99_ms"] / baseline["p99_ms"]
    load = os.getloadavg()
    report = {
        "database": "sqlite" if db.startswith("sqlite") else "postgresql",
        "requests_per_endpoint": args.requests,
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "results": results,
        "writes_under_password_attack": {
            "writes_per_phase": args.writes,
            "rounds": args.rounds,
            "writers": args.writers,
            "attackers": args.attackers,
            **attack_results,
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"theradose service benchmark: {report['database']}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    if results:
        print(f"\n{args.requests} requests/endpoint, {args.concurrency} clients")
        print(
            f"{'endpoint':34s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} "
            f"{'rps/health':>10s} {'p99/health':>10s}"
        )
        for name, s in results.items():
            print(
                f"{name:34s} {s['requests_per_s']:8.1f} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} "
                f"{s['throughput_ratio_vs_health']:10.3f} {s['p99_ratio_vs_health']:10.2f}"
            )
    print(
        f"\nwrites (POST /patients, POST /batches) from {args.writers} clients, {args.writes} per phase "
        f"x {args.rounds} rounds; {args.attackers} attackers sending wrong passwords (goal: p99 ratio < 2)"
    )
    print(f"{'phase':22s} {'p50 ms':>8s} {'p99 ms':>8s} {'p50 x':>7s} {'p99 x':>7s}  attacker answers")
    for label, s in attack_results.items():
        print(
            f"{label:22s} {s['p50_ms']:8.1f} {s['p99_ms']:8.1f} "
            f"{s.get('p50_ratio_vs_quiet', 1.0):7.2f} {s.get('p99_ratio_vs_quiet', 1.0):7.2f}  "
            f"{s.get('attacker_answers', '')}"
        )


if __name__ == "__main__":
    main()
