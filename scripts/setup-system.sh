#!/usr/bin/env bash
# Install the system packages the tests need, when they are missing and we run as root.
# Never assumes they are present; never fails a non-root run (tests that need them then report why).
set -euo pipefail

need=()
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
# Real DICOM clients that read what theradose writes (tests/io/test_dicom_clients.py): dcmtk (dcmdump,
# dsrdump) and plastimatch (RT Dose and RTSTRUCT with the CT's geometry).
command -v dsrdump >/dev/null 2>&1 || need+=(dcmtk)
command -v plastimatch >/dev/null 2>&1 || need+=(plastimatch)
# Orthanc PACS for the DICOM networking tests; the tests start their own server on free loopback ports
# and never use the system service the package installs (installed below without starting it).
no_service=()
command -v Orthanc >/dev/null 2>&1 || no_service+=(orthanc)
# PostgreSQL server for the service tests (Debian puts initdb/pg_ctl in /usr/lib/postgresql/<ver>/bin).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  need+=(postgresql)
fi

# libfaketime and gcc: tests/test_calendar.py runs the service workflow with the wall clock years ahead.
command -v faketime >/dev/null 2>&1 || need+=(faketime)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)

# pdftoppm and pdfinfo (poppler-utils): the report tests render the PDF's pages to PNG and read page sizes.
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)

# Chromium for the browser end-to-end tests of the web UI (driven headless by Playwright; never `playwright install`).
[ -x /usr/bin/chromium ] || need+=(chromium)

all=("${need[@]}" "${no_service[@]}")
if [ ${#all[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: missing ${all[*]}; run as root or install them (Debian: apt-get install ${all[*]})" >&2
  exit 0
fi
echo "setup-system: installing ${all[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ${#no_service[@]} -gt 0 ]; then
  # policy-rc.d exit code 101 keeps the packages' services from starting during installation.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${no_service[@]}" >/dev/null || status=$?
  if [ "$own_policy" -eq 1 ]; then
    rm -f "$policy"
  fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now "${no_service[@]}" >/dev/null 2>&1 || true
  fi
  exit "${status:-0}"
fi
