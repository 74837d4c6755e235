#!/usr/bin/env bash
# Fill the local FHIR package cache (var/packages/<name>#<version>/package), skipping what is already there:
# - the R4 core definitions and examples, from the npm registry;
# - the Nictiz zib2020 / nl-core packages, from a package folder (ZCC_NICTIZ_PACKAGES, default
#   ../shared/reference/nictiz-r4-zib2020/resources: one sub-folder per package, each with its package.json).
#   They are not on npm; without them the gateway runs on R4 core alone and says so at start-up.
set -euo pipefail
cd "$(dirname "$0")/.."

core="var/packages/hl7.fhir.r4.examples#4.0.1"
if [[ ! -f "$core/package/package.json" ]]; then
  mkdir -p var/packages/.download "$core"
  (cd var/packages/.download && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null)
  tar -xzf var/packages/.download/hl7.fhir.r4.examples-4.0.1.tgz -C "$core"
  echo "R4 core definitions unpacked into $core"
fi

nictiz="${ZCC_NICTIZ_PACKAGES:-../shared/reference/nictiz-r4-zib2020/resources}"
if [[ ! -d "$nictiz" ]]; then
  echo "no Nictiz package folder at $nictiz: nl-core profiles will not be available (set ZCC_NICTIZ_PACKAGES)"
  exit 0
fi
for manifest in "$nictiz"/*/package.json; do
  [[ -f "$manifest" ]] || continue
  id=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["name"] + "#" + m["version"])' "$manifest")
  target="var/packages/$id/package"
  if [[ -f "$target/package.json" ]]; then continue; fi
  mkdir -p "$target"
  cp -R "$(dirname "$manifest")"/. "$target"/
  echo "$id installed into var/packages from $(dirname "$manifest")"
done
