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
