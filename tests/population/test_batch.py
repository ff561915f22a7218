"""Batch runner: study lists, content hashes, failures, resume — on a real scheduler and two workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from theradose.errors import InputError
from theradose.population.batch import expand_studies, inputs_hash, run_batch, run_task, study_ids

from .conftest import subprocess_env


def _write_broken(root: Path) -> Path:
    folder = root / "broken"
    folder.mkdir(parents=True, exist_ok=True)
    study = folder / "study.toml"
    study.write_text('format = "theradose-synthetic-study"\n[patient]\nid = "X"\n', encoding="utf-8")
    return study


def test_expand_studies_glob_list_and_errors(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "study.toml").write_text("x = 1\n")
    found = expand_studies(str(tmp_path / "*" / "study.toml"))
    assert [p.parent.name for p in found] == ["a", "b"]
    listing = tmp_path / "studies.txt"
    listing.write_text("# my studies\nb/study.toml\na/study.toml\nb/study.toml\n")
    assert [p.parent.name for p in expand_studies([str(listing)])] == ["b", "a"]
    assert study_ids(found) == ["a", "b"]
    with pytest.raises(InputError, match="matches no file"):
        expand_studies(str(tmp_path / "nothing" / "*.toml"))
    with pytest.raises(InputError, match="does not exist"):
        expand_studies([str(tmp_path / "missing.toml")])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.toml").write_text("x = 1\n")
    with pytest.raises(InputError, match="would both write"):
        study_ids([tmp_path / "a" / "study.toml", tmp_path / "c" / "a.toml"])


def test_inputs_hash_follows_referenced_files(tmp_path: Path) -> None:
    (tmp_path / "tac.csv").write_text("region,time_h,activity_mbq\nk,1,2\n")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.dcm").write_bytes(b"\x00\x01")
    (tmp_path / "unrelated.txt").write_text("not referenced")
    study = tmp_path / "study.toml"
    study.write_text('tac = "tac.csv"\n[[timepoints]]\nspect = "images"\n')
    first = inputs_hash(study)
    assert inputs_hash(study) == first
    (tmp_path / "unrelated.txt").write_text("changed, still not referenced")
    assert inputs_hash(study) == first
    (tmp_path / "images" / "1.dcm").write_bytes(b"\x00\x02")
    second = inputs_hash(study)
    assert second != first
    (tmp_path / "tac.csv").write_text("region,time_h,activity_mbq\nk,1,3\n")
    third = inputs_hash(study)
    assert third != second
    study.write_text('tac = "tac.csv"\n[[timepoints]]\nspect = "images"\nseed = 2\n')
    assert inputs_hash(study) != third


def test_inputs_digest_reuses_unchanged_files(tmp_path: Path) -> None:
    import os

    from theradose.population.batch import inputs_digest

    (tmp_path / "tac.csv").write_text("region,time_h,activity_mbq\nk,1,2\n")
    study = tmp_path / "study.toml"
    study.write_text('tac = "tac.csv"\n')
    digest, manifest = inputs_digest(study)
    assert digest == inputs_hash(study) and set(manifest) == {"tac.csv"}
    size, mtime, sha = manifest["tac.csv"]
    # same size and mtime: the recorded hash is trusted, the file is not read (a planted hash shows it)
    planted = {"tac.csv": [size, mtime, "0" * 64]}
    reused, _ = inputs_digest(study, previous=planted)
    assert reused != digest
    # a touched file (new mtime) is read again
    os.utime(tmp_path / "tac.csv", ns=(mtime + 10**9, mtime + 10**9))
    again, new_manifest = inputs_digest(study, previous=planted)
    assert again == digest and new_manifest["tac.csv"][2] == sha


def _fails(study_path: str, out_dir: str) -> dict[str, Any]:
    raise ValueError("first line of the error\nsecond line with a traceback-like detail")


def test_run_task_records_type_and_first_line() -> None:
    outcome = run_task(_fails, "s.toml", "out")
    assert outcome["status"] == "failed"
    assert outcome["error_type"] == "ValueError"
    assert outcome["error"] == "first line of the error"


@pytest.mark.dask
def test_batch_on_scheduler_failure_and_resume(
    dask_scheduler: str, small_cohort: tuple[Any, Any], tmp_path: Path
) -> None:
    cohort, written = small_cohort
    broken = _write_broken(Path(written.studies[0]).parents[1])
    studies = [*written.studies, broken]
    out = tmp_path / "batch"

    first = run_batch(studies, out, scheduler=dask_scheduler)
    assert first.workers == 2
    assert len(first.done) == 6 and first.skipped == []
    assert [f["study_id"] for f in first.failed] == ["broken"]
    failure = first.failed[0]
    assert failure["error_type"] == "InputError"
    assert "administration" in failure["error"] and "\n" not in failure["error"]
    # both workers took studies
    assert len({r.worker for r in first.records}) == 2
    summary = json.loads((out / "batch.json").read_text())
    assert summary["done"] == first.done and summary["failed"][0]["study_id"] == "broken"
    # the doses written by the workers match the cohort's truth (fit of noisy TACs: within 15 %)
    for row, study in zip(cohort.itertuples(index=False), written.studies, strict=True):
        doses = json.loads((out / Path(study).parent.name / "doses.json").read_text())
        tumour = next(r for r in doses["regions"] if r["name"] == "tumour")
        assert tumour["doses"]["local"]["dose_gy"] == pytest.approx(row.tumour_dose_gy, rel=0.15)

    again = run_batch(studies, out, scheduler=dask_scheduler)
    assert sorted(again.skipped) == sorted(first.done)
    assert again.done == [] and [f["study_id"] for f in again.failed] == ["broken"]

    # change one study's referenced TAC file: only that study runs again
    changed = Path(written.studies[2]).parent / "tac.csv"
    changed.write_text(changed.read_text().replace("region,time_h", "region,time_h", 1) + "\n")
    lines = changed.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",1.5e6"
    changed.write_text("\n".join(lines) + "\n")
    third = run_batch(studies, out, scheduler=dask_scheduler)
    assert third.done == [Path(written.studies[2]).parent.name]
    assert len(third.skipped) == 5

    # fix the broken study: it runs, the others stay skipped
    broken.write_text(
        Path(written.studies[0])
        .read_text()
        .replace('tac = "tac.csv"', 'tac = "../' + Path(written.studies[0]).parent.name + '/tac.csv"')
    )
    fourth = run_batch(studies, out, scheduler=dask_scheduler)
    assert fourth.done == ["broken"] and fourth.failed == [] and len(fourth.skipped) == 6


@pytest.mark.dask
def test_cli_batch_local_cluster_contract(small_cohort: tuple[Any, Any], tmp_path: Path) -> None:
    _, written = small_cohort
    broken = _write_broken(tmp_path / "extra")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{written.studies[0]}\n{written.studies[1]}\n{broken}\n")
    cmd = [
        sys.executable,
        "-m",
        "theradose",
        "batch",
        str(listing),
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "2",
        "--memory-limit",
        "1GiB",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 1, proc.stderr  # a study failed: recorded, the others done
    data = json.loads(proc.stdout)
    assert set(data) >= {"done", "failed", "skipped", "elapsed_s"}
    assert len(data["done"]) == 2 and data["skipped"] == []
    assert data["failed"][0]["study_id"] == "broken" and data["failed"][0]["error_type"] == "InputError"
    assert data["workers"] == 2 and data["elapsed_s"] > 0


def _memory_limit(study_path: str, out_dir: str) -> dict[str, Any]:
    from theradose.population.batch import worker_memory_limit_bytes

    return {"memory_limit_bytes": worker_memory_limit_bytes()}


@pytest.mark.dask
def test_local_cluster_workers_have_the_memory_limit(small_cohort: tuple[Any, Any], tmp_path: Path) -> None:
    _, written = small_cohort
    result = run_batch(
        written.studies[:2], tmp_path / "out", workers=1, memory_limit="768MiB", run_one=_memory_limit
    )
    assert result.workers == 1
    assert [r.result["memory_limit_bytes"] for r in result.records] == [768 * 2**20] * 2


@pytest.mark.parametrize(
    "args",
    [
        ["batch", "/nonexistent/*/study.toml", "--out", "OUT", "--json"],
        ["batch", "STUDY", "--out", "OUT", "--scheduler", "host:8786", "--json"],
        ["batch", "STUDY", "--out", "OUT", "--workers", "0", "--json"],
    ],
)
def test_cli_batch_bad_input_exit_2(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from theradose.cli import main

    study = tmp_path / "study.toml"
    study.write_text("x = 1\n")
    args = [str(study) if a == "STUDY" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_unreachable_scheduler_is_an_input_error(small_cohort: tuple[Any, Any], tmp_path: Path) -> None:
    from .conftest import _free_port

    _, written = small_cohort
    with pytest.raises(InputError, match="cannot connect"):
        run_batch(
            written.studies[:1], tmp_path / "out", scheduler=f"tcp://127.0.0.1:{_free_port()}", timeout_s=2
        )
