// Package emulator is an in-process emulation of mParticle's server-to-server
// Events API, in the spirit of net/http/httptest: NewServer starts it on a
// loopback port, URL is the base URL to configure a client with (it ends in "/v2",
// as mParticle's pod base URLs do), Close stops it, and Batches, Stats and Reset
// inspect what it accepted. Faults (server errors, connection resets, latency,
// expired credentials, partially failed bulk requests) can be injected at start
// and changed at runtime with SetFaults, deterministically for a given seed.
//
// # Endpoints
//
//	POST /v2/events                  one batch (a JSON object)
//	POST /v2/bulkevents              a JSON array of batches
//	POST /v2/bulkevents/historical   same, with the historical rules below
//	GET  /_emulator/batches          accepted batches: [{"feed":"ios","endpoint":"events","batch":{...}}]
//	                                 (?feed=ios keeps one feed)
//	GET  /_emulator/stats            Stats as JSON
//	POST /_emulator/reset            Reset: forget batches, counters, dedup keys; refill the rate limit
//	GET  /_emulator/faults           the current Faults as JSON
//	PUT  /_emulator/faults           replace the Faults (JSON as returned by GET)
//
// The /_emulator endpoints need no credentials and are neither counted, limited
// nor subject to faults.
//
// # Responses, in the order the checks run
//
//	404  unknown path; 405 not POST on an API path (with Allow: POST)
//	     - latency fault: every API request waits Faults.Latency first
//	401  no Authorization header, or one that is not HTTP Basic
//	403  key unknown, or secret wrong for that key
//	     - reset fault (ResetRate): the connection is reset before the body is read
//	403  credential fault (Forbidden, ForbiddenNext, ForbiddenFrom/Until, limited to
//	     ForbiddenFeeds when set), as mParticle answers expired credentials
//	503  server error fault (ServerErrorRate)
//	400  Content-Type not application/json, or a Content-Encoding other than identity
//	400  request of MaxRequestBytes (256 KB) or more
//	400  body is not JSON, or not an object (/v2/events) / array (bulk)
//	429  more batches than the token bucket holds; headers Retry-After (whole
//	     seconds, at least 1) and X-mp-rate-limit-exceeded: workspace
//	400  any batch breaks mParticle's rules (package validate): a batch over 128 KB,
//	     more than 100 batches, unknown fields, wrong types, limits...; the whole
//	     request is rejected and nothing is recorded
//	400  historical endpoint: an event without timestamp_unixtime_ms, or younger than 72 h
//	202  accepted; header X-mp-rate-limit-percentage-used; empty body, or (bulk
//	     endpoints, BatchErrorRate fault) the per-batch error body below
//	     - reset-after-accept fault (ResetAfterAcceptRate): the batches are
//	       recorded, then the connection is reset so the client never sees the 202
//
// A request is counted in Stats before its answer is sent, so a test may read
// Stats as soon as its client returns.
//
// Every error body has mParticle's shape:
//
//	{"errors":[{"code":"BAD_REQUEST","message":"events[0].data.source_message_id: Field \"source_message_id\" must be a UUID (8-4-4-4-12 hexadecimal digits)."}]}
//
// with one entry per violation (bulk paths are prefixed with the batch index, as
// in "[3].environment: ..."). Codes: BAD_REQUEST (400), UNAUTHORIZED (401),
// FORBIDDEN (403), TOO_MANY_REQUESTS (429), SERVICE_UNAVAILABLE (503),
// METHOD_NOT_ALLOWED (405), NOT_FOUND (404).
//
// # Partially failed bulk requests
//
// mParticle documents that a bulk request answers 202 even when some of its
// batches fail, but not the body it then sends. The emulator sends, with status
// 202 and Content-Type application/json:
//
//	{"errors":[{"code":"BATCH_FAILED","message":"batch 3 was not processed (emulated failure)","batch_index":3,"source_request_id":"abc"}]}
//
// one entry per failed batch: batch_index is the zero-based position of the batch
// in the request's array, source_request_id is present when the batch had one
// (a number is rendered as its JSON text). Failed batches are not recorded and
// their source_request_id is not remembered, so a retry is accepted. A client
// should treat every batch not listed as accepted, and an empty or absent body as
// "all accepted".
//
// # Choices where mParticle's documentation is silent
//
//   - Rate limit: one token bucket per emulator (mParticle limits per workspace by
//     default), refilled at BatchesPerSecond (0 means DefaultBatchesPerSecond, 270;
//     negative means unlimited) and holding one second of tokens. A request of n
//     batches is admitted when the bucket holds min(n, capacity) tokens and then
//     takes n, going into debt if needed, so a 100-batch bulk request is possible
//     even at 10 batches per second and the long-run rate still holds. Throttling
//     is decided after the body is parsed (to count batches) but before batch
//     validation, so invalid requests also spend tokens. Retry-After is the time
//     until the tokens would be there, rounded up to whole seconds.
//     X-mp-rate-limit-percentage-used is the share of the bucket in use, 0 to 100.
//   - A request too large, a wrong Content-Type or Content-Encoding answer 400
//     (the only client error status mParticle documents) rather than 413/415.
//   - Validation follows package validate, which turns mParticle's limits into
//     errors even where mParticle truncates (names over 256 characters), so tests
//     see data that the real service would silently cut.
//   - Deduplication: by source_request_id per API key (so per feed), forever
//     until Reset. A duplicate batch is answered like an accepted one but not
//     recorded again, and counted in Stats.Duplicates. Batches without a
//     source_request_id are never deduplicated.
//   - The historical endpoint rejects the whole request (400) when one event breaks
//     its rules; "older than 30 days" is mParticle's advice, not checked.
//   - Faults are drawn from one seeded pseudo-random sequence in request arrival
//     order, so a sequential client sees the same faults for the same seed;
//     SetFaults restarts the sequence from the new seed. Faults other than
//     latency never apply to requests without valid credentials.
package emulator
