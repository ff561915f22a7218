"""dvh.json: cumulative DVH per region and engine, in the shape the web UI's dosimetry review reads."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from theradose.service.review_store import read_result

from .conftest import REGIONS


def test_dvh_json_per_region_and_engine(json_only_run: Path) -> None:
    dvhs = json.loads((json_only_run / "dvh.json").read_text(encoding="utf-8"))
    doses = json.loads((json_only_run / "doses.json").read_text(encoding="utf-8"))
    assert set(dvhs) == {r["name"] for r in doses["regions"]}
    for row in doses["regions"]:
        curve = dvhs[row["name"]]["local"]
        edges, fraction = curve["dose_gy"], curve["cumulative_fraction"]
        assert len(edges) == len(fraction) == 101
        assert edges[0] == 0.0 and fraction[0] == 1.0
        assert all(b >= a for a, b in itertools.pairwise(edges))
        assert all(b <= a for a, b in itertools.pairwise(fraction))
        # The area under a cumulative DVH is the mean dose, ∫ V(D) dD = D̄ (a volume-weighted mean; the
        # study has one tissue density, so it equals the mass-weighted mean of doses.json). The step sum
        # over the bins brackets it within one bin width.
        width = edges[1] - edges[0]
        upper = sum(fraction[:-1]) * width
        lower = sum(fraction[1:]) * width
        mean = row["doses"]["local"]["dose_gy"]
        assert lower - 1e-6 * mean <= mean <= upper + 1e-6 * mean
        assert upper - lower <= width * (1 + 1e-9)


def test_the_review_store_reads_the_pipeline_dvhs(json_only_run: Path) -> None:
    result = read_result(json_only_run)
    by_name = {d.region: d for d in result.dvhs}
    assert set(REGIONS) <= set(by_name)
    written = json.loads((json_only_run / "dvh.json").read_text(encoding="utf-8"))
    for name in REGIONS:
        assert list(by_name[name].dose_gy) == written[name]["local"]["dose_gy"]
        assert list(by_name[name].cumulative_fraction) == written[name]["local"]["cumulative_fraction"]
