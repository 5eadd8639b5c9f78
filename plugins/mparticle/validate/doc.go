// Package validate checks mParticle Events API batches against the rules mParticle
// publishes for them (the batch JSON Schema, the Events API OpenAPI file and the
// default service limits), so that tests and the emulator can reject exactly what
// mParticle would reject before a single byte reaches the real service.
//
// The rules are written here as Go tables (see rules.go) rather than loaded from a
// schema file: the project may not ship mParticle's schema, and mParticle's own
// sources disagree with each other in a few places. Where they disagree the
// validator is tolerant and accepts the union:
//
//   - schema_version is accepted at batch level although the JSON Schema, which
//     closes the batch object, does not list it (every mParticle example sends it);
//   - batch_context (OpenAPI) and context (JSON Schema) are both accepted;
//   - enums are the union of the JSON Schema and OpenAPI lists: environment
//     accepts "unknown" as well, custom_event_type accepts "media", device_info
//     platform accepts "desktop", "alexa" and "fire_tv", user_identities accepts
//     other_id_5..other_id_10, mobile_number, phone_number_2 and phone_number_3;
//   - pre_attribution and push_reaction are accepted as event types (they are in
//     the EventType enum although the JSON Schema has no event definition for them)
//     with only the common event data rules.
//
// Where the sources are explicit the validator follows the JSON Schema:
// source_message_id, session_uuid, mp_deviceid, ios_idfv and the iOS, Android,
// Roku and Fire advertising ids must be UUIDs (or null); android_uuid and
// microsoft_advertising_id are free strings. mParticle's "String" type accepts a
// string, number, boolean or null, and so does this package wherever the schema
// uses it (custom attribute values, identities, most device fields).
//
// Choices made where the sources are silent or lenient:
//
//   - every event must carry event_type (mParticle's own 400 example names it) and
//     a data object; required strings that are empty count as missing, as in
//     mParticle's message "is missing or empty";
//   - nested objects this project never sends (device_current_state,
//     consent_state, product actions...) are only checked to be objects;
//   - the service limits are violations (code CodeLimit) even where mParticle
//     truncates server-side (event names, attribute names), because a batch that
//     mParticle would silently cut is a mapping bug this project wants to see:
//     ≤ 100 events per batch (mParticle's advice), ≤ 100 custom attributes per
//     event, ≤ 100 user attributes per batch, names ≤ 256 characters, values
//     ≤ 4096 characters, user attribute lists ≤ 1000 entries of ≤ 512
//     characters, a batch ≤ 128 KB, a bulk request < 256 KB of ≤ 100 batches.
//     Lengths count Unicode code points, as mParticle documents "characters";
//   - an empty bulk request (an array with no batch) is rejected;
//   - messages never echo free-form values (they may be personal data): they name
//     the field, and echo only enum values, truncated.
//
// Violations come back as a single *Error listing each violation with a JSON path
// (events[0].data.source_message_id, or [3].events[0]... inside a bulk request).
package validate
