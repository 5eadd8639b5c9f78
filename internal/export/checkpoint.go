package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"gocloud.dev/blob"
)

// The statuses of a checkpoint record. An object with a record is settled:
// the braze_currents input does not read it again.
const (
	// StatusCompleted: every event read from the object was delivered.
	StatusCompleted = "completed"
	// StatusFailed: the object could not be decoded past some point, or its
	// events kept being refused downstream (Class says which).
	StatusFailed = "failed"
	// StatusUnreadable is never written: it stands, in a report, for a
	// checkpoint whose value is not a record (a write cut short by a kill,
	// a 0-byte file of the file cache). The key exists, so the input
	// treats the object as settled, as it was when the write began.
	StatusUnreadable = "unreadable"
)

// Checkpoint is the value the braze_currents input records in its checkpoint
// cache for a settled object, and the body of a failed object's quarantine
// record. It is written once per object, so encoding/json is fine. Operators
// and the currents-report command read it: keep the names plain.
type Checkpoint struct {
	Status string `json:"status"` // StatusCompleted or StatusFailed
	Object string `json:"object"` // the full key
	Events int    `json:"events"` // events read (for a failure: before the damage)
	Error  string `json:"error,omitempty"`
	Class  string `json:"class,omitempty"`
	Block  int    `json:"block,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	At     string `json:"at"`
}

// CheckpointKey is the cache key of an object's checkpoint: prefix (the
// input's checkpoint_prefix) followed by the hex SHA-256 of the object's full
// key. Braze's keys run past 200 bytes and hold slashes, which the file cache
// cannot store (no sub-folders) and memcached cannot take (250 bytes at
// most); a hash fits every cache.
func CheckpointKey(prefix, object string) string {
	sum := sha256.Sum256([]byte(object))
	return prefix + hex.EncodeToString(sum[:])
}

// ProbeKey is the key the braze_currents input writes and reads back each
// time it connects, to find out whether its checkpoint cache stores
// anything. Its presence says the input has run against the cache.
func ProbeKey(prefix string) string { return prefix + "probe" }

// ParseCheckpoint reads a checkpoint value. A value that is not a record of
// a settled object (not JSON, another status) is an error, so that a report
// never counts something it does not understand as completed or failed
// (UnreadableCheckpoint says what it is instead).
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("checkpoint value %.80q is not a checkpoint record: %w", b, err)
	}
	if cp.Status != StatusCompleted && cp.Status != StatusFailed {
		return cp, fmt.Errorf("checkpoint value %.80q: status %q, want %q or %q", b, cp.Status, StatusCompleted, StatusFailed)
	}
	return cp, nil
}

// UnreadableCheckpoint is the record a report keeps for an object whose
// checkpoint value ParseCheckpoint refused with err.
func UnreadableCheckpoint(object string, err error) Checkpoint {
	return Checkpoint{Status: StatusUnreadable, Object: object, Error: err.Error()}
}

// QuarantineSuffix ends the key of a quarantine record: a failed object's
// record is written under the input's quarantine url at QuarantineKey.
const QuarantineSuffix = ".error.json"

// QuarantineKey is the key, in the quarantine bucket, of the record
// describing why the object with this full key failed.
func QuarantineKey(object string) string { return object + QuarantineSuffix }

// ListQuarantined lists the quarantine bucket (the input's quarantine url,
// prefix applied) and returns the full keys of the objects it holds a record
// for. It lists the whole bucket: it holds only records of failed objects,
// few next to the export.
func ListQuarantined(ctx context.Context, b *blob.Bucket) (map[string]bool, error) {
	out := map[string]bool{}
	it := b.List(nil)
	for {
		lo, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list the quarantine records: %w", err)
		}
		if name, ok := strings.CutSuffix(lo.Key, QuarantineSuffix); ok && !lo.IsDir {
			out[name] = true
		}
	}
}
