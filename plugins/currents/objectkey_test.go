package currents_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

func TestParseObjectKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want currents.ObjectKey
	}{
		{
			name: "schema id and zone",
			key:  "currents/dataexport.prod-03.S3.integration.5e1e4d2c9b8a7f6e5d4c3b2a/event_type=users.messages.email.Open/date=2026-11-01-13/344/us-03/dataexport.prod-03.S3.integration.5e1e4d2c9b8a7f6e5d4c3b2a+2+1500.avro",
			want: currents.ObjectKey{Prefix: "currents", Cluster: "prod-03", ConnectionType: "S3", IntegrationID: "5e1e4d2c9b8a7f6e5d4c3b2a",
				EventType: "users.messages.email.Open", DateHour: "2026-11-01-13", Date: time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC),
				SchemaID: "344", Zone: "us-03", Partition: 2, Offset: 1500},
		},
		{
			name: "version and environment",
			key:  "my/prefix/dataexport.prod-01.GCS.integration.abc123/event_type=users.canvas.Entry/date=2025-02-28-23/version=6/us-01/dataexport.prod-01.GCS.integration.abc123+0+98.avro",
			want: currents.ObjectKey{Prefix: "my/prefix", Cluster: "prod-01", ConnectionType: "GCS", IntegrationID: "abc123",
				EventType: "users.canvas.Entry", DateHour: "2025-02-28-23", Date: time.Date(2025, 2, 28, 23, 0, 0, 0, time.UTC),
				SchemaVersion: 6, Environment: "us-01", Partition: 0, Offset: 98},
		},
		{
			name: "2017 without cluster",
			key:  "currents/dataexport.S3.integration.58c0b1ef/event_type=users.behaviors.Uninstall/date=2017-06-01-00/dataexport.S3.integration.58c0b1ef+1+0000012345.avro",
			want: currents.ObjectKey{Prefix: "currents", ConnectionType: "S3", IntegrationID: "58c0b1ef",
				EventType: "users.behaviors.Uninstall", DateHour: "2017-06-01-00", Date: time.Date(2017, 6, 1, 0, 0, 0, 0, time.UTC),
				Partition: 1, Offset: 12345},
		},
		{
			name: "bare file name",
			key:  "dataexport.prod-05.AzureBlob.integration.x9+3+7.avro",
			want: currents.ObjectKey{Cluster: "prod-05", ConnectionType: "AzureBlob", IntegrationID: "x9", Partition: 3, Offset: 7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := currents.ParseObjectKey(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Key = tt.key
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if currents.EventTypeFromKey(tt.key) != tt.want.EventType {
				t.Fatalf("EventTypeFromKey = %q", currents.EventTypeFromKey(tt.key))
			}
			if h := currents.HourFromKey(tt.key); !h.Equal(tt.want.Date) {
				t.Fatalf("HourFromKey = %v, want %v", h, tt.want.Date)
			}
		})
	}
}

func TestParseObjectKeyRejects(t *testing.T) {
	for _, key := range []string{
		"currents/notes.txt",
		"currents/dataexport.prod-01.S3.integration.a+1.avro",
		"currents/dataexport.prod-01.S3.integration.a+x+1.avro",
		"currents/other.prod-01.S3.integration.a+1+1.avro",
		"currents/dataexport.prod-01.S3.a+1+1.avro",
		"x/event_type=users.canvas.Entry/date=2025-13-01/dataexport.prod-01.S3.integration.a+1+1.avro",
	} {
		if _, err := currents.ParseObjectKey(key); !errors.Is(err, currents.ErrNotExportKey) {
			t.Errorf("%q: err = %v, want ErrNotExportKey", key, err)
		}
	}
}

// Every layout the generator writes parses back to the type and hour it used.
func TestGeneratedKeysParse(t *testing.T) {
	for _, layout := range []gen.Layout{gen.LayoutSchemaID, gen.LayoutVersion, gen.Layout2017} {
		m, bodies := generate(t, gen.Config{Events: 200, Hours: 5, Layout: layout, Seed: 1})
		for _, o := range m.Objects {
			k, err := currents.ParseObjectKey(o.Key)
			if err != nil {
				t.Fatalf("%s: %v", layout, err)
			}
			if k.EventType != o.EventType || k.Date.IsZero() || k.IntegrationID == "" {
				t.Fatalf("%s: %q parsed as %+v", layout, o.Key, k)
			}
			if (layout == gen.Layout2017) != (k.Cluster == "") {
				t.Fatalf("%s: cluster %q", layout, k.Cluster)
			}
			evs, _, err := decodeAll(o.Key, bodies[o.Key])
			if err != nil || len(evs) != o.Events {
				t.Fatalf("%s: decoded %d of %d: %v", o.Key, len(evs), o.Events, err)
			}
		}
	}
}

// The folders of a key whose file name is not Braze's still count: the
// lister reads them for every .avro object it finds.
func TestFoldersOfAnyKey(t *testing.T) {
	key := "x/event_type=users.behaviors.Uninstall/date=2026-11-01-13/part-0.avro"
	if got := currents.EventTypeFromKey(key); got != "users.behaviors.Uninstall" {
		t.Errorf("EventTypeFromKey = %q", got)
	}
	if got, want := currents.HourFromKey(key), time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("HourFromKey = %v, want %v", got, want)
	}
	for _, key := range []string{"x/part-0.avro", "x/date=2026-13-01-00/part-0.avro", "event_type=a.b"} {
		if h := currents.HourFromKey(key); !h.IsZero() {
			t.Errorf("HourFromKey(%q) = %v, want zero", key, h)
		}
	}
}

func TestErrorClass(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&currents.DecodeError{Class: currents.ErrCorruptBlock}, "corrupt block"},
		{fmt.Errorf("wrapped: %w", &currents.DecodeError{Class: currents.ErrBadSync}), "sync marker mismatch"},
		{&currents.DecodeError{}, "other"}, // no class: no panic
		{errors.New("network"), "other"},
		{nil, "other"},
	} {
		if got := currents.ErrorClass(c.err); got != c.want {
			t.Errorf("ErrorClass(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
