#!/usr/bin/env bash
# Decodes one ~1 GB Currents file with the distribution (file input +
# braze_currents scanner + drop output) and reports peak RSS, to show that
# memory stays flat (bounded by one Avro block) whatever the file size.
#
#   bash bench/decode-1gb.sh [events]     # default 2,600,000 events ≈ 1 GB
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-2600000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/currents-mparticle" ./cmd/currents-mparticle
go build -o "$work/currents-gen" ./cmd/currents-gen
"$work/currents-gen" -out "$work/export" -types users.messages.email.Open -events "$events" \
  -users 200000 -file-events "$events" -block-events 4000 -seed 1
file=$(find "$work/export" -name '*.avro')
printf 'file: %s bytes, %s events\n' "$(stat -c %s "$file")" "$events"

cat >"$work/decode.yaml" <<YAML
input:
  file:
    paths: [ "$file" ]
    scanner:
      braze_currents: {}
pipeline:
  processors:
    - mapping: 'root = if @currents_id == "" { throw("no id") } else { deleted() }'
output:
  drop: {}
logger:
  level: WARN
metrics:
  none: {}
YAML
/usr/bin/time -f 'elapsed %e s, user %U s, sys %S s, peak RSS %M KB' \
  "$work/currents-mparticle" -c "$work/decode.yaml"
