package currents

import (
	"time"

	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"

	"github.com/currents-mparticle/currents-mparticle/internal/export"
)

// The names of the braze_currents input and of the fields tools name in
// their messages (cmd/currents-report).
const (
	InputName                  = "braze_currents"
	InputFieldURL              = bciFieldURL
	InputFieldQuarantine       = bciFieldQuarantine
	InputFieldCheckpointCache  = bciFieldCheckpointCache
	InputFieldCheckpointPrefix = bciFieldCheckpointPrefix
)

// InputSettings are what a braze_currents input's config says about which
// objects it reads and where it records them.
type InputSettings struct {
	URL        string // as configured
	Quarantine string // as configured; "" when failures are not quarantined
	// EventTypes and ExcludeEventTypes are the patterns as configured;
	// Types matches them.
	EventTypes, ExcludeEventTypes []string
	Types                         decoder.TypeFilter
	Range                         export.Range
	Shard                         export.Shard
	CheckpointCache               string // a cache resource's label, "" for none
	CheckpointPrefix              string
}

// ParseInputSettings reads the body of a braze_currents input config (what
// stands under `braze_currents:`) with the input's own spec, defaults and
// checks, so that a tool working on an input's export (cmd/currents-report)
// reads one config exactly as the input does. now resolves since/until
// durations, as the input does when it starts.
func ParseInputSettings(body string, now time.Time) (InputSettings, error) {
	conf, err := brazeCurrentsInputSpec().ParseYAML(body, nil)
	if err != nil {
		return InputSettings{}, err
	}
	c, err := bciConfigFromParsed(conf, now)
	if err != nil {
		return InputSettings{}, err
	}
	s := InputSettings{Types: c.types, Range: c.rng, Shard: c.shard,
		CheckpointCache: c.checkpointCache, CheckpointPrefix: c.checkpointPrefix}
	if s.URL, err = conf.FieldString(bciFieldURL); err != nil {
		return s, err
	}
	if s.Quarantine, err = conf.FieldString(bciFieldQuarantine); err != nil {
		return s, err
	}
	if s.EventTypes, err = conf.FieldStringList(bciFieldEventTypes); err != nil {
		return s, err
	}
	if s.ExcludeEventTypes, err = conf.FieldStringList(bciFieldExcludeEventTypes); err != nil {
		return s, err
	}
	return s, nil
}
