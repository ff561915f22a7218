#!/usr/bin/env bash
# Run the test suite. pytest's exit code 5 ("no tests collected") is an error here: a green run must
# have executed tests.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
  exit 1
fi
exit $rc
