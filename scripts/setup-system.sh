#!/usr/bin/env bash
# Install the system packages the tests need, when they are missing and we run as root.
# Never assumes they are present; never fails a non-root run (tests that need them then report why).
set -euo pipefail

need=()
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
# PostgreSQL server for the service tests (Debian puts initdb/pg_ctl in /usr/lib/postgresql/<ver>/bin).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  need+=(postgresql)
fi

# Chromium for the browser end-to-end tests of the web UI (driven headless by Playwright; never `playwright install`).
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: missing ${need[*]}; run as root or install them (Debian: apt-get install ${need[*]})" >&2
  exit 0
fi
echo "setup-system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
