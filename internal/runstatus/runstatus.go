// Package runstatus carries what a run could not account for to the
// process's exit code. A one-pass braze_currents input that ends with
// objects recorded as failed reports them here; cmd/currents-mparticle
// reads the total once Benthos has shut down and exits with
// ExitObjectsFailed, so that a scheduled job (a Kubernetes Job, cron, CI)
// can tell a run that delivered everything from one that did not.
//
// It is process-wide on purpose: an exit code is. Benthos gives the
// components of a stream no other way to reach the process that runs them.
package runstatus

import "sync/atomic"

// ExitObjectsFailed is the exit code of a run that ended by itself with
// objects recorded as failed (corrupt, refused downstream for good, or
// unreadable): their events were not all delivered.
const ExitObjectsFailed = 3

var failedObjects atomic.Int64

// OnePassEnded is called by an input that ended by itself (it read its range
// once) with the number of objects it recorded as failed in this run.
func OnePassEnded(failed int64) {
	failedObjects.Add(failed)
}

// FailedObjects is the number of objects recorded as failed by the inputs
// that ended by themselves.
func FailedObjects() int64 { return failedObjects.Load() }
