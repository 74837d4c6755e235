#!/usr/bin/env bash
# Tools the benchmarks drive from outside the gateway: wrk (HTTP load for bench/summary.py --server).
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then exit 0; fi
SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
echo "wrk installed"
