"""Coverage of the dose uncertainty budget on virtual patients: the fraction of regions whose 95 % interval
(dose ± 1.96 σ of the EANM budget) holds the truth dose, with the full budget, with the components the
phantom realises (recovery, fit, registration) and with the fit term alone.

Run: ``PYTHONPATH=src python benchmarks/bench_coverage.py [--patients N] [--grid 64|128] [--out DIR]``.

The truth is the phantom package's local deposition of each patient's true TIA map
(:func:`theradose.phantoms.kinetics.truth_dose`), never the pipeline's dose engines. The CI suite runs two
patients at a 64 matrix (``tests/pipeline/test_coverage.py``); this runs more patients, or the 128 matrix
of the demo, outside CI (about 1 min per patient at 64 on one idle core, several at 128). Writes
``coverage.csv`` (one row per region and patient) and ``coverage.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5)
    parser.add_argument("--grid", type=int, default=64, choices=(64, 128))
    parser.add_argument("--out", type=Path, default=None, help="folder to keep (default: a temporary one)")
    args = parser.parse_args()

    from theradose.pipeline.demo import run_coverage

    with tempfile.TemporaryDirectory(prefix="theradose-coverage-") as tmp:
        out = args.out or Path(tmp)
        result = run_coverage(out, patients=args.patients, grid=args.grid, progress=True)
        summary = result.summary()
        print(json.dumps(summary, indent=1))
        print(
            f"{summary['regions']} regions of {args.patients} patients at {args.grid}: coverage of the 95 % "
            f"interval {100 * result.coverage:.1f} % (full budget), "
            f"{100 * result.coverage_realised:.1f} % (phantom-realised components), "
            f"{100 * result.coverage_of(('fit_tia',)):.1f} % (fit term alone); {result.elapsed_s:.0f} s"
        )


if __name__ == "__main__":
    main()
