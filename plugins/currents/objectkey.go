package currents

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DateHourLayout is the layout of the `date=` partition: the UTC hour in
// which Braze queued the events (not the event time).
const DateHourLayout = "2006-01-02-15"

// ObjectKey is what an export object's key says about its contents.
//
//	<prefix>/dataexport.<cluster>.<S3|AzureBlob|GCS>.integration.<id>/
//	    event_type=<type>/date=<YYYY-MM-DD-HH>/<schema_id>/<zone>/
//	    dataexport.<cluster>.<S3|AzureBlob|GCS>.integration.<id>+<partition>+<offset>.avro
//
// Newer exports have `version=<N>/<environment>` in place of
// `<schema_id>/<zone>`; 2017 exports have no cluster. Fields the key does
// not carry are left zero.
type ObjectKey struct {
	Key            string
	Prefix         string    // everything before the dataexport.* folder
	Cluster        string    // e.g. "prod-01"; "" for 2017 exports
	ConnectionType string    // "S3", "AzureBlob" or "GCS"
	IntegrationID  string    // Braze's integration id
	EventType      string    // from event_type=
	DateHour       string    // from date=, as written
	Date           time.Time // DateHour parsed (UTC); zero when absent
	SchemaID       string    // the segment after date= in the older layout
	Zone           string
	SchemaVersion  int    // N of version=N in the newer layout
	Environment    string // the segment after version=N
	Partition      int
	Offset         int64
}

// ErrNotExportKey is returned for keys that are not Braze export objects.
var ErrNotExportKey = errors.New("not a Braze Currents export object key")

// ParseObjectKey parses an export object key or file path. It needs only the
// file name to be Braze's; any segment it does not recognise is ignored, as
// Braze warns the layout can change. This file is the one reader of the key
// layout: EventTypeFromKey and HourFromKey read its folders for keys whose
// file name may not be Braze's.
func ParseObjectKey(key string) (ObjectKey, error) {
	k := ObjectKey{Key: key}
	segs := strings.Split(strings.ReplaceAll(key, "\\", "/"), "/")
	file := segs[len(segs)-1]
	if err := k.parseFileName(file); err != nil {
		return ObjectKey{Key: key}, fmt.Errorf("%w: %q: %v", ErrNotExportKey, key, err)
	}
	afterDate, badDate := k.parseFolders(segs[:len(segs)-1])
	if badDate {
		return k, fmt.Errorf("%w: %q: date=%s is not YYYY-MM-DD-HH", ErrNotExportKey, key, k.DateHour)
	}
	if afterDate > 0 && afterDate+1 < len(segs) {
		a, b := segs[afterDate], ""
		if afterDate+1 < len(segs)-1 {
			b = segs[afterDate+1]
		}
		if v, ok := strings.CutPrefix(a, "version="); ok {
			k.SchemaVersion, _ = strconv.Atoi(v)
			k.Environment = b
		} else if a != file {
			k.SchemaID, k.Zone = a, b
		}
	}
	return k, nil
}

// parseFolders reads the event_type=, date= and dataexport.* folders of a
// key's folder segments. It returns the index of the segment after the
// last date= folder (-1 without one), and whether that folder's hour did
// not parse (Date is then zero).
func (k *ObjectKey) parseFolders(folders []string) (afterDate int, badDate bool) {
	afterDate = -1
	for i, s := range folders {
		switch {
		case strings.HasPrefix(s, "event_type="):
			k.EventType = strings.TrimPrefix(s, "event_type=")
		case strings.HasPrefix(s, "date="):
			k.DateHour = strings.TrimPrefix(s, "date=")
			t, err := time.Parse(DateHourLayout, k.DateHour)
			k.Date, badDate = t, err != nil
			afterDate = i + 1
		case strings.HasPrefix(s, "dataexport."):
			if k.Prefix == "" {
				k.Prefix = strings.Join(folders[:i], "/")
			}
		}
	}
	return afterDate, badDate
}

// keyFolders reads the folders of any key, Braze's file name or not.
func keyFolders(key string) ObjectKey {
	k := ObjectKey{Key: key}
	segs := strings.Split(strings.ReplaceAll(key, "\\", "/"), "/")
	k.parseFolders(segs[:len(segs)-1])
	return k
}

// parseFileName reads dataexport.[<cluster>.]<type>.integration.<id>+<partition>+<offset>.avro.
func (k *ObjectKey) parseFileName(file string) error {
	base, ok := strings.CutSuffix(file, ".avro")
	if !ok {
		return errors.New("file name does not end in .avro")
	}
	parts := strings.Split(base, "+")
	if len(parts) != 3 {
		return errors.New("file name is not <name>+<partition>+<offset>")
	}
	var err error
	if k.Partition, err = strconv.Atoi(parts[1]); err != nil {
		return fmt.Errorf("partition %q: %w", parts[1], err)
	}
	if k.Offset, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
		return fmt.Errorf("offset %q: %w", parts[2], err)
	}
	name, ok := strings.CutPrefix(parts[0], "dataexport.")
	if !ok {
		return errors.New("file name does not start with \"dataexport.\"")
	}
	head, id, ok := strings.Cut(name, ".integration.")
	if !ok || id == "" {
		return errors.New("file name has no .integration.<id>")
	}
	k.IntegrationID = id
	if cluster, conn, ok := strings.Cut(head, "."); ok {
		k.Cluster, k.ConnectionType = cluster, conn
	} else {
		k.ConnectionType = head
	}
	return nil
}

// EventTypeFromKey returns the event_type= folder of a key, or "".
func EventTypeFromKey(key string) string { return keyFolders(key).EventType }

// HourFromKey returns the hour of a key's date= folder; zero when it has
// none or its hour does not parse.
func HourFromKey(key string) time.Time { return keyFolders(key).Date }
