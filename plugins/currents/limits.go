package currents

import (
	"fmt"
	"unicode/utf8"
)

// Decode limits. A container file says how many events a block holds, how
// many items an array has and how deep its schema nests; a few kilobytes can
// claim gigabytes. Every claim is checked against these limits BEFORE the
// memory it asks for is allocated, so the cost of decoding one block is
// bounded by configuration whatever the file says.
//
// The defaults sit far above anything Braze writes and far below what a small
// container survives. Measured maxima they are compared with:
//   - the sample export (configs/sample, 105 files of all 55 types): 43 events
//     and 12.9 KB per block, 714 values per block, 34 fields, 2 array items,
//     arrays nested 1 deep, schemas of 1.7 KB;
//   - Braze's published writer schemas of those 55 types: at most 6.3 KB and
//     35 fields;
//   - the generator (plugins/currents/gen) at its largest plausible setting, a
//     whole 100,000-event file (Braze's most per file) in ONE block, of its
//     widest types: 64.4 MB decoded (WhatsApp InboundReceive, 644 B/event)
//     and 3.47 million values (email Click: 100,000 × 34 fields + items).
//
// At the defaults one block costs at most about 96 MiB of decoded bytes,
// 12 MB of events and 240 MB of values (40 B each); the files of the hostile
// corpus (gen.Hostile) are refused with a few MB.
const (
	// DefaultMaxBlockEvents bounds the events (records) of one block: 2.5×
	// a whole 100,000-event file in one block.
	DefaultMaxBlockEvents = 250_000
	// DefaultMaxBlockBytes bounds a block's stored and decoded bytes: 1.5×
	// the 64.4 MB of the largest plausible block; a deflate bomb inflates no
	// further than this.
	DefaultMaxBlockBytes = 96 << 20
	// DefaultMaxBlockValues bounds the values one block decodes into: events
	// × fields, plus every array or map item and nested record field. 1.7×
	// the 3.47 million of the largest plausible block.
	DefaultMaxBlockValues = 6_000_000
	// DefaultMaxItems bounds the items of one array or map value, over all
	// of its blocks: 50,000× the 2 items measured.
	DefaultMaxItems = 100_000
	// DefaultMaxDepth bounds the nesting of the schema's types and of the
	// values (a recursive record nests its values without a bigger schema).
	// Currents nests 1 deep (an array field).
	DefaultMaxDepth = 64
	// DefaultMaxSchemaBytes bounds the writer schema JSON: 40× the 6.3 KB of
	// Braze's largest schema.
	DefaultMaxSchemaBytes = 256 << 10
	// DefaultMaxSchemaFields bounds the fields of the writer schema, nested
	// records included: 28× the 35 of Braze's widest type.
	DefaultMaxSchemaFields = 1_000
)

// The names of the limits, as errors and configuration spell them.
const (
	LimitMaxBlockEvents  = "max_block_events"
	LimitMaxBlockBytes   = "max_block_bytes"
	LimitMaxBlockValues  = "max_block_values"
	LimitMaxItems        = "max_items"
	LimitMaxDepth        = "max_depth"
	LimitMaxSchemaBytes  = "max_schema_bytes"
	LimitMaxSchemaFields = "max_schema_fields"
)

const (
	// maxQuotedBytes bounds what an error message quotes of the input.
	maxQuotedBytes = 256
	// maxHeaderMetaEntries bounds the entries of one header metadata block.
	maxHeaderMetaEntries = 1024
	// eagerReadBytes is the most a block's claimed size is allocated at
	// once; larger blocks grow with the bytes that arrive. Braze's blocks
	// are far smaller, so the common path reads into one exact buffer.
	eagerReadBytes = 16 << 20
	// eagerHeaderReadBytes is the same for a header metadata value.
	eagerHeaderReadBytes = 1 << 20
)

// LimitError is the cause of an ErrLimitExceeded: what the file asked for,
// and the limit (its name and value) it went past.
type LimitError struct {
	Limit string // one of the Limit* names
	Max   int64  // the limit's value
	What  string // what exceeded it, e.g. "a block of 700000 events"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s exceeds %s = %d", e.What, e.Limit, e.Max)
}

func limitErr(limit string, max int64, format string, args ...any) error {
	return &LimitError{Limit: limit, Max: max, What: fmt.Sprintf(format, args...)}
}

// withDefaults fills the zero (or negative) limits with their defaults.
func (o ReaderOptions) withDefaults() ReaderOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxBlockBytes, DefaultMaxBlockBytes)
	def(&o.MaxBlockEvents, DefaultMaxBlockEvents)
	def(&o.MaxBlockValues, DefaultMaxBlockValues)
	def(&o.MaxItems, DefaultMaxItems)
	def(&o.MaxDepth, DefaultMaxDepth)
	def(&o.MaxSchemaBytes, DefaultMaxSchemaBytes)
	def(&o.MaxSchemaFields, DefaultMaxSchemaFields)
	return o
}

// quote quotes s for an error message, cut to a small bound: schemas, keys
// and values come from the file, and a message must never copy megabytes of
// it into a log line or a checkpoint record.
func quote(s string) string {
	if len(s) <= maxQuotedBytes {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d bytes)", truncUTF8(s, maxQuotedBytes), len(s))
}

// truncUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// boundedError keeps a cause's message short (a library error may quote the
// whole schema) while errors.Is and errors.As still see the cause.
type boundedError struct{ err error }

func (e boundedError) Error() string {
	msg := e.err.Error()
	if len(msg) <= maxQuotedBytes {
		return msg
	}
	return fmt.Sprintf("%s… (%d bytes)", truncUTF8(msg, maxQuotedBytes), len(msg))
}

func (e boundedError) Unwrap() error { return e.err }

func bounded(err error) error {
	if err == nil {
		return nil
	}
	return boundedError{err}
}
