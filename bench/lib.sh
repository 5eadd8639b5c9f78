# Shared by the bench scripts: source it (`. bench/lib.sh`).

# quiet_service prints the top-level settings of every bench config: no HTTP
# server, warnings only, no metrics, so that only the pipeline is measured.
quiet_service() {
  printf '%s\n' 'http: { enabled: false }' 'logger: { level: WARN }' 'metrics: { none: {} }'
}

# stock_mapping prints, as a list item indented for `pipeline.processors`,
# the Bloblang mapping a user would write with stock Benthos to turn five
# email/push Currents types (decoded by `codec: avro-ocf:marshaler=goavro`)
# into mParticle batches: the "stock pipeline" bench/ratio.sh and
# bench/pipeline.sh compare against.
stock_mapping() {
  cat <<'BLOBL'
    - mapping: |
        let type = @path.re_find_all("event_type=([^/]+)").index(0).replace_all("event_type=", "")
        let name = match $type {
          "users.messages.email.Send" => "Email Sends"
          "users.messages.email.Open" => "Email Opens"
          "users.messages.email.Click" => "Email Clicks"
          "users.messages.pushnotification.Send" => "Push Notification Sends"
          "users.messages.pushnotification.Open" => "Push Notification Opens"
          _ => null
        }
        # goavro writes nullable fields as {"string": "value"}: unwrap them.
        let fields = this.map_each(kv -> if kv.value.type() == "object" { kv.value.values().index(0) } else { kv.value })
        root = if $name == null || $fields.external_user_id == null { deleted() } else {
          {
            "schema_version": 2, "environment": "production",
            "user_identities": { "customer_id": $fields.external_user_id },
            "events": [ { "event_type": "custom_event", "data": {
              "event_name": $name, "custom_event_type": "other",
              "timestamp_unixtime_ms": $fields.time * 1000, "source_message_id": $fields.id,
              "custom_attributes": $fields.without("id", "user_id", "external_user_id", "time", "email_address", "media_urls").filter(kv -> kv.value != null && kv.value.type() != "array")
            } } ]
          }
        }
        meta feed = if $fields.platform == "ios" { "ios" } else if $fields.platform == "android" { "android" } else if $fields.platform == "web" { "web" } else { "unbound" }
BLOBL
}

# The feeds of every bench run against the emulator, each with its own key
# and secret (the emulator refuses two feeds sharing a key):
# mparticle_feeds prints the output's `feeds:` block (indented under
# `mparticle:`), start_emulator gives the emulator the same, and a stock
# pipeline posting to the emulator loops over them (bench/pipeline.sh).
bench_feeds="ios android web unbound"
mparticle_feeds() {
  echo "    feeds:"
  local f
  for f in $bench_feeds; do echo "      $f: { key: $f-key, secret: $f-secret }"; done
}

# start_emulator [FLAG…] (re)starts $work/mparticle-emulator on 127.0.0.1:$port
# with the bench feeds and FLAG… (e.g. -rate -1), sets emu_pid and waits until
# it answers; the caller's EXIT trap kills emu_pid.
start_emulator() {
  if [ -n "${emu_pid:-}" ]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
  local feeds=() f
  for f in $bench_feeds; do feeds+=(-feed "$f=$f-key:$f-secret"); done
  "$work/mparticle-emulator" -addr "127.0.0.1:$port" "${feeds[@]}" "$@" >"$work/emulator.out" 2>&1 &
  emu_pid=$!
  for _ in $(seq 50); do curl -sf "127.0.0.1:$port/_emulator/stats" >/dev/null && return; sleep 0.1; done
  cat "$work/emulator.out" >&2
  echo "emulator did not start" >&2
  exit 1
}

# emulator_stat FIELD prints a top-level field of the emulator's /_emulator/stats.
emulator_stat() {
  curl -sf "127.0.0.1:$port/_emulator/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

# bench_setup makes the work dir $work (removed on exit unless KEEP is set;
# the emulator of start_emulator is killed on exit) and builds into it
# currents-gen, mparticle-emulator and the distribution, $bin (BIN=/path
# uses another build instead, for A/B runs).
bench_setup() {
  work=$(mktemp -d)
  bin=${BIN:-$work/currents-mparticle}
  [ -n "${BIN:-}" ] || go build -o "$bin" ./cmd/currents-mparticle
  go build -o "$work/currents-gen" ./cmd/currents-gen
  go build -o "$work/mparticle-emulator" ./cmd/mparticle-emulator
  emu_pid=""
  trap '[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
}

# idle_rss prints the peak RSS, in KB, of the distribution $bin with one
# generated message into drop: what it holds doing nothing.
idle_rss() {
  cat >"$work/idle.yaml" <<YAML
input:
  generate: { mapping: 'root = "x"', count: 1, interval: "" }
output:
  drop: {}
$(quiet_service)
YAML
  /usr/bin/time -f '%M' -o "$work/idle.time" "$bin" -c "$work/idle.yaml" >/dev/null 2>&1
  cat "$work/idle.time"
}

# map_to_emulator prints the pipeline and output sections of a config that
# maps events and sends them to the emulator on $port; fields of the
# mparticle output may follow, indented by four spaces.
map_to_emulator() {
  cat <<YAML
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
    url: http://127.0.0.1:$port/v2
$(mparticle_feeds)
YAML
}
