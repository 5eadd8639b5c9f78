// Package client delivers mapped mParticle batches to the server-to-server
// Events API.
//
// A caller hands Send a slice of Items (one user's batch JSON and the feed
// whose credentials carry it) and gets back one error per item: nil when
// mParticle accepted it, a *DeliveryError with a Reason otherwise. In between
// the client
//
//   - packs: items of the same feed, endpoint and envelope (all top-level
//     members but events and source_request_id) share a batch of at most 100
//     events and 128 KB; batches share bulk requests of at most 100 batches
//     and under 256 KB; each batch gets a deterministic source_request_id (a
//     UUIDv5 of its sorted event source_message_ids) so mParticle
//     deduplicates retried and replayed batches;
//   - routes events older than 30 days to /bulkevents/historical (optional);
//   - retries per feed: 429 waits Retry-After, 5xx and network errors back off
//     with jitter, 403 pauses the feed for up to AuthFailureWindow, 400 splits
//     the request to isolate the bad batches, a 202 listing batch errors fails
//     only those batches, and pacing slows a feed as
//     X-mp-rate-limit-percentage-used rises;
//   - or, in dry-run mode, writes every request as a JSON line instead.
//
// The package imports nothing from Benthos: metrics and logs go through the
// small Metrics and Logger interfaces, and a rate limiter is a function.
package client
