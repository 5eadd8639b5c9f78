// Package runstatus carries what a run could not account for to the
// process's exit code. The braze_currents input and scanner report each
// object they record as failed (corrupt, refused downstream for good,
// unreadable, cut off mid-read); cmd/currents-mparticle reads the total once
// Benthos has shut down and, when the run ended by itself (not by a
// signal), exits with ExitObjectsFailed, so that a scheduled job (a
// Kubernetes Job, cron, CI) can tell a run that delivered everything from
// one that did not.
//
// It is process-wide on purpose: an exit code is. Benthos gives the
// components of a stream no other way to reach the process that runs them.
package runstatus

import "sync/atomic"

// ExitObjectsFailed is the exit code of a run that ended by itself with
// objects recorded as failed: their events were not all delivered.
const ExitObjectsFailed = 3

var failedObjects atomic.Int64

// ObjectFailed records that an object of the export failed in this run:
// some of its events were neither delivered nor dead-lettered.
func ObjectFailed() { failedObjects.Add(1) }

// FailedObjects is the number of objects recorded as failed in this run.
func FailedObjects() int64 { return failedObjects.Load() }
