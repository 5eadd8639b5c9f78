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
	f, torn, err := Open(path, Options{})
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
	f, torn, err = Open(path, Options{})
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
	f, _, err = Open(path, Options{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got, _ := os.ReadFile(path); len(got) != 0 {
		t.Fatalf("truncated file holds %q", got)
	}
}

// Two writers of one file (two pipelines on one host, one dead-letter
// folder) append whole lines between each other: none overwrites the
// other's.
func TestTwoWritersAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "delivery.jsonl")
	a, _, err := Open(path, Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, w := range []struct {
		f    *File
		line string
	}{{a, "a1"}, {b, "b1"}, {a, "a2"}, {b, "b2"}} {
		if err := w.f.Write([]byte(w.line)); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(path); string(got) != "a1\nb1\na2\nb2\n" {
		t.Fatalf("file %q", got)
	}
}
