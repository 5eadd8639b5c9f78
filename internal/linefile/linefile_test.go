package linefile

import (
	"os"
	"path/filepath"
	"testing"
)

// A killed writer's torn last line is cut off when the file is opened
// again, and lines go on from the last whole one.
func TestOpenCutsATornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq", "delivery.jsonl")
	f, torn, err := Open(path, false)
	if err != nil || torn != 0 {
		t.Fatal(torn, err)
	}
	if err := f.Write([]byte(`{"event_id":"a"}`)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// What a kill between two write calls leaves.
	raw, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(raw, `{"event_id":"b","rea`...), 0o644); err != nil {
		t.Fatal(err)
	}
	f, torn, err = Open(path, false)
	if err != nil || torn != int64(len(`{"event_id":"b","rea`)) {
		t.Fatalf("torn %d, %v", torn, err)
	}
	if err := f.Write([]byte("{\"event_id\":\"b\"}\n")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got, _ := os.ReadFile(path); string(got) != "{\"event_id\":\"a\"}\n{\"event_id\":\"b\"}\n" {
		t.Fatalf("file %q", got)
	}
	f, _, err = Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got, _ := os.ReadFile(path); len(got) != 0 {
		t.Fatalf("truncated file holds %q", got)
	}
}
