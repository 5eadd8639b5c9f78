package currents

import (
	"fmt"

	"github.com/benthosdev/benthos/v4/public/service"

	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// The `decode_limits` field of the scanner and the input: the decoder's
// limits, under their own names (decoder.Limit*), with its defaults.
const fieldDecodeLimits = "decode_limits"

// decodeLimitsDescription is shared by both components' descriptions.
const decodeLimitsDescription = `A file says how many events a block holds and how many items an array has; a few
kilobytes can claim gigabytes. Every such claim is checked against ` + "`decode_limits`" + ` before
memory is allocated for it, so decoding costs at most what the limits allow whatever the file
says. The defaults are far above what Braze writes (a whole 100,000-event file in one block
decodes) and bound one block to about 96 MiB of decoded bytes and 6 million values (240 MB).
A file past a limit fails with the class ` + "`decode limit exceeded`" + ` and an error naming the
limit and its value.`

type decodeLimitField struct {
	name string
	def  int
	desc string
}

var decodeLimitFields = []decodeLimitField{
	{decoder.LimitMaxBlockEvents, decoder.DefaultMaxBlockEvents, "The most events (records) in one Avro block."},
	{decoder.LimitMaxBlockBytes, decoder.DefaultMaxBlockBytes, "The most bytes of one block, as stored and once decompressed. A compressed block is never inflated past it."},
	{decoder.LimitMaxBlockValues, decoder.DefaultMaxBlockValues, "The most values one block decodes into: events × fields, plus every array or map item and nested record field. Each costs 40 bytes."},
	{decoder.LimitMaxItems, decoder.DefaultMaxItems, "The most items of one array or map value."},
	{decoder.LimitMaxDepth, decoder.DefaultMaxDepth, "The deepest nesting of arrays, maps and records, in the schema and in the values."},
	{decoder.LimitMaxSchemaBytes, decoder.DefaultMaxSchemaBytes, "The largest writer schema (JSON bytes) in a file's header."},
	{decoder.LimitMaxSchemaFields, decoder.DefaultMaxSchemaFields, "The most fields of a writer schema, nested records included."},
}

// decodeLimitsField is the `decode_limits` object field.
func decodeLimitsField() *service.ConfigField {
	children := make([]*service.ConfigField, len(decodeLimitFields))
	for i, f := range decodeLimitFields {
		children[i] = service.NewIntField(f.name).Description(f.desc).Default(f.def)
	}
	return service.NewObjectField(fieldDecodeLimits, children...).
		Description("Bounds on what decoding one file may cost, checked before memory is allocated. A file past a limit is refused like a corrupt one. The defaults suit every Braze export.").
		Advanced()
}

// decodeLimitsFromParsed reads the `decode_limits` field into the limits of
// ReaderOptions (the caller sets Object and EventType).
func decodeLimitsFromParsed(conf *service.ParsedConfig) (decoder.ReaderOptions, error) {
	var o decoder.ReaderOptions
	dst := map[string]*int{
		decoder.LimitMaxBlockEvents:  &o.MaxBlockEvents,
		decoder.LimitMaxBlockBytes:   &o.MaxBlockBytes,
		decoder.LimitMaxBlockValues:  &o.MaxBlockValues,
		decoder.LimitMaxItems:        &o.MaxItems,
		decoder.LimitMaxDepth:        &o.MaxDepth,
		decoder.LimitMaxSchemaBytes:  &o.MaxSchemaBytes,
		decoder.LimitMaxSchemaFields: &o.MaxSchemaFields,
	}
	for _, f := range decodeLimitFields {
		v, err := conf.FieldInt(fieldDecodeLimits, f.name)
		if err != nil {
			return o, err
		}
		// Zero would silently mean the default to the decoder.
		if v < 1 {
			return o, fmt.Errorf("%s.%s must be at least 1, got %d", fieldDecodeLimits, f.name, v)
		}
		*dst[f.name] = v
	}
	return o, nil
}
