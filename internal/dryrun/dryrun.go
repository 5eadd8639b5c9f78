// Package dryrun tells the components of this process that an mparticle
// output runs in dry-run mode, so that a dry run leaves no trace a real
// run would read: the braze_currents input then writes no checkpoint and no
// quarantine record (a real run after it reads every object again), and the
// output neither reads nor writes its ledger.
//
// It is process-wide: Benthos gives the components of a stream no shared
// state but resources, and the distribution runs one stream. In streams
// mode, one dry-run stream keeps every braze_currents input of the process
// from recording state, which costs re-reading after a restart, never an
// event.
//
// The output declares itself when it is built; Benthos builds a stream's
// input first, and the input may settle an object before the output
// exists, so the input asks Declared only once the stream runs: at its
// first acknowledgement, or at its end (plugins/components/currents,
// input_braze_currents_checkpoint.go).
package dryrun

import "sync/atomic"

var outputs atomic.Int32

// Declare records that a dry-run output exists in this process.
func Declare() { outputs.Add(1) }

// Declared reports whether a dry-run output was built in this process.
func Declared() bool { return outputs.Load() > 0 }
