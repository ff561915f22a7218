#!/usr/bin/env bash
# Run the test suite. pytest's exit code 5 ("no tests collected") is an error here: a green run must
# have executed tests.
#
# Under `faketime` (e.g. `faketime '2031-06-15 12:00:00' make test`) the wall clock moves but monotonic
# time must stay real, or timed thread waits hang with libfaketime 0.9.10; a small preloaded wrapper
# (scripts/faketime-monotonic-sleep.c) keeps monotonic sleeps working. The suite must pass at any date.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${FAKETIME:-}" ] && [[ "${LD_PRELOAD:-}" == *faketime* ]]; then
  shim_dir=$(mktemp -d)
  trap 'rm -rf "$shim_dir"' EXIT
  if ! gcc -shared -fPIC -O2 -o "$shim_dir/monotonic-sleep.so" scripts/faketime-monotonic-sleep.c -ldl; then
    echo "run-tests: gcc could not build scripts/faketime-monotonic-sleep.c, needed under faketime" >&2
    exit 1
  fi
  export FAKETIME_DONT_FAKE_MONOTONIC=1
  export LD_PRELOAD="$shim_dir/monotonic-sleep.so $LD_PRELOAD"
  echo "run-tests: wall clock faked (FAKETIME=$FAKETIME), monotonic time real" >&2
fi
.venv/bin/python -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
  exit 1
fi
exit $rc
