// Package mparticle registers the Benthos components that turn Braze
// Currents events into mParticle deliveries:
//
//   - the `currents_to_mparticle` processor
//     (processor_currents_to_mparticle.go) maps each message to one
//     mParticle batch and sets the mparticle_* metadata. A message straight
//     from the braze_currents scanner or input carries its decoded event in
//     its context and is mapped from that; any other message is parsed;
//   - the Bloblang methods (bloblang_mparticle.go) expose the same mapping
//     inside a user's own mapping, with the same options: both are built
//     from one table (mapping_options.go);
//   - the `mparticle` output (output_mparticle.go) packs the batches into
//     bulk requests per feed and sends them, with an optional delivered-once
//     ledger.
//
// They are thin adapters: the mapping is plugins/mparticle (imported as
// mapping, since that package is named mparticle too), delivery
// plugins/mparticle/client, the ledger plugins/mparticle/ledger, none of
// which knows Benthos. Import this package (for its init) in a custom
// Benthos build to get the components, as cmd/currents-mparticle does.
package mparticle
