#!/usr/bin/env bash
# Peak RSS of the full pipeline (currents_to_mparticle + mparticle output in
# dry run, read by the file input + braze_currents scanner and by the
# braze_currents input) on ~1 GB and ~4 GB exports, against the idle
# distribution (one generated message -> drop). Flat memory: the same peak
# whatever the size; the goal is the idle RSS + 64 MB.
#
#   bash bench/memory.sh              # 1 GB and 4 GB (4 GB takes a while)
#   SIZES="1" bash bench/memory.sh    # 1 GB only
#   MAX_IN_FLIGHT=16 bash ...         # the output's max_in_flight (default: its default)
#   BIN=/path/to/currents-mparticle   # another build of the binary (A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
bin=${BIN:-$work/currents-mparticle}
[ -n "${BIN:-}" ] || go build -o "$bin" ./cmd/currents-mparticle
go build -o "$work/currents-gen" ./cmd/currents-gen

cat >"$work/idle.yaml" <<YAML
input:
  generate: { mapping: 'root = "x"', count: 1, interval: "" }
output:
  drop: {}
$(quiet_service)
YAML
rss() { /usr/bin/time -f '%M %e %U %S' -o "$work/time" "$bin" -c "$1" >"$work/run.log" 2>&1 ||
  { tail -20 "$work/run.log" >&2; exit 1; }; cat "$work/time"; }
read -r idle _ <<<"$(rss "$work/idle.yaml")"
printf 'idle distribution: peak RSS %d MB\n' $((idle / 1024))

for gb in ${SIZES:-1 4}; do
  events=$((gb * 2000000)) # ~520 bytes per push send
  rm -rf "$work/export"
  "$work/currents-gen" -out "$work/export" -types users.messages.pushnotification.Send -events "$events" \
    -users 200000 -file-events 2000000 -block-events 4000 -start 30h -seed 3 >/dev/null
  bytes=$(du -sb "$work/export" | cut -f1)
  for reader in scanner input; do
  if [ "$reader" = scanner ]; then
    input="  file:
    paths: [ \"$work/export/**/*.avro\" ]
    scanner:
      braze_currents: {}"
  else
    input="  braze_currents:
    url: file://$work/export/currents"
  fi
  cat >"$work/full.yaml" <<YAML
input:
$input
pipeline:
  threads: 2
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
    dry_run: true
    dry_run_path: /dev/null${MAX_IN_FLIGHT:+
    max_in_flight: $MAX_IN_FLIGHT}
    pod: us1
    feeds:
      ios: { key: k, secret: s }
      android: { key: k, secret: s }
      web: { key: k, secret: s }
      unbound: { key: k, secret: s }
$(quiet_service)
YAML
  read -r peak wall user sys <<<"$(rss "$work/full.yaml")"
  cpu=$(awk "BEGIN{print $user + $sys}")
  printf '%s GB export (%s bytes, %s events), %s: peak RSS %d MB (idle + %d MB), %s s wall, %s s CPU (%.2f µs/event)\n' \
    "$gb" "$bytes" "$events" "$reader" $((peak / 1024)) $(((peak - idle) / 1024)) "$wall" "$cpu" "$(awk "BEGIN{print $cpu / $events * 1e6}")"
  done
done
