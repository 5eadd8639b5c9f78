package currents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/internal/dryrun"
	"github.com/currents-mparticle/currents-mparticle/internal/export"
	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// bciCheckpoint and bciCheckpointKey are the checkpoint record and its cache
// key, defined in the export package so that the currents-report command
// reads what the input writes.
type bciCheckpoint = export.Checkpoint

var bciCheckpointKey = export.CheckpointKey

func bciNewCheckpoint(status, object string, events int, cause error) []byte {
	cp := bciCheckpoint{Status: status, Object: object, Events: events, At: time.Now().UTC().Format(time.RFC3339)}
	if cause != nil {
		cp.Error = cause.Error()
		cp.Class = decoder.ErrorClass(cause)
		var de *decoder.DecodeError
		if errors.As(cause, &de) {
			cp.Block, cp.Offset = de.Block, de.Offset
		}
	}
	b, _ := json.Marshal(cp) // cannot fail: strings and numbers only
	return b
}

// checkpointed reports whether an object was settled (completed or failed)
// by this or an earlier run.
func (in *brazeCurrentsInput) checkpointed(ctx context.Context, object string) (bool, error) {
	if in.conf.checkpointCache == "" {
		return false, nil
	}
	var getErr error
	err := in.mgr.AccessCache(ctx, in.conf.checkpointCache, func(c service.Cache) {
		_, getErr = c.Get(ctx, bciCheckpointKey(in.conf.checkpointPrefix, object))
	})
	if err == nil {
		err = getErr
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, service.ErrKeyNotFound):
		return false, nil
	default:
		return false, err
	}
}

// checkpoint records a settled object. A failure only costs a re-read after
// a restart (at least once), so it is logged, not retried.
func (in *brazeCurrentsInput) checkpoint(ctx context.Context, object string, value []byte) {
	if in.conf.checkpointCache == "" {
		return
	}
	in.state.do(ctx, func(ctx context.Context) {
		var setErr error
		err := in.mgr.AccessCache(ctx, in.conf.checkpointCache, func(c service.Cache) {
			setErr = c.Set(ctx, bciCheckpointKey(in.conf.checkpointPrefix, object), value, nil)
		})
		if err == nil {
			err = setErr
		}
		// An outage of the cache is logged when it begins and when it
		// ends, not once per object.
		if err != nil {
			if in.cpOutage.Failed() {
				in.log.Errorf("Checkpointing Braze Currents object %s failed; it will be read again after a restart, as will every object settled until %q answers again: %v", object, in.conf.checkpointCache, err)
			} else {
				in.log.Debugf("Checkpointing Braze Currents object %s failed: %v", object, err)
			}
			return
		}
		if ended, lasted, failed := in.cpOutage.OK(); ended {
			in.log.Infof("Checkpoint cache %q answers again after %s; %d objects settled meanwhile were not recorded and will be read again after a restart", in.conf.checkpointCache, lasted.Round(time.Second), failed)
		}
	})
}

// probeCheckpoint writes and reads back a key, so that a checkpoint cache
// that cannot store anything (a file cache whose directory does not exist,
// a Redis it cannot reach) stops the input at connect time with a clear
// error, instead of failing object after object and re-reading everything
// after the next restart.
func (in *brazeCurrentsInput) probeCheckpoint(ctx context.Context) error {
	if in.conf.checkpointCache == "" {
		return nil
	}
	key := export.ProbeKey(in.conf.checkpointPrefix)
	value := []byte(`{"status":"probe","at":"` + time.Now().UTC().Format(time.RFC3339) + `"}`)
	var opErr error
	err := in.mgr.AccessCache(ctx, in.conf.checkpointCache, func(c service.Cache) {
		if opErr = c.Set(ctx, key, value, nil); opErr == nil {
			_, opErr = c.Get(ctx, key)
		}
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return fmt.Errorf("checkpoint_cache %q cannot store checkpoints (a file cache needs its directory to exist): %w", in.conf.checkpointCache, err)
	}
	return nil
}

// bciStateWrites holds the input's writes of state (checkpoints, quarantine
// records) until it knows whether the stream is a dry run, and drops them
// if it is: a dry run must leave nothing that makes the real run after it
// skip an object. The stream is known to run, and so the mparticle output to
// have been built (and to have declared a dry run, internal/dryrun), at the
// first acknowledgement; failures settled before that (an object corrupt
// in its first block) wait until then, or until the input ends.
type bciStateWrites struct {
	decided atomic.Bool
	mu      sync.Mutex
	dry     bool
	pending []func(context.Context)
	log     *service.Logger
}

// do runs write now, after the decision, or holds it until then.
func (w *bciStateWrites) do(ctx context.Context, write func(context.Context)) {
	w.mu.Lock()
	if !w.decided.Load() {
		w.pending = append(w.pending, write)
		w.mu.Unlock()
		return
	}
	dry := w.dry
	w.mu.Unlock()
	if !dry {
		write(ctx)
	}
}

// decide settles, once, whether writes happen, and runs those held.
func (w *bciStateWrites) decide(ctx context.Context) {
	if w.decided.Load() {
		return
	}
	w.mu.Lock()
	if w.decided.Load() {
		w.mu.Unlock()
		return
	}
	w.dry = dryrun.Declared()
	held := w.pending
	w.pending = nil
	w.decided.Store(true)
	w.mu.Unlock()
	if w.dry {
		w.log.Infof("Dry run: no Braze Currents object is checkpointed or quarantined, so the real run reads them all")
		return
	}
	for _, write := range held {
		write(ctx)
	}
}
