package main

import (
	"context"
	"encoding/json"
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
	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// inputName and the fields below are the braze_currents input's, defined in
// plugins/components/currents/input_braze_currents.go (bciField*, not
// exported). The report reads only these; TestFieldsAreTheInputs checks each
// against the input's registered spec, and the defaults come from that spec
// at run time (specDefaults), so a default changed there changes here.
const (
	inputName             = "braze_currents"
	fieldURL              = "url"
	fieldEventTypes       = "event_types"
	fieldExcludeTypes     = "exclude_event_types"
	fieldSince            = "since"
	fieldUntil            = "until"
	fieldCheckpointCache  = "checkpoint_cache"
	fieldCheckpointPrefix = "checkpoint_prefix"
	fieldShard            = "shard"
	fieldShardIndex       = "index"
	fieldShardCount       = "count"
	fieldQuarantine       = "quarantine"
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
// (`label: …` and `braze_currents: {…}`), with the spec's defaults.
func parseInput(conf string, now time.Time) (settings, error) {
	var s settings
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(conf), &doc); err != nil {
		return s, err
	}
	var fields *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		fields = child(doc.Content[0], inputName)
	}
	if fields == nil || fields.Kind != yaml.MappingNode {
		return s, fmt.Errorf("no %s object in %q", inputName, conf)
	}
	defaults, err := specDefaults()
	if err != nil {
		return s, err
	}
	f := fieldReader{node: fields, defaults: defaults}
	s.url = f.str(fieldURL)
	if s.url == "" && f.err == nil {
		f.err = fmt.Errorf("%s is empty", fieldURL)
	}
	s.quarantine = f.str(fieldQuarantine)
	include, exclude := f.list(fieldEventTypes), f.list(fieldExcludeTypes)
	since, until := f.str(fieldSince), f.str(fieldUntil)
	s.checkpointCache = f.str(fieldCheckpointCache)
	s.checkpointPrefix = f.str(fieldCheckpointPrefix)
	s.shard.Index = f.int(fieldShard, fieldShardIndex)
	s.shard.Count = f.int(fieldShard, fieldShardCount)
	if f.err != nil {
		return s, f.err
	}
	if s.types, err = currents.NewTypeFilter(include, exclude); err != nil {
		return s, fmt.Errorf("%s/%s: %w", fieldEventTypes, fieldExcludeTypes, err)
	}
	s.typesText = "all"
	if len(include) > 0 {
		s.typesText = strings.Join(include, ", ")
	}
	if len(exclude) > 0 {
		s.typesText += " except " + strings.Join(exclude, ", ")
	}
	if s.rng.Since, err = export.ParseBound(since, now); err != nil {
		return s, fmt.Errorf("%s: %w", fieldSince, err)
	}
	if s.rng.Until, err = export.ParseBound(until, now); err != nil {
		return s, fmt.Errorf("%s: %w", fieldUntil, err)
	}
	if err := s.rng.Validate(); err != nil {
		return s, fmt.Errorf("%s/%s: %w", fieldSince, fieldUntil, err)
	}
	if err := s.shard.Validate(); err != nil {
		return s, fmt.Errorf("%s: %w", fieldShard, err)
	}
	return s, nil
}

// fieldReader reads scalar values of a mapping node as written (so that a
// `since: 2026-11-01` stays a string), falling back to the spec's defaults;
// the first error is kept, naming its field.
type fieldReader struct {
	node     *yaml.Node
	defaults map[string]any
	err      error
}

func (f *fieldReader) lookup(path ...string) (*yaml.Node, any) {
	n, d := f.node, any(f.defaults)
	for _, p := range path {
		if n != nil {
			n = child(n, p)
		}
		if m, ok := d.(map[string]any); ok {
			d = m[p]
		} else {
			d = nil
		}
	}
	return n, d
}

func (f *fieldReader) fail(path []string, format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: %s", strings.Join(path, "."), fmt.Sprintf(format, args...))
	}
}

func (f *fieldReader) str(path ...string) string {
	n, d := f.lookup(path...)
	if n == nil {
		s, _ := d.(string)
		return s
	}
	if n.Kind != yaml.ScalarNode {
		f.fail(path, "want a string")
		return ""
	}
	return n.Value
}

func (f *fieldReader) list(path ...string) []string {
	n, _ := f.lookup(path...)
	if n == nil {
		return nil // every list the report reads defaults to empty
	}
	if n.Kind != yaml.SequenceNode {
		f.fail(path, "want a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			f.fail(path, "want a list of strings")
			return nil
		}
		out = append(out, c.Value)
	}
	return out
}

func (f *fieldReader) int(path ...string) int {
	n, d := f.lookup(path...)
	text := fmt.Sprint(d)
	if n != nil {
		text = n.Value
		if n.Kind != yaml.ScalarNode {
			text = "not a scalar"
		}
	}
	v, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil {
		f.fail(path, "%q is not an integer", text)
	}
	return v
}

// child returns the value of key in a mapping node, nil when absent.
func child(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// specDefaults returns the defaults of the braze_currents input's fields,
// nested objects as maps, from the spec the input registered. Benthos v4.27
// exposes a component's spec only as its documentation JSON.
func specDefaults() (map[string]any, error) {
	var raw []byte
	var err error
	service.GlobalEnvironment().WalkInputs(func(name string, c *service.ConfigView) {
		if name == inputName {
			raw, err = c.FormatJSON()
		}
	})
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("the %s input is not compiled in", inputName)
	}
	var spec struct {
		Config specField `json:"config"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("the %s input's spec: %w", inputName, err)
	}
	return spec.Config.defaults(), nil
}

type specField struct {
	Name     string      `json:"name"`
	Default  any         `json:"default"`
	Children []specField `json:"children"`
}

func (f specField) defaults() map[string]any {
	out := map[string]any{}
	for _, c := range f.Children {
		if len(c.Children) > 0 {
			out[c.Name] = c.defaults()
		} else if c.Default != nil {
			out[c.Name] = c.Default
		}
	}
	return out
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
			return nil, fmt.Errorf("checkpoint %s: %w", key, err)
		}
		return &cp, nil
	}
}
