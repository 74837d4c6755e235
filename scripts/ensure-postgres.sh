#!/usr/bin/env bash
# Make PostgreSQL server binaries available for the test session (which starts its own throw-away cluster).
set -euo pipefail
if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then exit 0; fi
for dir in /usr/lib/postgresql/*/bin; do
  if [[ -x "$dir/pg_ctl" ]]; then exit 0; fi
done
SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
echo "PostgreSQL installed"
