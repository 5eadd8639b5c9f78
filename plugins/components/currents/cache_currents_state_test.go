package currents

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

// The currents_state cache answers as Benthos caches do (a missing key,
// an Add over a key), keeps TTLs and batched sets, and holds its values
// across a reopening; a folder another instance holds refuses the start
// with its path.
func TestStateCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	open := func() (*stateCache, error) {
		conf, err := currentsStateCacheSpec().ParseYAML(fmt.Sprintf("path: %q", dir), nil)
		if err != nil {
			t.Fatal(err)
		}
		return newStateCache(conf)
	}
	ctx := context.Background()
	c, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "nope"); !errors.Is(err, service.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if err := c.Set(ctx, "cp", []byte(`{"status":"completed"}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(ctx, "cp", []byte("x"), nil); !errors.Is(err, service.ErrKeyAlreadyExists) {
		t.Fatalf("Add over a key: %v", err)
	}
	short := time.Nanosecond
	if err := c.SetMulti(ctx, service.CacheItem{Key: "a", Value: []byte("1")}, service.CacheItem{Key: "gone", Value: []byte("2"), TTL: &short}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	if _, err := c.Get(ctx, "gone"); !errors.Is(err, service.ErrKeyNotFound) {
		t.Fatalf("a key past its TTL: %v", err)
	}
	if _, err := open(); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("a second instance on the folder: %v, want an error naming it", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err = open(); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for k, want := range map[string]string{"cp": `{"status":"completed"}`, "a": "1"} {
		if v, err := c.Get(ctx, k); err != nil || string(v) != want {
			t.Fatalf("%s after reopening: %q %v", k, v, err)
		}
	}
	if err := c.Delete(ctx, "cp"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "cp"); !errors.Is(err, service.ErrKeyNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
}
