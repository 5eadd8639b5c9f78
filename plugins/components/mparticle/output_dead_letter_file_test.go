package mparticle

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

// dead_letter_file writes each message as one whole line to the file its
// interpolated path names, and a file whose last line a killed writer tore
// is cut back to its whole lines before it is appended to.
func TestDeadLetterFileWritesWholeLines(t *testing.T) {
	dir := t.TempDir()
	torn := filepath.Join(dir, "a.jsonl")
	if err := os.WriteFile(torn, []byte("{\"event_id\":\"0\"}\n{\"event_id\":\"1\",\"rea"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := service.NewStreamBuilder()
	b.SetPrintLogger(&mpOutputTestLogs{})
	produce, err := b.AddProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(`dead_letter_file: { path: '` + dir + `/${! @file }.jsonl' }`); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stream.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range []struct{ file, body string }{{"a", `{"event_id":"1"}`}, {"b", `{"event_id":"2"}`}, {"a", "{\"event_id\":\"3\"}\n"}} {
		msg := service.NewMessage([]byte(m.body))
		msg.MetaSetMut("file", m.file)
		if err := produce(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		torn:                          "{\"event_id\":\"0\"}\n{\"event_id\":\"1\"}\n{\"event_id\":\"3\"}\n",
		filepath.Join(dir, "b.jsonl"): "{\"event_id\":\"2\"}\n",
	} {
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("%s holds %q, want %q", filepath.Base(path), got, want)
		}
	}
}
