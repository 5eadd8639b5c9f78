package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	"github.com/currents-mparticle/currents-mparticle/internal/export"
	bci "github.com/currents-mparticle/currents-mparticle/plugins/components/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// The braze_currents input's name and the fields the report names in its
// messages; the input parses its own config (bci.ParseInputSettings).
const (
	inputName             = bci.InputName
	fieldURL              = bci.InputFieldURL
	fieldQuarantine       = bci.InputFieldQuarantine
	fieldCheckpointCache  = bci.InputFieldCheckpointCache
	fieldCheckpointPrefix = bci.InputFieldCheckpointPrefix
)

// settings are what the report needs of a pipeline's braze_currents input.
type settings struct {
	label            string // the input's label, "" when it has none
	url              string
	quarantine       string // "" when failures are not quarantined
	types            currents.TypeFilter
	typesText        string // event_types and exclude_event_types, for the header
	rng              export.Range
	shard            export.Shard
	checkpointCache  string // the cache resource's label, "" for none
	checkpointPrefix string
	cacheYAML        string // the cache resource's config, label included
}

// loadSettings reads a pipeline config the way the distribution does (the
// same components, `${VAR}` and `${VAR:default}` from the environment, extra
// resource files) and returns the settings of its braze_currents input: the
// one labelled label, or the only one. now resolves `since`/`until`
// durations, as the input does when it starts.
func loadSettings(path string, resources []string, label string, now time.Time) (settings, error) {
	var s settings
	raw, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	var missing []string
	var mu sync.Mutex
	sb := service.NewStreamBuilder()
	sb.SetEnvVarLookupFunc(func(name string) (string, bool) {
		v, ok := os.LookupEnv(name)
		if !ok {
			mu.Lock()
			missing = append(missing, name)
			mu.Unlock()
		}
		return v, ok
	})
	if err := sb.SetYAML(string(raw)); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	for _, r := range resources {
		rb, err := os.ReadFile(r)
		if err != nil {
			return s, err
		}
		if err := sb.AddResourcesYAML(string(rb)); err != nil {
			return s, fmt.Errorf("%s: %w", r, err)
		}
	}

	type found struct{ label, yaml string }
	var inputs []found
	caches := map[string]string{}
	err = sb.WalkComponents(func(w *service.WalkedComponent) error {
		switch {
		case w.ComponentType == "input" && w.Name == inputName:
			inputs = append(inputs, found{w.Label, w.ConfigYAML()})
		case w.ComponentType == "cache" && w.Label != "":
			caches[w.Label] = w.ConfigYAML()
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	var in *found
	var labels []string
	for i := range inputs {
		labels = append(labels, strconv.Quote(inputs[i].label))
		if label != "" && inputs[i].label == label {
			in = &inputs[i]
		}
	}
	switch {
	case len(inputs) == 0:
		return s, fmt.Errorf("%s has no %s input", path, inputName)
	case label != "" && in == nil:
		return s, fmt.Errorf("%s has no %s input labelled %q (its %s inputs: %s)", path, inputName, label, inputName, strings.Join(labels, ", "))
	case label == "" && len(inputs) > 1:
		return s, fmt.Errorf("%s has %d %s inputs (labels %s): choose one with -label", path, len(inputs), inputName, strings.Join(labels, ", "))
	case in == nil:
		in = &inputs[0]
	}
	s, err = parseInput(in.yaml, now)
	if err != nil {
		where := inputName + " input"
		if in.label != "" {
			where += fmt.Sprintf(" %q", in.label)
		}
		err = fmt.Errorf("%s, %s: %w", path, where, err)
		if len(missing) > 0 {
			sort.Strings(missing)
			err = fmt.Errorf("%w (environment variables the config uses that are not set: %s)", err, strings.Join(missing, ", "))
		}
		return s, err
	}
	s.label = in.label
	if s.checkpointCache != "" {
		if s.cacheYAML = caches[s.checkpointCache]; s.cacheYAML == "" {
			return s, fmt.Errorf("%s: %s: cache resource %q not found", path, fieldCheckpointCache, s.checkpointCache)
		}
	}
	return s, nil
}

// parseInput reads the walked config of one braze_currents input
// (`label: …` and `braze_currents: {…}`) through the input's own parser.
func parseInput(conf string, now time.Time) (settings, error) {
	var s settings
	var doc struct {
		Body yaml.Node `yaml:"braze_currents"`
	}
	if err := yaml.Unmarshal([]byte(conf), &doc); err != nil {
		return s, err
	}
	if doc.Body.Kind == 0 {
		return s, fmt.Errorf("no %s object in %q", inputName, conf)
	}
	body, err := yaml.Marshal(&doc.Body)
	if err != nil {
		return s, err
	}
	in, err := bci.ParseInputSettings(string(body), now)
	if err != nil {
		return s, err
	}
	s.url, s.quarantine, s.types, s.rng, s.shard = in.URL, in.Quarantine, in.Types, in.Range, in.Shard
	s.checkpointCache, s.checkpointPrefix = in.CheckpointCache, in.CheckpointPrefix
	s.typesText = "all"
	if len(in.EventTypes) > 0 {
		s.typesText = strings.Join(in.EventTypes, ", ")
	}
	if len(in.ExcludeEventTypes) > 0 {
		s.typesText += " except " + strings.Join(in.ExcludeEventTypes, ", ")
	}
	return s, nil
}

// taskInputName is an input registered in the report's own environment: a
// stream over it and the pipeline's checkpoint cache hands the report the
// stream's resources (Benthos v4.27 has no other public way to build a cache
// resource from its config), runs one task, and ends.
const taskInputName = "currents_report_task"

// withCache builds the cache resource s names (redis, file, aws_dynamodb, …)
// from the pipeline's config and calls fn with it, closing it afterwards.
func withCache(ctx context.Context, s settings, fn func(context.Context, *cacheStore) error) error {
	env := service.NewEnvironment()
	result := make(chan error, 1)
	err := env.RegisterInput(taskInputName, service.NewConfigSpec(), func(_ *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
		return &taskInput{run: func(ctx context.Context) {
			result <- fn(ctx, &cacheStore{mgr: mgr, label: s.checkpointCache})
		}}, nil
	})
	if err != nil {
		return err
	}
	sb := env.NewStreamBuilder()
	conf := fmt.Sprintf(`
input: { %s: {} }
output: { drop: {} }
http: { enabled: false }
logger: { level: NONE }
metrics: { none: {} }
shutdown_timeout: 10s
`, taskInputName)
	if err := sb.SetYAML(conf); err != nil {
		return err
	}
	if err := sb.AddCacheYAML(s.cacheYAML); err != nil {
		return fmt.Errorf("%s: cache resource %q: %w", fieldCheckpointCache, s.checkpointCache, err)
	}
	stream, err := sb.Build()
	if err != nil {
		return fmt.Errorf("%s: cache resource %q: %w", fieldCheckpointCache, s.checkpointCache, err)
	}
	if err := stream.Run(ctx); err != nil {
		return fmt.Errorf("%s: cache resource %q: %w", fieldCheckpointCache, s.checkpointCache, err)
	}
	select {
	case err := <-result:
		return err
	default:
		return fmt.Errorf("%s: cache resource %q: the stream ended before the report ran", fieldCheckpointCache, s.checkpointCache)
	}
}

type taskInput struct {
	run  func(context.Context)
	done bool
}

func (t *taskInput) Connect(context.Context) error { return nil }

func (t *taskInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	if !t.done {
		t.done = true
		t.run(ctx)
	}
	return nil, nil, service.ErrEndOfInput
}

func (t *taskInput) Close(context.Context) error { return nil }

// cacheStore reads and deletes checkpoint keys in the pipeline's cache.
type cacheStore struct {
	mgr   *service.Resources
	label string
}

// get returns the value of key, nil when there is none.
func (c *cacheStore) get(ctx context.Context, key string) ([]byte, error) {
	var value []byte
	var getErr error
	err := c.mgr.AccessCache(ctx, c.label, func(cache service.Cache) {
		value, getErr = cache.Get(ctx, key)
	})
	if err == nil {
		err = getErr
	}
	if errors.Is(err, service.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache %q: get %s: %w", c.label, key, err)
	}
	return value, nil
}

func (c *cacheStore) delete(ctx context.Context, key string) error {
	var delErr error
	err := c.mgr.AccessCache(ctx, c.label, func(cache service.Cache) {
		delErr = cache.Delete(ctx, key)
	})
	if err == nil {
		err = delErr
	}
	if err != nil {
		return fmt.Errorf("cache %q: delete %s: %w", c.label, key, err)
	}
	return nil
}

// lookup is an export.CheckpointLookup over the cache.
func (c *cacheStore) lookup(prefix string) export.CheckpointLookup {
	return func(ctx context.Context, object string) (*export.Checkpoint, error) {
		key := export.CheckpointKey(prefix, object)
		b, err := c.get(ctx, key)
		if err != nil || b == nil {
			return nil, err
		}
		cp, err := export.ParseCheckpoint(b)
		if err != nil {
			// Listed as what it is, not an abort: the rest of the
			// export still deserves a report.
			cp = export.UnreadableCheckpoint(object, fmt.Errorf("checkpoint %s: %w", key, err))
		}
		return &cp, nil
	}
}
