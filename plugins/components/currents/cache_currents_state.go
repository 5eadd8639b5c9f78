package currents

import (
	"context"
	"errors"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/internal/store"
)

const (
	// StateCacheName is the currents_state cache's name.
	StateCacheName    = "currents_state"
	cstFieldPath      = "path"
	cstDefaultPath    = "./currents-state"
	cstFieldDefaultTL = "default_ttl"
)

func currentsStateCacheSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Version("0.1.0").
		Summary("A durable cache in a folder on the local disk, with no server: the braze_currents input's checkpoints and the mparticle output's ledger on one machine, safe through kills and power cuts.").
		Description(`
Keeps its keys in an embedded store (Pebble, in `+"`path`"+`). Every write is fsynced before it
returns, so a value the input or the output was told is written survives a killed process and a
power cut alike, and a write is atomic: a key holds its old value or its new one, never a part
of either. Benthos's `+"`file`"+` cache writes a key by truncating its file, then writing it, so a
kill in between leaves an empty checkpoint.

TTLs are kept (the ledger's 72h retention): an expired key reads as missing, and expired keys
are deleted every hour. One process at a time may open a folder: a second one fails to start
with an error naming it. Give each instance its own folder (a volume per pod); instances that
share checkpoints or a ledger need a shared cache such as `+"`redis`"+`.`).
		Fields(
			service.NewStringField(cstFieldPath).
				Description("The folder of the store, created if needed. It must hold nothing else.").
				Default(cstDefaultPath),
			service.NewDurationField(cstFieldDefaultTL).
				Description("The TTL of a key set without one; empty: for good.").
				Optional().
				Advanced(),
		).
		Example("Checkpoints on one machine", "A replay that a restart, even after `kill -9`, resumes without reading a completed object again.", `
input:
  braze_currents:
    url: s3://my-currents-bucket/currents?region=us-east-1
    since: 2026-11-01-00
    until: 2026-11-02-00
    checkpoint_cache: state
cache_resources:
  - label: state
    currents_state:
      path: ./currents-state
`)
}

func init() {
	err := service.RegisterCache(StateCacheName, currentsStateCacheSpec(),
		func(conf *service.ParsedConfig, _ *service.Resources) (service.Cache, error) {
			return newStateCache(conf)
		})
	if err != nil {
		panic(err)
	}
}

func newStateCache(conf *service.ParsedConfig) (*stateCache, error) {
	path, err := conf.FieldString(cstFieldPath)
	if err != nil {
		return nil, err
	}
	var ttl time.Duration
	if conf.Contains(cstFieldDefaultTL) {
		if ttl, err = conf.FieldDuration(cstFieldDefaultTL); err != nil {
			return nil, err
		}
	}
	s, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, err
	}
	return &stateCache{s: s, ttl: ttl}, nil
}

// stateCache is a service.Cache over internal/store.
type stateCache struct {
	s   *store.Store
	ttl time.Duration // for a Set without one
}

func (c *stateCache) ttlOf(ttl *time.Duration) time.Duration {
	if ttl != nil {
		return *ttl
	}
	return c.ttl
}

func (c *stateCache) Get(_ context.Context, key string) ([]byte, error) {
	v, found, err := c.s.Get([]byte(key))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, service.ErrKeyNotFound
	}
	return v, nil
}

func (c *stateCache) Set(_ context.Context, key string, value []byte, ttl *time.Duration) error {
	return c.s.Set([]byte(key), value, c.ttlOf(ttl))
}

// SetMulti writes the items in one atomic, fsynced write. Benthos calls it
// where it batches cache writes itself (the cache output); the
// mparticle output's ledger, which reaches caches through
// Resources.AccessCache, does not see it and sets one key at a time.
func (c *stateCache) SetMulti(_ context.Context, items ...service.CacheItem) error {
	entries := make([]store.Entry, len(items))
	for i, it := range items {
		entries[i] = store.Entry{Key: []byte(it.Key), Value: it.Value, TTL: c.ttlOf(it.TTL)}
	}
	return c.s.SetMany(entries)
}

func (c *stateCache) Add(_ context.Context, key string, value []byte, ttl *time.Duration) error {
	err := c.s.Add([]byte(key), value, c.ttlOf(ttl))
	if errors.Is(err, store.ErrExists) {
		return service.ErrKeyAlreadyExists
	}
	return err
}

func (c *stateCache) Delete(_ context.Context, key string) error {
	return c.s.Delete([]byte(key))
}

func (c *stateCache) Close(context.Context) error { return c.s.Close() }
