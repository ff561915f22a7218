"""Batch dosimetry: many study files as Dask tasks, resumable by content hash.

:func:`run_batch` submits one task per study to a Dask cluster — a :class:`distributed.LocalCluster`
started here (``scheduler="local"``, one single-threaded worker process per ``workers`` with a memory limit
each) or an existing scheduler (``scheduler="tcp://host:8786"``; its workers' memory limits are set where
they are started, ``dask worker --memory-limit``). Each study's results land in ``<out>/<study_id>/``.

* **Failures stay local**: a study that raises is recorded with its error (type + one line) and the batch
  goes on; a worker killed (e.g. past its memory limit) is recorded the same way for the studies it held.
* **Resumable**: the *inputs hash* of a study is the SHA-256 over the study file and every file or folder
  it references (any string value of the TOML that names an existing path relative to the study's
  folder), plus the theradose version; files unchanged in size and modification time since the last run
  reuse their recorded SHA-256 (see :func:`inputs_digest`). A study whose hash matches a completed record in
  ``<out>/.batch/<study_id>.json`` and whose output folder exists is skipped. Records are written as each
  study completes, so an interrupted batch resumes where it stopped.
* ``<out>/batch.json`` summarises the run (written atomically: temporary file + rename).

Study runner: ``run_one(study_path, out_dir) -> dict`` runs in the worker process. The default,
:func:`default_run_one`, sends study files written by :mod:`theradose.population.cohort` (``format =
"theradose-synthetic-study"``) to :func:`~theradose.population.cohort.run_synthetic_study` and every other
study file to the study pipeline (``theradose.pipeline.run.run_study``, imported when used).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import time
import tomllib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theradose.errors import InputError

RunOne = Callable[[str, str], dict[str, Any]]
BATCH_FORMAT = "theradose-batch"
#: Folder under ``--out`` that holds one completion record per study.
RECORDS_DIR = ".batch"
#: Default memory limit of each LocalCluster worker.
DEFAULT_MEMORY_LIMIT = "4GiB"
_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StudyRecord:
    """The outcome of one study in a batch.

    Attributes
    ----------
    study_id : str
        Folder name under ``--out``.
    study : str
        The study file (absolute path).
    inputs_sha256 : str
        Content hash of the study file, the files it references and the theradose version.
    status : {"done", "failed", "skipped"}
    elapsed_s : float
        Wall time of the task (0 for skipped).
    error_type, error : str or None
        For a failure: the exception's class name and its message's first line.
    result : dict
        What the study runner returned (done only).
    worker : str or None
        Address of the Dask worker that ran it.
    cpu_s : float
        CPU time of the worker process during the task (all threads); ``cpu_s / elapsed_s`` above 1 means
        the study used several cores, below 1 that it waited (I/O, or cores shared with other work).
    """

    study_id: str
    study: str
    inputs_sha256: str
    status: str
    elapsed_s: float = 0.0
    error_type: str | None = None
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    cpu_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "study_id": self.study_id,
            "study": self.study,
            "inputs_sha256": self.inputs_sha256,
            "status": self.status,
            "elapsed_s": round(self.elapsed_s, 3),
            "error_type": self.error_type,
            "error": self.error,
            "result": self.result,
            "worker": self.worker,
            "cpu_s": round(self.cpu_s, 3),
        }


@dataclass(frozen=True)
class BatchResult:
    """Summary of :func:`run_batch` (also written as ``batch.json``).

    Attributes
    ----------
    out_dir : Path
    records : tuple of StudyRecord
        One per study, in input order.
    scheduler : str
        ``local`` or the scheduler address.
    workers : int
        Workers the cluster had when the batch started.
    elapsed_s : float
    """

    out_dir: Path
    records: tuple[StudyRecord, ...]
    scheduler: str
    workers: int
    elapsed_s: float

    def _ids(self, status: str) -> list[str]:
        return [r.study_id for r in self.records if r.status == status]

    @property
    def done(self) -> list[str]:
        return self._ids("done")

    @property
    def skipped(self) -> list[str]:
        return self._ids("skipped")

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [
            {"study_id": r.study_id, "study": r.study, "error_type": r.error_type, "error": r.error}
            for r in self.records
            if r.status == "failed"
        ]

    def summary(self) -> dict[str, Any]:
        """The CLI's JSON: ``done``, ``failed`` (with errors), ``skipped``, ``elapsed_s`` and context."""
        return {
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "elapsed_s": round(self.elapsed_s, 3),
            "out": str(self.out_dir),
            "scheduler": self.scheduler,
            "workers": self.workers,
        }


# --------------------------------------------------------------------------------------- study list
def expand_studies(items: Sequence[str] | str) -> list[Path]:
    """Study files from glob patterns, paths, or list files (``.txt``/``.lst``: one path per line).

    Relative paths in a list file are relative to the list file's folder. Duplicates are dropped (first
    occurrence kept).

    Raises
    ------
    InputError
        A pattern that matches nothing, a missing file, or no study at all.
    """
    entries = [items] if isinstance(items, str) else list(items)
    found: list[Path] = []
    for item in entries:
        text = item.strip()
        if not text:
            continue
        path = Path(text).expanduser()
        if path.suffix in {".txt", ".lst"} and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    p = Path(line).expanduser()
                    found.append(p if p.is_absolute() else path.parent / p)
            continue
        if glob.has_magic(text):
            matches = sorted(glob.glob(str(path), recursive=True))
            if not matches:
                raise InputError(f"study pattern {text!r} matches no file: check the glob (quote it)")
            found.extend(Path(m) for m in matches)
            continue
        found.append(path)
    out: list[Path] = []
    seen: set[Path] = set()
    for p in found:
        if not p.is_file():
            raise InputError(f"study file {p} does not exist or is not a file: check the path")
        resolved = p.resolve()
        if resolved not in seen:
            seen.add(resolved)
            out.append(resolved)
    if not out:
        raise InputError("no study files given: pass a glob such as 'studies/*/study.toml' or a list file")
    return out


def study_ids(paths: Sequence[Path]) -> list[str]:
    """Output folder names: the file's stem, or its folder's name when the stem is ``study``.

    Raises
    ------
    InputError
        Two studies that would share a folder.
    """
    ids: list[str] = []
    owner: dict[str, Path] = {}
    for p in paths:
        raw = p.parent.name if p.stem.lower() in {"study", "study_file"} else p.stem
        sid = _ID_CHARS.sub("_", raw).strip("._") or "study"
        if sid in owner:
            raise InputError(
                f"studies {owner[sid]} and {p} would both write to <out>/{sid}: rename one study file"
            )
        owner[sid] = p
        ids.append(sid)
    return ids


def _referenced_paths(data: Any, base: Path) -> list[Path]:
    """Every existing file/folder named by a string value in a parsed TOML document."""
    out: list[Path] = []
    if isinstance(data, dict):
        for value in data.values():
            out.extend(_referenced_paths(value, base))
    elif isinstance(data, list):
        for value in data:
            out.extend(_referenced_paths(value, base))
    elif isinstance(data, str) and data and len(data) < 4096 and "\n" not in data:
        candidate = Path(data).expanduser()
        candidate = candidate if candidate.is_absolute() else base / candidate
        try:
            if candidate.exists() and candidate.resolve() != base.resolve():
                out.append(candidate.resolve())
        except OSError:
            pass
    return out


#: A referenced file's entry in a study's manifest: (size in bytes, modification time in ns, SHA-256).
FileEntry = tuple[int, int, str]


def inputs_hash(study: str | Path) -> str:
    """SHA-256 of a study file, every file it references (recursively for folders), and the version.

    Paths enter the hash relative to the study's folder where possible, so moving a whole study tree
    keeps its hash. An unreadable or invalid TOML file is hashed by its bytes alone (the run then fails
    and reports why).
    """
    return inputs_digest(study)[0]


def inputs_digest(
    study: str | Path, *, previous: Mapping[str, Sequence[Any]] | None = None
) -> tuple[str, dict[str, FileEntry]]:
    """:func:`inputs_hash` plus the manifest of referenced files ``{name: (size, mtime_ns, sha256)}``.

    A file whose size and modification time equal its entry in ``previous`` (the manifest of the last
    run) reuses the recorded SHA-256 instead of being read again — as ``git`` does with its index — so
    resuming a batch over large DICOM trees costs one ``stat`` per file. The study file itself is always
    read.
    """
    from theradose import __version__

    path = Path(study).resolve()
    digest = hashlib.sha256()
    digest.update(b"theradose " + str(__version__).encode())
    raw = path.read_bytes()
    digest.update(b"study\0" + raw)
    manifest: dict[str, FileEntry] = {}
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return digest.hexdigest(), manifest
    files: set[Path] = set()
    for ref in _referenced_paths(data, path.parent):
        if ref.is_dir():
            files.update(p for p in ref.rglob("*") if p.is_file())
        elif ref.is_file() and ref != path:
            files.add(ref)
    known = previous or {}
    for f in sorted(files):
        try:
            name = f.relative_to(path.parent).as_posix()
        except ValueError:
            name = f.as_posix()
        stat = f.stat()
        old = known.get(name)
        if (
            old is not None
            and len(old) == 3
            and int(old[0]) == stat.st_size
            and int(old[1]) == stat.st_mtime_ns
        ):
            sha = str(old[2])
        else:
            h = hashlib.sha256()
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            sha = h.hexdigest()
        manifest[name] = (stat.st_size, stat.st_mtime_ns, sha)
        digest.update(b"\0file\0" + name.encode() + b"\0" + sha.encode())
    return digest.hexdigest(), manifest


# ------------------------------------------------------------------------------------------- runners
def pipeline_run_one(study_path: str, out_dir: str) -> dict[str, Any]:
    """Run one study through the study pipeline (``theradose.pipeline.run.run_study``)."""
    from theradose.pipeline.run import run_study

    result = run_study(study_path, out_dir)
    return {"files": list(result.files), "elapsed_s": round(float(result.elapsed_s), 3)}


def default_run_one(study_path: str, out_dir: str) -> dict[str, Any]:
    """Synthetic-cohort study files → :func:`~theradose.population.cohort.run_synthetic_study`; all
    others → :func:`pipeline_run_one`."""
    from theradose.population.cohort import is_synthetic_study, run_synthetic_study

    if is_synthetic_study(study_path):
        return run_synthetic_study(study_path, out_dir)
    return pipeline_run_one(study_path, out_dir)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else exc.__class__.__name__


def run_task(run_one: RunOne, study_path: str, out_dir: str) -> dict[str, Any]:
    """The Dask task: run one study, never raise for a study's own error.

    Returns
    -------
    dict
        ``status`` ("done"/"failed"), ``elapsed_s``, ``cpu_s``, ``worker``, ``result`` or ``error_type`` +
    ``error``.
    """
    started = time.perf_counter()
    cpu_started = time.process_time()
    worker = _worker_address()
    try:
        result = run_one(study_path, out_dir)
    except Exception as exc:
        return {
            "status": "failed",
            "elapsed_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu_started,
            "error_type": type(exc).__name__,
            "error": _one_line(exc),
            "worker": worker,
        }
    return {
        "status": "done",
        "elapsed_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu_started,
        "result": dict(result or {}),
        "worker": worker,
    }


def _worker_address() -> str | None:
    """Address of the Dask worker running the current task (None outside a worker)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


def worker_memory_limit_bytes() -> int | None:
    """Memory limit of the Dask worker running the current task (None outside a worker or unlimited)."""
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return None
    return int(limit) if limit else None


# ------------------------------------------------------------------------------------------ records
def _write_json_atomic(path: Path, payload: Any) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    temp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(temp, path)


def _jsonable_manifest(manifest: Mapping[str, FileEntry]) -> dict[str, list[Any]]:
    """A manifest as it reads back from JSON (tuples become lists)."""
    return {name: list(entry) for name, entry in manifest.items()}


def _read_record(out: Path, study_id: str) -> dict[str, Any] | None:
    path = out / RECORDS_DIR / f"{study_id}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------- scheduler
def _check_scheduler(scheduler: str) -> str:
    if scheduler == "local":
        return scheduler
    if re.fullmatch(r"(tcp|tls|inproc|ws|wss|ucx)://[^\s:]+:\d{1,5}", scheduler):
        return scheduler
    raise InputError(
        f"--scheduler {scheduler!r} is neither 'local' nor an address like tcp://host:8786: fix the value"
    )


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("batch {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def run_batch(
    studies: Sequence[str | Path],
    out_dir: str | Path,
    *,
    scheduler: str = "local",
    workers: int | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    run_one: RunOne | None = None,
    force: bool = False,
    progress: bool = False,
    timeout_s: float | None = None,
) -> BatchResult:
    """Run every study as a Dask task and write ``<out>/<study_id>/`` plus ``<out>/batch.json``.

    Parameters
    ----------
    studies : sequence of path
        Study files (see :func:`expand_studies` for globs and list files).
    out_dir : path
        Batch output folder (created).
    scheduler : str
        ``"local"`` (start a LocalCluster here) or an existing scheduler's address ``tcp://host:port``.
    workers : int, optional
        LocalCluster worker processes (default: CPU count, at most the number of studies). Ignored for an
        existing scheduler.
    memory_limit : str
        Memory limit of each LocalCluster worker (Dask syntax, e.g. ``"4GiB"``); a worker past it is
        restarted and its study recorded as failed.
    run_one : callable, optional
        ``run_one(study_path, out_dir) -> dict`` executed on the workers (must be importable there);
        default :func:`default_run_one`.
    force : bool
        Re-run studies even when their inputs hash matches a completed record.
    progress : bool
        Rich progress bar on stderr.
    timeout_s : float, optional
        Seconds to wait for the scheduler connection.

    Returns
    -------
    BatchResult
    """
    started = time.perf_counter()
    scheduler = _check_scheduler(scheduler)
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be >= 1; got {workers}")
    paths = [Path(s).resolve() for s in studies]
    if not paths:
        raise InputError("no study files given: pass a glob such as 'studies/*/study.toml'")
    ids = study_ids(paths)
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: choose a folder")
    (out / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
    runner = run_one or default_run_one

    records: dict[str, StudyRecord] = {}
    pending: list[tuple[str, Path, str]] = []
    manifests: dict[str, dict[str, FileEntry]] = {}
    for sid, path in zip(ids, paths, strict=True):
        previous = _read_record(out, sid)
        old_files = previous.get("inputs_files") if previous is not None else None
        digest, manifests[sid] = inputs_digest(
            path, previous=old_files if isinstance(old_files, dict) else None
        )
        if (
            not force
            and previous is not None
            and previous.get("status") == "done"
            and previous.get("inputs_sha256") == digest
            and (out / sid).is_dir()
        ):
            records[sid] = StudyRecord(sid, str(path), digest, "skipped", result=previous.get("result", {}))
            if previous.get("inputs_files") != _jsonable_manifest(manifests[sid]):
                _write_json_atomic(
                    out / RECORDS_DIR / f"{sid}.json", {**previous, "inputs_files": manifests[sid]}
                )
        else:
            pending.append((sid, path, digest))

    n_workers = 0
    if pending:
        n_workers = _run_pending(
            pending,
            out,
            records,
            manifests,
            scheduler=scheduler,
            workers=workers,
            memory_limit=memory_limit,
            runner=runner,
            progress=progress,
            timeout_s=timeout_s,
        )
    ordered = tuple(records[sid] for sid in ids)
    result = BatchResult(out, ordered, scheduler, n_workers, time.perf_counter() - started)
    _write_json_atomic(
        out / "batch.json",
        {
            "format": BATCH_FORMAT,
            "version": 1,
            **result.summary(),
            "studies": [r.as_dict() for r in ordered],
        },
    )
    return result


def _run_pending(
    pending: Sequence[tuple[str, Path, str]],
    out: Path,
    records: dict[str, StudyRecord],
    manifests: Mapping[str, Mapping[str, FileEntry]],
    *,
    scheduler: str,
    workers: int | None,
    memory_limit: str,
    runner: RunOne,
    progress: bool,
    timeout_s: float | None,
) -> int:
    """Submit the pending studies, collect results as they finish; returns the number of workers."""
    import contextlib

    import distributed

    dist: Any = distributed  # untyped package

    with contextlib.ExitStack() as stack:
        if scheduler == "local":
            n = workers or min(len(pending), os.cpu_count() or 1)
            cluster = stack.enter_context(
                dist.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    memory_limit=memory_limit,
                    dashboard_address="127.0.0.1:0",
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(dist.Client(cluster))
        else:
            try:
                client = stack.enter_context(dist.Client(scheduler, timeout=timeout_s or 30))
            except OSError as exc:
                raise InputError(
                    f"--scheduler {scheduler}: cannot connect ({_one_line(exc)}): start the scheduler or fix "
                    "the address"
                ) from None
        n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        futures: dict[str, tuple[Any, str, Path, str]] = {}
        for sid, path, digest in pending:
            future = client.submit(
                run_task,
                runner,
                str(path),
                str(out / sid),
                key=f"theradose-study-{sid}-{digest[:12]}-{uuid.uuid4().hex[:6]}",
                pure=False,
            )
            futures[future.key] = (future, sid, path, digest)
        bar = _progress(progress, len(pending))
        task = None
        if bar is not None:
            bar.start()
            task = bar.add_task(f"({n_workers} workers)", total=len(pending))
        try:
            for future in dist.as_completed([f[0] for f in futures.values()]):
                _, sid, path, digest = futures[future.key]
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker died or the task could not run
                    outcome = {"status": "failed", "elapsed_s": 0.0, "error_type": type(exc).__name__}
                    outcome["error"] = _one_line(exc)
                record = StudyRecord(
                    sid,
                    str(path),
                    digest,
                    str(outcome["status"]),
                    float(outcome.get("elapsed_s", 0.0)),
                    outcome.get("error_type"),
                    outcome.get("error"),
                    dict(outcome.get("result", {})),
                    outcome.get("worker"),
                    float(outcome.get("cpu_s", 0.0)),
                )
                records[sid] = record
                _write_json_atomic(
                    out / RECORDS_DIR / f"{sid}.json",
                    {**record.as_dict(), "inputs_files": manifests.get(sid, {})},
                )
                if bar is not None:
                    bar.advance(task)
        finally:
            if bar is not None:
                bar.stop()
    return n_workers
