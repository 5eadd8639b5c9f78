// Package currents decodes Braze Currents exports: the Avro Object Container
// Files Braze writes into a bucket, one event type per file.
//
// It knows nothing of Benthos. A Reader (reader.go) streams the events of one
// file block by block, with the writer schema from the file's header compiled
// once into a decoding plan (plan.go, cursor.go) that fills reused Events
// without an allocation per value. An Event (event.go) holds every field of
// the writer schema in its order; Event.AppendJSON (eventjson.go) writes it as
// JSON straight from the decoded values. Limits (limits.go) bound what one
// block may cost before anything is allocated, so a hostile file is refused
// with an error naming the object, block and limit. Every failure is a
// *DecodeError (errors.go) that says where the damage starts.
//
// Object keys (objectkey.go) carry the event type, the date= hour Braze
// queued the events and the integration; TypeFilter (typefilter.go) selects
// event types by name or pattern.
//
// Sub-packages: schemas holds the reference event
// types and their fields (plugins/currents/schemas; not the mapping's catalog
// of plugins/mparticle/catalog.go), gen writes synthetic exports for
// tests and benchmarks (plugins/currents/gen). The Benthos components that
// use this package are in plugins/components/currents; which objects of an
// export they read, and when, is internal/export.
package currents
