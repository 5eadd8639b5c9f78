#!/usr/bin/env bash
# The shipped pipeline against the stock Benthos pipeline, in one run on the
# same file, and the binary's CPU per event against the work itself:
#
#   (a) shipped: file input + braze_currents scanner + currents_to_mparticle,
#       and (a') the same file read by the braze_currents input (a file://
#       export), the input of every shipped bucket config;
#   (b) stock Benthos 4.27: file input with codec avro-ocf:marshaler=goavro and
#       a Bloblang mapping to the mParticle batch (what a user would build);
#   (c) in-process: the plain-Go decoder and mapping in one goroutine
#       (bench/inprocess), no Benthos;
#   (d) the Benthos floor (bench/floor): (a) and (a') with components that
#       do no work of their own but emit and copy the same messages with the
#       same metadata. No build of (a) can be faster than its floor plus the
#       work (c): the script prints what that bound allows against the stock
#       pipeline.
#
# (a), (b) and (d) run with `threads: 2` into the `drop` output, alternately,
# RUNS times each; the medians are compared. Wall-clock time is noisy on a
# shared machine: the CPU seconds (user + sys) are reported beside it.
#
#   bash bench/ratio.sh [events]          # default 300000 push sends
#   RUNS=5 bash bench/ratio.sh            # more runs
#   BIN=/path/to/currents-mparticle ...   # another build of the binary (A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
events=${1:-300000}
runs=${RUNS:-3}
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
echo "work dir: $work" >&2

echo "building..." >&2
bin=${BIN:-$work/currents-mparticle}
[ -n "${BIN:-}" ] || go build -o "$bin" ./cmd/currents-mparticle
go build -o "$work/currents-gen" ./cmd/currents-gen
go build -o "$work/inprocess" ./bench/inprocess
go build -o "$work/floor" ./bench/floor

# One file of push sends, Braze-sized blocks, recent (not historical).
"$work/currents-gen" -out "$work/export" -types users.messages.pushnotification.Send -events "$events" \
  -file-events "$events" -block-events 4000 -start 30h -seed 7 >&2
file=$(find "$work/export" -name '*.avro')
printf 'file: %s bytes, %s events\n' "$(stat -c %s "$file")" "$events"

# drop_config INPUT PROCESSORS prints a config reading INPUT (YAML under
# `input:`) through PROCESSORS (list items under `processors:`), two threads,
# into `drop`: the three runs differ in these only.
drop_config() {
  cat <<YAML
input:
$1
pipeline:
  threads: 2
  processors:
$2
output:
  drop: {}
$(quiet_service)
YAML
}
ctm="    - currents_to_mparticle: {}"
drop_config "  file:
    paths: [ \"$file\" ]
    scanner:
      braze_currents: {}" "$ctm" >"$work/shipped.yaml"
drop_config "  braze_currents:
    url: file://$work/export/currents" "$ctm" >"$work/input.yaml"
drop_config "  file:
    paths: [ \"$file\" ]
    codec: avro-ocf:marshaler=goavro" "$(stock_mapping)" >"$work/stock.yaml"
floor_map="    - floor_map: {}"
drop_config "  file:
    paths: [ \"$file\" ]
    scanner:
      floor: { events: $events }" "$floor_map" >"$work/floor_scanner.yaml"
drop_config "  floor: { path: \"$file\", events: $events }" "$floor_map" >"$work/floor_input.yaml"

measure() { # label config [binary] → "label wall cpu rss_kb"
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "${3:-$bin}" -c "$2" >"$work/$1.log" 2>&1 ||
    { echo "$1 failed:" >&2; tail -20 "$work/$1.log" >&2; exit 1; }
  read -r wall user sys rss <"$work/time"
  echo "$1 $wall $(awk "BEGIN{print $user + $sys}") $rss"
}

rows=()
for i in $(seq "$runs"); do
  rows+=("$(measure shipped "$work/shipped.yaml")")
  rows+=("$(measure input "$work/input.yaml")")
  rows+=("$(measure stock "$work/stock.yaml")")
  rows+=("$(measure floor_scanner "$work/floor_scanner.yaml" "$work/floor")")
  rows+=("$(measure floor_input "$work/floor_input.yaml" "$work/floor")")
  rows+=("inprocess $("$work/inprocess" "$file" | awk '{print $9, $7, 0}')")
  echo "run $i: ${rows[*]: -6}" >&2
done

python3 - "$events" "${rows[@]}" <<'PY'
import sys, statistics as st
events = int(sys.argv[1])
runs = {}
for r in sys.argv[2:]:
    label, wall, cpu, rss = r.split()
    runs.setdefault(label, []).append((float(wall), float(cpu), int(rss)))
med = {k: (st.median(w for w, _, _ in v), st.median(c for _, c, _ in v), max(r for _, _, r in v)) for k, v in runs.items()}
print(f"\n{events} push sends, one file; median of {len(runs['shipped'])} alternate runs each (threads: 2, output drop).\n")
print("| run | wall s | CPU s | CPU µs/event | peak RSS MB |")
print("|---|---|---|---|---|")
names = {"shipped": "shipped: file + braze_currents scanner", "input": "shipped: braze_currents input (file://)",
         "stock": "stock Benthos: avro-ocf codec + Bloblang", "inprocess": "in-process decode + map, one goroutine",
         "floor_scanner": "Benthos floor of the file + scanner path", "floor_input": "Benthos floor of the input path"}
for k in ("shipped", "input", "stock", "inprocess", "floor_scanner", "floor_input"):
    w, c, r = med[k]
    print(f"| {names[k]} | {w:.2f} | {c:.2f} | {c / events * 1e6:.2f} | {r / 1024:.0f} |" if k != "inprocess" else
          f"| {names[k]} | {w:.2f} | {c:.2f} | {c / events * 1e6:.2f} | |")
kw, kc, _ = med["stock"]
_, ic, _ = med["inprocess"]
for k in ("shipped", "input"):
    sw, sc, _ = med[k]
    print(f"\n{names[k]}: {kw / sw:.1f}x the stock throughput (wall), {kc / sc:.1f}x less CPU;"
          f" CPU per event {sc / ic:.2f}x the in-process decode + map.")
    # The bound: Benthos's own cost (the floor) plus the work itself, the
    # work spread over the two cores at best.
    fw, fc, _ = med["floor_" + ("scanner" if k == "shipped" else "input")]
    print(f"  Its Benthos floor: {fw:.2f} s wall, {fc / events * 1e6:.2f} µs CPU/event. At best (floor + work):"
          f" {kw / (fw + ic / 2):.1f}x the stock throughput, CPU per event {(fc + ic) / ic:.2f}x the in-process work.")
PY
