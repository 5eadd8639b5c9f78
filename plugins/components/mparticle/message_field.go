package mparticle

import (
	"regexp"

	"github.com/benthosdev/benthos/v4/public/service"
)

// messageField is an interpolated string field read once per message, such
// as the output's `feed` and `ledger.key`.
//
// MessageBatch.TryInterpolatedString copies the whole batch for every
// message it is asked about, so reading a field of each message costs the
// square of the batch size: with the two fields above it took 15 % of the
// binary's CPU in a profile of a run into the emulator. The defaults only
// read one metadata key, which MetaGet reads directly; any other expression
// is evaluated on the message alone (batch-wide functions such as
// batch_size() see a batch of one).
type messageField struct {
	metaKey string // set when the field is exactly `${! @key }` or `${! meta("key") }`
	interp  *service.InterpolatedString
}

// messageFieldMetaOnly matches the interpolations that read one metadata key.
var messageFieldMetaOnly = regexp.MustCompile(`^\$\{!\s*(?:@([A-Za-z0-9_]+)|meta\("([A-Za-z0-9_]+)"\))\s*\}$`)

// newMessageField reads the interpolated string field at path.
func newMessageField(conf *service.ParsedConfig, path ...string) (messageField, error) {
	interp, err := conf.FieldInterpolatedString(path...)
	if err != nil {
		return messageField{}, err
	}
	f := messageField{interp: interp}
	if raw, err := conf.FieldString(path...); err == nil {
		if m := messageFieldMetaOnly.FindStringSubmatch(raw); m != nil {
			f.metaKey = m[1] + m[2]
		}
	}
	return f, nil
}

// get resolves the field for msg. A missing metadata key reads "null", as
// the interpolation would.
func (f messageField) get(msg *service.Message) (string, error) {
	if f.metaKey == "" {
		return f.interp.TryString(msg)
	}
	if v, ok := msg.MetaGet(f.metaKey); ok {
		return v, nil
	}
	return "null", nil
}
