package export

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"
)

// The key is what every existing checkpoint cache holds: it must not change.
func TestCheckpointKeyIsPrefixAndSHA256(t *testing.T) {
	got := CheckpointKey("braze_currents_", "abc")
	want := "braze_currents_ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got != want {
		t.Fatalf("CheckpointKey = %s, want %s", got, want)
	}
}

func TestParseCheckpoint(t *testing.T) {
	cp := Checkpoint{Status: StatusFailed, Object: "currents/x.avro", Events: 3, Error: "bad sync", Class: "corrupt", Block: 2, Offset: 99, At: "2026-11-01T00:00:00Z"}
	b, _ := json.Marshal(cp)
	got, err := ParseCheckpoint(b)
	if err != nil || !reflect.DeepEqual(got, cp) {
		t.Fatalf("ParseCheckpoint(%s) = %+v, %v", b, got, err)
	}
	for _, bad := range []string{`not json`, `{"status":"probe"}`, `{}`} {
		if _, err := ParseCheckpoint([]byte(bad)); err == nil || !strings.Contains(err.Error(), "checkpoint value") {
			t.Errorf("ParseCheckpoint(%s): %v, want an error naming the value", bad, err)
		}
	}
}

func TestListQuarantined(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	for _, k := range []string{QuarantineKey("currents/a/x.avro"), QuarantineKey("y.avro"), "currents/a/notes.txt"} {
		if err := b.WriteAll(ctx, k, []byte("{}"), nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ListQuarantined(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"currents/a/x.avro": true, "y.avro": true}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ListQuarantined = %v, want %v", got, want)
	}
}
