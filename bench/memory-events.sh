#!/usr/bin/env bash
# Peak RSS while the output waits, by event size: CustomEvents of about 1 KB
# and about 50 KB (Braze allows about 50 KB of properties), read by the file
# input + braze_currents scanner and by the braze_currents input into the
# emulator throttled to RATE batches/s (default 20), RSS sampled every 5 s
# for SECONDS (default 60). Memory is bounded by max_in_flight_bytes, not by
# the number of events: the goal is the idle RSS + 256 MB at the defaults,
# whatever the size.
#
#   bash bench/memory-events.sh
#   SIZES="50000" SECONDS_EACH=90 bash bench/memory-events.sh
#   MAX_IN_FLIGHT_BYTES=33554432 bash ...   # the readers' budget (default: theirs)
#   BIN=/path/to/currents-mparticle          # another build (A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup
port=${BENCH_PORT:-18082}
seconds=${SECONDS_EACH:-60}
rate=${RATE:-20}

idle=$(($(idle_rss) / 1024))
printf 'idle distribution: peak RSS %d MB\n' "$idle"

budget=${MAX_IN_FLIGHT_BYTES:+
    max_in_flight_bytes: $MAX_IN_FLIGHT_BYTES}
for size in ${SIZES:-1000 50000}; do
  # About 1.2 GB of events of either size: more than the pipeline can hold.
  events=$((1200000000 / (size + 600)))
  rm -rf "$work/export"
  "$work/currents-gen" -out "$work/export" -types users.behaviors.CustomEvent -events "$events" -users 20000 \
    -property-bytes "$size" -block-events 100 -file-events 5000 -start 30h -anonymous -1 -seed 5 >/dev/null
  for reader in scanner input; do
    if [ "$reader" = scanner ]; then
      input="  file:
    paths: [ \"$work/export/**/*.avro\" ]
    scanner:
      braze_currents: {$budget
      }"
    else
      input="  braze_currents:
    url: file://$work/export/currents$budget"
    fi
    cat >"$work/throttled.yaml" <<YAML
input:
$input
$(map_to_emulator)
$(quiet_service)
YAML
    start_emulator -keep 1000 -rate "$rate"
    "$bin" -c "$work/throttled.yaml" >"$work/throttled.log" 2>&1 &
    pid=$!
    samples=()
    for _ in $(seq $((seconds / 5))); do
      sleep 5
      kill -0 "$pid" 2>/dev/null || { tail -20 "$work/throttled.log" >&2; echo "the pipeline stopped" >&2; exit 1; }
      samples+=($(($(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") / 1024)))
    done
    hwm=$(($(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") / 1024))
    kill "$pid"; wait "$pid" 2>/dev/null || true
    printf '%d-byte properties (%d events), %s, throttled to %s batches/s: RSS every 5 s: %s MB; peak %d MB (idle + %d MB); %s events accepted in %d s\n' \
      "$size" "$events" "$reader" "$rate" "${samples[*]}" "$hwm" $((hwm - idle)) "$(emulator_stat events)" "$seconds"
  done
done
