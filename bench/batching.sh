#!/usr/bin/env bash
# How many events go through mParticle's batches-per-second limit: on an export of the
# generator's realistic profile (campaign and canvas chains across the type files of an hour,
# sessions of active users, ~1 % Braze duplicates; docs/generator.md), runs the real binary
# (braze_currents input → currents_to_mparticle → mparticle output) against the emulator
# started with `-rate 270`, once per group_window, and reports per run:
#   events per mParticle batch, events/s at 270 batches/s (= 270 × events per batch), the
#   measured events/s, the ideal for the window and the share of it reached, peak RSS;
# then, without the limit (`-rate -1`), events/s with the delivered-once ledger on an
# in-memory cache vs off. Medians of RUNS runs. Runs in a few minutes on 2 cores; not a test.
#
#   bash bench/batching.sh [events]      # default 20000 (at ~3 events/batch: ~25 s per run)
#
# Environment: RUNS (3), WINDOWS ("0s 500ms 2s"), UNLIMITED_EVENTS (100000), BENCH_PORT
# (18090), MAX_IN_FLIGHT (the output's default, 64), LEDGER_CACHE (memory, or currents_state:
# the embedded store, every write fsynced, a fresh one per run), KEEP=1 keeps the work dir.
#
# The ideal for a window (definition): the emulator records every accepted batch with its
# feed and arrival time. Cut the run into consecutive buckets of the window's length by
# arrival (from the first batch); within each bucket, every (feed, user) pair could have been
# one batch (ceil(events/100) batches for a pair with more than 100). Ideal events per batch =
# events delivered / that number of batches; "% of ideal" = ideal batches / actual batches.
# The user is the batch's customer_id (all delivered batches have one: the default
# missing_identity drops the others). A second, stricter ideal counts distinct (feed,
# envelope) pairs instead, the envelope being the batch without events and source_request_id:
# the output merges only batches whose envelopes are equal. The 0s run is compared with the
# 500ms ideal (the gain the default window could reach on that run's arrivals). The "hour
# bound" is what holding a whole hour would give: distinct (feed, user, hour of the event's
# time) triples — the events of one user that the export holds close together.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
events=${1:-20000}
unlimited_events=${UNLIMITED_EVENTS:-100000}
runs=${RUNS:-3}
windows=${WINDOWS:-"0s 500ms 2s"}
port=${BENCH_PORT:-18090}
max_in_flight=${MAX_IN_FLIGHT:-}
ledger_cache=${LEDGER_CACHE:-memory}
work=$(mktemp -d)
echo "work dir: $work" >&2
emu_pid=""
cleanup() {
  if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

echo "building..." >&2
go build -o "$work/currents-mparticle" ./cmd/currents-mparticle
go build -o "$work/mparticle-emulator" ./cmd/mparticle-emulator
go build -o "$work/currents-gen" ./cmd/currents-gen

# Recent hours (the real-time endpoint), all 55 types, users/10 distinct users.
"$work/currents-gen" -out "$work/export" -profile realistic -events "$events" -hours 2 -start 30h -seed 12 2>&1
"$work/currents-gen" -out "$work/big" -profile realistic -events "$unlimited_events" -hours 2 -start 30h -seed 13 2>&1

config() { # export-dir group-window ledger(on|off) → path
  local f="$work/run-$2-$3.yaml"
  cat >"$f" <<YAML
input:
  braze_currents:
    url: file://$1
$(map_to_emulator)
    group_window: $2
$( [ -n "$max_in_flight" ] && echo "    max_in_flight: $max_in_flight" )
$( [ "$3" = on ] && echo "    ledger: { cache: delivered }" )
cache_resources:
  - label: delivered
$( if [ "$ledger_cache" = currents_state ]; then echo "    currents_state: { path: \"$work/ledger.state\" }"; else echo "    memory: { default_ttl: 72h }"; fi )
$(quiet_service)
YAML
  echo "$f"
}

run() { # label config → appends "label elapsed cpu rss_kb" to $work/runs; saves batches
  curl -sf -XPOST "127.0.0.1:$port/_emulator/reset" >/dev/null
  rm -rf "$work/ledger.state" # each run starts with an empty ledger
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" timeout "${RUN_TIMEOUT:-600}" "$work/currents-mparticle" -c "$2" >"$work/$1.log" 2>&1 ||
    { echo "$1 failed:" >&2; tail -20 "$work/$1.log" >&2; exit 1; }
  read -r elapsed user sys rss <"$work/time"
  curl -sf "127.0.0.1:$port/_emulator/stats" >"$work/$1.stats.json"
  if [ -n "${3:-}" ]; then curl -sf "127.0.0.1:$port/_emulator/batches" >"$work/$1.batches.json"; fi
  echo "$1 $elapsed $(awk "BEGIN{print $user + $sys}") $rss" >>"$work/runs"
  echo "  $1: ${elapsed}s wall, $(awk "BEGIN{print $user + $sys}")s CPU, $((rss / 1024)) MB" >&2
}

: >"$work/runs"
start_emulator -rate 270
for i in $(seq "$runs"); do
  for w in $windows; do
    echo "270 batches/s, group_window $w, run $i..." >&2
    run "limited_${w}_$i" "$(config "$work/export" "$w" off)" batches
  done
done
start_emulator -rate -1
for i in $(seq "$runs"); do
  for l in off on; do
    echo "unlimited, ledger $l, run $i..." >&2
    run "unlimited_ledger_${l}_$i" "$(config "$work/big" 500ms "$l")"
  done
done

python3 - "$work" "$events" "$unlimited_events" "$runs" "$windows" "${max_in_flight:-64}" "$ledger_cache" <<'PY'
import json, math, re, statistics, sys
from collections import defaultdict
from datetime import datetime

work, events, unlimited, runs, windows, mif, ledger_cache = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(), int(sys.argv[6]), sys.argv[7]
rows = {l.split()[0]: l.split()[1:] for l in open(f"{work}/runs")}

def seconds(w):
    return float(w[:-2]) / 1000 if w.endswith("ms") else float(w[:-1])

def ts(s):  # Go's RFC 3339 with nanoseconds → Unix seconds
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", s)
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + zone).timestamp() + float(m.group(2) or 0)

def analyse(label, window):
    recs = json.load(open(f"{work}/{label}.batches.json"))
    t0 = min(ts(r["received"]) for r in recs)
    by_user, by_env, by_hour = defaultdict(int), defaultdict(int), defaultdict(int)
    n_events, ids = 0, set()
    for r in recs:
        b = r["batch"]
        evs = b.get("events") or []
        n_events += len(evs)
        user = (b.get("user_identities") or {}).get("customer_id")
        for e in evs:
            d = e.get("data") or {}
            ids.add(d.get("source_message_id"))
            by_hour[(r["feed"], user, (d.get("timestamp_unixtime_ms") or 0) // 3_600_000)] += 1
        k = int((ts(r["received"]) - t0) // window)
        env = json.dumps({x: y for x, y in b.items() if x not in ("events", "source_request_id")}, sort_keys=True)
        by_user[(k, r["feed"], user)] += len(evs)
        by_env[(k, r["feed"], env)] += len(evs)
    ideal_user = sum(math.ceil(n / 100) for n in by_user.values())
    ideal_env = sum(math.ceil(n / 100) for n in by_env.values())
    ideal_hour = sum(math.ceil(n / 100) for n in by_hour.values())
    return len(recs), n_events, ideal_user, ideal_env, n_events - len(ids), ideal_hour

med = statistics.median
print(f"\nRealistic export: {events} distinct events (+~1 % Braze duplicates) of all 55 types over 2 hours, "
      f"{events // 10} users; emulator at 270 batches/s; medians of {runs} runs; max_in_flight {mif}.\n")
print("| run | events/batch | events/s at 270 b/s | measured events/s | ideal events/batch (feed, user) | % of ideal | ideal (feed, envelope) | % of it | hour bound | peak RSS MB | CPU s | duplicate ids delivered |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
print("| one event per batch (hosted connector) | 1.00 | 270 | | | | | | | | | |")
for w in windows:
    ref = seconds(w) if seconds(w) > 0 else 0.5
    per = []
    for i in range(1, runs + 1):
        label = f"limited_{w}_{i}"
        el, cpu, rss = map(float, rows[label])
        batches, n, iu, ie, dup, ih = analyse(label, ref)
        per.append((n / batches, n / el, n / iu, iu / batches, n / ie, ie / batches, rss / 1024, cpu, dup, n / ih))
    c = [med([p[j] for p in per]) for j in range(10)]
    name = f"group_window {w}" + (" (vs the 500ms ideal)" if seconds(w) == 0 else "")
    print(f"| {name} | {c[0]:.2f} | {270 * c[0]:,.0f} | {c[1]:,.0f} | {c[2]:.2f} | {100 * c[3]:.0f} % | {c[4]:.2f} | {100 * c[5]:.0f} % | {c[9]:.2f} | {c[6]:.0f} | {c[7]:.1f} | {c[8]:.0f} |")

print(f"\nWithout the limit ({unlimited} distinct events, group_window 500ms, medians of {runs} runs, alternating):\n")
print("| ledger | wall s | events read/s | CPU s | peak RSS MB | events delivered |")
print("|---|---|---|---|---|---|")
res = {}
for l in ("off", "on"):
    el = med([float(rows[f"unlimited_ledger_{l}_{i}"][0]) for i in range(1, runs + 1)])
    cpu = med([float(rows[f"unlimited_ledger_{l}_{i}"][1]) for i in range(1, runs + 1)])
    rss = med([float(rows[f"unlimited_ledger_{l}_{i}"][2]) for i in range(1, runs + 1)])
    delivered = med([json.load(open(f"{work}/unlimited_ledger_{l}_{i}.stats.json"))["events"] for i in range(1, runs + 1)])
    res[l] = (el, cpu)
    name = f"on ({ledger_cache} cache)" if l == "on" else "off"
    print(f"| {name} | {el:.2f} | {unlimited / el:,.0f} | {cpu:.2f} | {rss / 1024:.0f} | {delivered:,.0f} |")
drop = 100 * (1 - res["off"][0] / res["on"][0])
print(f"\nLedger on vs off: events/s {-drop:+.1f} % (wall), CPU {100 * (res['on'][1] / res['off'][1] - 1):+.1f} %.")
PY
