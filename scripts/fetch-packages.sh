#!/usr/bin/env bash
# Obtain the FHIR R4 core definitions from the npm registry into the local package cache (var/packages).
set -euo pipefail
cd "$(dirname "$0")/.."
target="var/packages/hl7.fhir.r4.examples#4.0.1"
if [[ -f "$target/package/package.json" ]]; then exit 0; fi
mkdir -p var/packages/.download "$target"
(cd var/packages/.download && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null)
tar -xzf var/packages/.download/hl7.fhir.r4.examples-4.0.1.tgz -C "$target"
echo "R4 core definitions unpacked into $target"
