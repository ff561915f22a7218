#!/usr/bin/env bash
# 177Lu-PSMA organ dosimetry: kinetics fit -> dose organ -> radiobiology bed.
# Usage: examples/organ_dosimetry/run.sh [OUT_DIR]   (PYTHON=... to choose the interpreter)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/run.py" "${1:-organ-dosimetry-out}"
