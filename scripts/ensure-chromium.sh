#!/usr/bin/env bash
# Debian's headless Chromium and its WebDriver for the dashboard's browser test (tests/capacity/test_dashboard.py).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi
SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
echo "Chromium installed"
