#!/usr/bin/env bash
# Compares, on the same generated Currents export in one run:
#   (a) this project's pipeline: file input + braze_currents scanner + currents_to_mparticle
#       + mparticle output (packed bulk requests);
#   (b) what a user would build with stock Benthos instead: file input with
#       codec avro-ocf:marshaler=goavro, a Bloblang mapping for a few event types, and
#       http_client outputs posting one event per batch to /v2/events;
# both into the mParticle emulator on loopback. Reports events/s, CPU seconds and peak RSS of
# each, their ratio, events per mParticle batch under the default 270 batches/s limit, and the
# peak RSS of decoding a ~1 GB file. Runs in a few minutes on 2 cores; not a test.
#
#   bash bench/pipeline.sh [events]      # default 100000
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
events=${1:-100000}
limited_events=${LIMITED_EVENTS:-4000}
port=${BENCH_PORT:-18080}
work=$(mktemp -d)
echo "work dir: $work" >&2
emu_pid=""
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

echo "building..." >&2
go build -o "$work/currents-mparticle" ./cmd/currents-mparticle
go build -o "$work/mparticle-emulator" ./cmd/mparticle-emulator
go build -o "$work/currents-gen" ./cmd/currents-gen

# Recent events (the real-time endpoint), all 55 types, many repeat users.
# The stock mapping covers five types, so the comparison runs on an export of those five;
# this project's pipeline also runs on an export of all 55 types.
few=users.messages.email.Send,users.messages.email.Open,users.messages.email.Click,users.messages.pushnotification.Send,users.messages.pushnotification.Open
"$work/currents-gen" -out "$work/export" -types "$few" -events "$events" -users $((events / 10)) -hours 24 -start 30h -seed 7 2>&1
"$work/currents-gen" -out "$work/all" -events "$events" -users $((events / 10)) -hours 24 -start 30h -seed 9 2>&1
"$work/currents-gen" -out "$work/limited" -types "$few" -events "$limited_events" -users $((limited_events / 10)) -hours 2 -start 30h -seed 8 2>&1

ours() { # export-dir batch-count
  cat >"$work/ours.yaml" <<YAML
input:
  file:
    paths: [ "$1/**/*.avro" ]
    scanner:
      braze_currents: {}
$(map_to_emulator)
    # Writes in flight: the output packs the events of all of them into shared requests, so
    # under a batches/s limit more writes in flight pack more of one user's events together.
    max_in_flight: ${2:-64}
$(quiet_service)
YAML
  echo "$work/ours.yaml"
}

stock() { # export-dir
  cat >"$work/stock.yaml" <<YAML
input:
  file:
    paths: [ "$1/**/*.avro" ]
    codec: avro-ocf:marshaler=goavro
pipeline:
  processors:
$(stock_mapping)
output:
  switch:
    cases:
$(for f in $bench_feeds; do cat <<CASE
      - check: '@feed == "$f"'
        output:
          http_client:
            url: http://127.0.0.1:$port/v2/events
            verb: POST
            headers: { Content-Type: application/json }
            basic_auth: { enabled: true, username: $f-key, password: $f-secret }
            max_in_flight: 8
            retry_period: 100ms
            max_retry_backoff: 2s
CASE
done)
$(quiet_service)
YAML
  echo "$work/stock.yaml"
}

measure() { # label config → prints "label elapsed cpu rss events batches"
  curl -s -XPOST "127.0.0.1:$port/_emulator/reset" >/dev/null
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" timeout "${RUN_TIMEOUT:-240}" "$work/currents-mparticle" -c "$2" >"$work/$1.log" 2>&1 ||
    { echo "$1 failed:" >&2; tail -20 "$work/$1.log" >&2; exit 1; }
  read -r elapsed user sys rss <"$work/time"
  echo "$1 $elapsed $(awk "BEGIN{print $user + $sys}") $rss $(emulator_stat events) $(emulator_stat batches)"
}

start_emulator -rate -1
a=$(measure ours "$(ours "$work/export")")
b=$(measure stock "$(stock "$work/export")")
e=$(measure ours_all_55_types "$(ours "$work/all")")
start_emulator -rate 270
c=$(measure ours_270 "$(ours "$work/limited" 1000)")
d=$(measure stock_270 "$(stock "$work/limited")")

python3 - "$events" "$limited_events" "$a" "$b" "$c" "$d" "$e" <<'PY'
import sys
events, limited = int(sys.argv[1]), int(sys.argv[2])
rows = [r.split() for r in sys.argv[3:]]
print(f"\nExport: {events} events of five email/push types (ours_all_55_types: {events} events of all 55 types; "
      f"_270 runs: {limited} events under the default 270 batches/s limit); emulator on loopback.\n")
print("| run | wall s | CPU s | peak RSS MB | events read/s | events delivered | batches | events/batch |")
print("|---|---|---|---|---|---|---|---|")
for label, el, cpu, rss, ev, ba in rows:
    n = limited if label.endswith("_270") else events
    el, cpu, ev, ba = float(el), float(cpu), int(ev), int(ba)
    print(f"| {label} | {el:.1f} | {cpu:.1f} | {int(rss)/1024:.0f} | {n/el:,.0f} | {ev} | {ba} | {ev/max(ba,1):.2f} |")
a, b, c, d, _ = rows
print(f"\nUnthrottled, events read per second: this project {events/float(a[1]):,.0f} vs stock {events/float(b[1]):,.0f} "
      f"({float(b[1])/float(a[1]):.1f}x); CPU seconds {float(a[2]):.1f} vs {float(b[2]):.1f}.")
print(f"Under 270 batches/s: this project delivered {int(c[4])/float(c[1]):,.0f} events/s ({int(c[4])/max(int(c[5]),1):.2f} events per batch), "
      f"stock {int(d[4])/float(d[1]):,.0f} events/s (one event per batch).")
PY

if [ -z "${SKIP_1GB:-}" ]; then
  echo
  echo "1 GB file, decode only:"
  bash bench/decode-1gb.sh 2>&1 | tail -2
fi
