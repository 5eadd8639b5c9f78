// Package mparticle maps Braze Currents events to mParticle Events API
// batches: the batch model, its hand-written JSON encoding, and the Mapper
// that applies the mapping contract (docs/mapping.md) to each event.
//
// One event becomes one batch with one event, for one user:
//
//	m, err := mparticle.New(mparticle.Options{AppPlatforms: map[string]string{appID: "ios"}})
//	buf, res, err := m.AppendBatch(buf[:0], ev)
//	// res.Feed picks the feed credentials, res.Historical the endpoint;
//	// res.Dropped says why nothing was appended.
//
// The per-type rules (event names, feed rule, email identity, $mobile
// source, renames, fields a rich mapping consumes) are one table, catalog in
// catalog.go. Defaults reproduce Braze's hosted connector; everything it
// does not do is an option or a documented choice:
//
//   - Unknown types become custom events named from the type ("LINE Click"
//     for users.messages.line.Click, see EventName), or are dropped or
//     failed (Options.UnknownTypes). Their email_address, phone numbers and
//     content_card_id take the same roles as in the catalog's types.
//   - users.behaviors.CustomEvent is a custom event named by its `name`, its
//     `properties` JSON flattened into custom attributes (see properties.go;
//     text that is not a JSON object is kept whole as the "properties"
//     attribute, never an error). users.behaviors.Purchase is a commerce
//     event with a purchase product action (one product, quantity 1, the
//     event id as transaction id, price as total) and the properties as
//     custom attributes. SessionStart and SessionEnd are mParticle session
//     events (session_uuid from Braze's session_id, session_id its first 63
//     bits, session_duration_ms from duration, 0 when unknown).
//     FirstSession is a custom event, "First Sessions", not mParticle's
//     first_run, which would count as a second install.
//   - os_version, excluded from custom attributes by the contract, goes to
//     device_info.os_version; timezone is not sent (device_info only has a
//     numeric offset, which depends on the date).
//   - An ad_id whose ad_id_type is not one of the four known types is left
//     out of device_info.
//   - The feed rule: the event's platform field first; then, for uninstalls
//     and the types named by Options.AppIDFeedTypes, the app_id map (whose
//     platform also fills device_info.platform); else unbound.
//   - Remove and hash options (Options.Attributes) apply wherever a value is
//     sent, identities included: hashing email_address hashes the email
//     identity too.
//   - mParticle's limits are kept and counted in Result: names cut to 256
//     characters and values to 4096 (Unicode code points, as mParticle
//     counts; cuts fall on UTF-8 boundaries), custom attributes beyond 100
//     left out in emission order (source_request_id first, then fields in
//     writer schema order, then properties). A batch still over 128 KB is
//     an error (reason too_large), never sent.
//   - source_request_id is the Currents event id, as Braze's connector
//     sends, so replays are deduplicated; source_message_id is the id when
//     it is a UUID, else a name-based UUID (v5) derived from it.
//   - An event that cannot be mapped (a required field missing or of the
//     wrong kind, an invalid value, a batch over 128 KB) is unmappable: by
//     default dropped with its error's reason in Result.Dropped and the
//     error in Result.Unmapped, for the caller to count and log; with
//     Options.Unmappable fail, an error. An event time that is missing, 0
//     or less, or more than MaxFutureSkew ahead of the clock is unmappable
//     (reason invalid_time): 0 would be sent without timestamp_unixtime_ms.
//   - Values sent as identities (external_user_id, the user_id fallback,
//     the email identity, the $mobile phone number) and the event id must be
//     valid UTF-8, else the event is unmappable (invalid_identity;
//     invalid_value for the id): with U+FFFD for the bad bytes they would
//     name another user, or collide as deduplication keys. Other strings
//     that are not valid UTF-8 are sent with U+FFFD in place of the bad
//     bytes: the output is always valid JSON. An attribute whose name is
//     empty (a property "" or a structured message key "") cannot be sent
//     and is left out; array fields are left out (the opening paragraph of docs/mapping.md), nested
//     maps or records of a future schema are flattened like properties.
//
// The Mapper allocates nothing for a typical event: values point into the
// event, per-call memory comes from a pool, and the caller owns the output
// buffer. Hashing, derived UUIDs, escaped property strings and flattened
// nested names allocate.
package mparticle
