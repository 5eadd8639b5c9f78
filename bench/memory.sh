#!/usr/bin/env bash
# Peak RSS of the full pipeline (currents_to_mparticle + mparticle output in
# dry run, read by the file input + braze_currents scanner and by the
# braze_currents input) on ~1 GB and ~4 GB exports, against the idle
# distribution (one generated message -> drop). Flat memory: the same peak
# whatever the size; the goal is the idle RSS + 64 MB.
#
# Then the same pipelines into the mParticle emulator at mParticle's rate
# (270 batches/s, 429 beyond): the output waits, and the RSS, sampled every
# 10 s on the last export, must stay flat while it does.
#
#   bash bench/memory.sh              # 1 GB and 4 GB (4 GB takes a while)
#   SIZES="1" bash bench/memory.sh    # 1 GB only
#   MAX_IN_FLIGHT=16 bash ...         # the output's max_in_flight (default: its default)
#   THROTTLED_SECONDS=300 bash ...    # how long each throttled run is sampled (default 120; 0: none)
#   BIN=/path/to/currents-mparticle   # another build of the binary (A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup
# full_config READER OUTPUT prints the full pipeline reading $work/export with
# READER (scanner or input) into the mparticle output, OUTPUT being the lines
# that say where it sends.
full_config() {
  local input
  if [ "$1" = scanner ]; then
    input="  file:
    paths: [ \"$work/export/**/*.avro\" ]
    scanner:
      braze_currents: {}"
  else
    input="  braze_currents:
    url: file://$work/export/currents"
  fi
  cat <<YAML
input:
$input
pipeline:
  threads: 2
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
$2${MAX_IN_FLIGHT:+
    max_in_flight: $MAX_IN_FLIGHT}
$(mparticle_feeds)
$(quiet_service)
YAML
}

rss() { /usr/bin/time -f '%M %e %U %S' -o "$work/time" "$bin" -c "$1" >"$work/run.log" 2>&1 ||
  { tail -20 "$work/run.log" >&2; exit 1; }; cat "$work/time"; }
idle=$(idle_rss)
printf 'idle distribution: peak RSS %d MB\n' $((idle / 1024))

for gb in ${SIZES:-1 4}; do
  events=$((gb * 2000000)) # ~520 bytes per push send
  rm -rf "$work/export"
  "$work/currents-gen" -out "$work/export" -types users.messages.pushnotification.Send -events "$events" \
    -users 200000 -file-events 2000000 -block-events 4000 -start 30h -seed 3 >/dev/null
  bytes=$(du -sb "$work/export" | cut -f1)
  for reader in scanner input; do
  full_config "$reader" "    pod: us1
    dry_run: true
    dry_run_path: /dev/null" >"$work/full.yaml"
  read -r peak wall user sys <<<"$(rss "$work/full.yaml")"
  cpu=$(awk "BEGIN{print $user + $sys}")
  printf '%s GB export (%s bytes, %s events), %s: peak RSS %d MB (idle + %d MB), %s s wall, %s s CPU (%.2f µs/event)\n' \
    "$gb" "$bytes" "$events" "$reader" $((peak / 1024)) $(((peak - idle) / 1024)) "$wall" "$cpu" "$(awk "BEGIN{print $cpu / $events * 1e6}")"
  done
done

# Throttled: into the emulator at mParticle's default rate, on the last
# export, RSS sampled every 10 s for THROTTLED_SECONDS.
seconds=${THROTTLED_SECONDS:-120}
[ "$seconds" -gt 0 ] || exit 0
port=${BENCH_PORT:-18081}
for reader in scanner input; do
  # A new emulator for each run: it would count the second run's events as
  # duplicates of the first's.
  start_emulator -keep -1
  full_config "$reader" "    url: http://127.0.0.1:$port/v2" >"$work/throttled.yaml"
  "$bin" -c "$work/throttled.yaml" >"$work/throttled.log" 2>&1 &
  pid=$!
  samples=()
  for _ in $(seq $((seconds / 10))); do
    sleep 10
    kill -0 "$pid" 2>/dev/null || { tail -20 "$work/throttled.log" >&2; echo "the pipeline stopped" >&2; exit 1; }
    samples+=($(($(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") / 1024)))
  done
  hwm=$(($(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") / 1024))
  kill "$pid"; wait "$pid" 2>/dev/null || true
  accepted=$(emulator_stat events)
  printf 'throttled (270 batches/s), %s: RSS every 10 s: %s MB; peak %d MB (idle + %d MB); %d events accepted in %d s\n' \
    "$reader" "${samples[*]}" "$hwm" $((hwm - idle / 1024)) "$accepted" "$seconds"
done
