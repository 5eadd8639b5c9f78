package currents

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/hamba/avro/v2"
)

// maxHeaderBytes bounds the header metadata (the writer schema is a few KB
// and bounded by MaxSchemaBytes on its own).
const maxHeaderBytes = 16 << 20

var magic = []byte{'O', 'b', 'j', 1}

// ReaderOptions tune a Reader. The zero value is ready to use: a zero (or
// negative) limit takes its default, see limits.go.
type ReaderOptions struct {
	// Object names the file or object key in errors and is parsed for an
	// `event_type=` segment, which overrides the type from the schema name.
	Object string
	// EventType, when set, overrides both the path and the schema name.
	EventType string

	// The decode limits: exceeding one is a *DecodeError of class
	// ErrLimitExceeded whose cause is a *LimitError naming it.

	// MaxBlockBytes bounds a block's stored and decoded size
	// (DefaultMaxBlockBytes).
	MaxBlockBytes int
	// MaxBlockEvents bounds the events of a block (DefaultMaxBlockEvents).
	MaxBlockEvents int
	// MaxBlockValues bounds the values a block decodes into: events ×
	// fields, plus array and map items and nested record fields
	// (DefaultMaxBlockValues).
	MaxBlockValues int
	// MaxItems bounds the items of one array or map (DefaultMaxItems).
	MaxItems int
	// MaxDepth bounds the nesting of schema types and of values
	// (DefaultMaxDepth).
	MaxDepth int
	// MaxSchemaBytes bounds the writer schema JSON (DefaultMaxSchemaBytes).
	MaxSchemaBytes int
	// MaxSchemaFields bounds the fields of the writer schema, nested
	// records included (DefaultMaxSchemaFields).
	MaxSchemaFields int
}

// Reader streams the events of one Avro Object Container File, block by block,
// decoding each with the writer schema of the file's own header. Memory is
// bounded by one block whatever the size of the file, and what one block may
// cost by the limits of ReaderOptions whatever the file claims.
type Reader struct {
	in        *bufio.Reader
	opts      ReaderOptions
	offset    int64 // bytes consumed from in
	block     int   // blocks read so far
	codecName string
	codec     blockCodec
	sync      [16]byte
	schema    string
	record    *node
	eventType string
	stored    []byte // reused buffer for a block's stored bytes
	pending   []Event
	err       error
}

// NewReader reads the container header from r. Errors are *DecodeError.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	rd := &Reader{in: bufio.NewReaderSize(r, 64<<10), opts: opts.withDefaults()}
	if err := rd.readHeader(); err != nil {
		return nil, err
	}
	return rd, nil
}

// EventType is the Currents event type of every event in the file.
func (r *Reader) EventType() string { return r.eventType }

// Schema is the writer schema JSON from the header.
func (r *Reader) Schema() string { return r.schema }

// RecordName is the full name of the writer schema's record.
func (r *Reader) RecordName() string { return r.record.name }

// Codec is the block codec named in the header ("null" when absent).
func (r *Reader) Codec() string { return r.codecName }

// Blocks is the number of blocks read so far.
func (r *Reader) Blocks() int { return r.block }

// Offset is the number of bytes consumed from the object so far.
func (r *Reader) Offset() int64 { return r.offset }

// Close releases codec resources. It does not close the underlying reader.
func (r *Reader) Close() error {
	if r.codec != nil {
		r.codec.close()
	}
	return nil
}

// Next returns the next event, or io.EOF after the last one.
func (r *Reader) Next() (Event, error) {
	for len(r.pending) == 0 {
		evs, err := r.NextBlock()
		if err != nil {
			return Event{}, err
		}
		r.pending = evs
	}
	ev := r.pending[0]
	r.pending = r.pending[1:]
	return ev, nil
}

// NextBlock decodes the next block and returns its events, or io.EOF after
// the last block. A bad block returns a *DecodeError and no events from that
// block; events of earlier blocks were already returned. Errors are sticky.
func (r *Reader) NextBlock() ([]Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	evs, err := r.readBlock()
	if err != nil {
		r.err = err
		return nil, err
	}
	return evs, nil
}

func (r *Reader) headerErr(class, err error) error {
	return &DecodeError{Object: r.opts.Object, Offset: r.offset, Class: class, Err: err}
}

func (r *Reader) readHeader() error {
	var m [4]byte
	n, err := io.ReadFull(r.in, m[:])
	r.offset += int64(n)
	if err != nil || !bytes.Equal(m[:], magic) {
		if n == 0 && err != nil {
			return r.headerErr(ErrNotContainer, errors.New("empty object"))
		}
		return r.headerErr(ErrNotContainer, fmt.Errorf("magic bytes %q", m[:n]))
	}
	meta, err := r.readMeta()
	if err != nil {
		return r.headerErr(classOf(err, ErrTruncatedHeader), err)
	}
	n, err = io.ReadFull(r.in, r.sync[:])
	r.offset += int64(n)
	if err != nil {
		return r.headerErr(ErrTruncatedHeader, fmt.Errorf("sync marker: %w", err))
	}

	r.codecName = string(meta["avro.codec"])
	if r.codecName == "" {
		r.codecName = CodecNull
	}
	if r.codec, err = newBlockCodec(r.codecName); err != nil {
		return r.headerErr(ErrUnknownCodec, err)
	}
	r.schema = string(meta["avro.schema"])
	if r.schema == "" {
		return r.headerErr(ErrBadSchema, errors.New("no avro.schema in the header"))
	}
	// The JSON parser recurses once per level: a schema nesting thousands
	// deep is refused before it is parsed.
	if d, max := jsonDepth(r.schema), maxSchemaJSONDepth(r.opts.MaxDepth); d > max {
		return r.headerErr(ErrLimitExceeded, limitErr(LimitMaxDepth, int64(r.opts.MaxDepth),
			"a writer schema whose JSON nests %d deep (at most %d JSON levels per type level)", d, maxSchemaJSONPerLevel))
	}
	// A cache per file: the same record name with other fields (schema
	// evolution) must never resolve to another file's definition.
	s, err := avro.ParseWithCache(r.schema, "", &avro.SchemaCache{})
	if err != nil {
		return r.headerErr(ErrBadSchema, bounded(err))
	}
	plan, err := compileWriterSchema(s, r.opts.MaxDepth, r.opts.MaxSchemaFields)
	if err != nil {
		return r.headerErr(classOf(err, ErrBadSchema), bounded(err))
	}
	if plan.op != opRecord {
		return r.headerErr(ErrBadSchema, fmt.Errorf("top-level type is not a record"))
	}
	r.record = plan
	r.eventType = r.opts.EventType
	if r.eventType == "" {
		r.eventType = EventTypeFromKey(r.opts.Object)
	}
	if r.eventType == "" {
		r.eventType = EventTypeFromRecordName(plan.name)
	}
	return nil
}

// readMeta reads the header's map<bytes> in Avro's blocked map encoding.
func (r *Reader) readMeta() (map[string][]byte, error) {
	meta := map[string][]byte{}
	total := 0
	for {
		n, err := r.readLong()
		if err != nil {
			return nil, fmt.Errorf("metadata count: %w", err)
		}
		if n == 0 {
			return meta, nil
		}
		if n < 0 {
			n = -n
			if _, err := r.readLong(); err != nil {
				return nil, fmt.Errorf("metadata block size: %w", err)
			}
		}
		if n > maxHeaderMetaEntries {
			return nil, fmt.Errorf("metadata count %d is implausible", n)
		}
		for i := int64(0); i < n; i++ {
			k, err := r.readBytes(maxHeaderBytes-total, eagerHeaderReadBytes)
			if err != nil {
				return nil, fmt.Errorf("metadata key: %w", err)
			}
			limit := maxHeaderBytes - total - len(k)
			if string(k) == "avro.schema" {
				limit = min(limit, r.opts.MaxSchemaBytes)
			}
			v, err := r.readBytes(limit, eagerHeaderReadBytes)
			if err != nil {
				var le lengthError
				if string(k) == "avro.schema" && errors.As(err, &le) && le.n > 0 {
					return nil, limitErr(LimitMaxSchemaBytes, int64(r.opts.MaxSchemaBytes), "a writer schema of %d bytes", le.n)
				}
				return nil, fmt.Errorf("metadata %s: %w", quote(string(k)), err)
			}
			total += len(k) + len(v)
			meta[string(k)] = v
		}
	}
}

func (r *Reader) readLong() (int64, error) {
	var u uint64
	var shift uint
	for i := 0; i < 10; i++ {
		b, err := r.in.ReadByte()
		if err != nil {
			if err == io.EOF && i > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		r.offset++
		u |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
		shift += 7
	}
	return 0, errors.New("varint longer than 10 bytes")
}

// lengthError is a length field out of its range.
type lengthError struct{ n int64 }

func (e lengthError) Error() string { return fmt.Sprintf("length %d out of range", e.n) }

func (r *Reader) readBytes(limit, eager int) ([]byte, error) {
	n, err := r.readLong()
	if err != nil {
		return nil, noEOF(err)
	}
	if n < 0 || n > int64(limit) {
		return nil, lengthError{n}
	}
	b, m, err := readFull(r.in, int(n), eager, nil)
	r.offset += int64(m)
	return b, noEOF(err)
}

// readFull reads exactly n bytes, into buf when it is large enough. A length
// read from the file is not trusted with an allocation: up to eager bytes are
// allocated at once, beyond that the buffer grows with the bytes that do
// arrive, so a truncated file claiming a huge block costs what it holds.
func readFull(in io.Reader, n, eager int, buf []byte) ([]byte, int, error) {
	if cap(buf) >= n || n <= eager {
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		m, err := io.ReadFull(in, buf)
		return buf, m, err
	}
	var b bytes.Buffer
	b.Grow(eager)
	m, err := io.CopyN(&b, in, int64(n))
	return b.Bytes(), int(m), err
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *Reader) readBlock() ([]Event, error) {
	start := r.offset
	blockNo := r.block + 1
	fail := func(class, err error) error {
		return &DecodeError{Object: r.opts.Object, Offset: start, Block: blockNo, Class: class, Err: err}
	}
	count, err := r.readLong()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fail(ErrTruncatedBlock, fmt.Errorf("object count: %w", err))
	}
	size, err := r.readLong()
	if err != nil {
		return nil, fail(ErrTruncatedBlock, fmt.Errorf("byte size: %w", noEOF(err)))
	}
	if count <= 0 || size < 0 {
		return nil, fail(ErrCorruptBlock, fmt.Errorf("object count %d, byte size %d", count, size))
	}
	if size > int64(r.opts.MaxBlockBytes) {
		return nil, fail(ErrLimitExceeded, limitErr(LimitMaxBlockBytes, int64(r.opts.MaxBlockBytes), "a block of %d stored bytes", size))
	}
	// Every claim of the block header is checked before the memory it asks
	// for is allocated: events and values first, then the data.
	_, null := r.codec.(nullCodec)
	minBytes := int64(max(r.record.minBytes, 1))
	if null && count > size/minBytes {
		return nil, fail(ErrCorruptBlock, fmt.Errorf("object count %d cannot fit in %d bytes", count, size))
	}
	if count > int64(r.opts.MaxBlockEvents) {
		return nil, fail(ErrLimitExceeded, limitErr(LimitMaxBlockEvents, int64(r.opts.MaxBlockEvents), "a block of %d events", count))
	}
	// Divided, not multiplied: raised limits must not let the product overflow.
	if nf := int64(len(r.record.fields)); nf > 0 && count > int64(r.opts.MaxBlockValues)/nf {
		return nil, fail(ErrLimitExceeded, limitErr(LimitMaxBlockValues, int64(r.opts.MaxBlockValues),
			"a block of %d events × %d fields", count, nf))
	}
	// Events point into the decoded bytes, so those are never reused. With
	// the null codec the stored bytes are the decoded bytes: read them into
	// a buffer of their own rather than copying them out of a shared one.
	var reuse []byte
	if !null {
		reuse = r.stored
	}
	stored, n, err := readFull(r.in, int(size), eagerReadBytes, reuse)
	r.offset += int64(n)
	if err != nil {
		return nil, fail(ErrTruncatedBlock, fmt.Errorf("%d of %d data bytes: %w", n, size, noEOF(err)))
	}
	if !null {
		r.stored = stored
	}
	var sync [16]byte
	n, err = io.ReadFull(r.in, sync[:])
	r.offset += int64(n)
	if err != nil {
		return nil, fail(ErrTruncatedBlock, fmt.Errorf("sync marker: %w", noEOF(err)))
	}
	if sync != r.sync {
		return nil, fail(ErrBadSync, nil)
	}
	r.block = blockNo

	data, err := r.codec.decode(stored, r.opts.MaxBlockBytes)
	if errors.Is(err, errTooLarge) {
		return nil, fail(ErrLimitExceeded, limitErr(LimitMaxBlockBytes, int64(r.opts.MaxBlockBytes),
			"a %s block decoding to more bytes", r.codecName))
	}
	if err != nil {
		return nil, fail(ErrCorruptBlock, fmt.Errorf("%s codec: %w", r.codecName, bounded(err)))
	}
	if count > int64(len(data))/minBytes {
		return nil, fail(ErrCorruptBlock, fmt.Errorf("object count %d cannot fit in %d bytes", count, len(data)))
	}
	evs, err := r.decodeEvents(data, int(count))
	if err != nil {
		return nil, fail(classOf(err, ErrCorruptBlock), err)
	}
	return evs, nil
}

// classOf is ErrLimitExceeded when err is (or wraps) a *LimitError, else class.
func classOf(err error, class error) error {
	var le *LimitError
	if errors.As(err, &le) {
		return ErrLimitExceeded
	}
	return class
}

// decodeEvents decodes count records from one block. The decoded buffer is
// owned by this block alone, so it is viewed as a string without a copy and
// every string value is a substring of it. All values of the block share one
// slab: three allocations per block, none per event.
func (r *Reader) decodeEvents(data []byte, count int) ([]Event, error) {
	plan := r.record
	nf := len(plan.fields)
	// The values budget left for array and map items and nested record
	// fields, once the slab of count × fields values is paid for.
	c := cursor{maxItems: r.opts.MaxItems, maxDepth: r.opts.MaxDepth, maxValues: r.opts.MaxBlockValues,
		budget: r.opts.MaxBlockValues - count*nf}
	if len(data) > 0 {
		c.data = unsafe.String(&data[0], len(data))
	}
	slab := make([]Value, count*nf)
	evs := make([]Event, count)
	for i := range evs {
		vals := slab[i*nf : (i+1)*nf : (i+1)*nf]
		for j, f := range plan.fields {
			vals[j] = c.value(f)
		}
		if c.err != nil {
			return nil, fmt.Errorf("record %d of %d: %w", i+1, count, c.err)
		}
		evs[i] = Event{Type: r.eventType, fields: plan.index, values: vals}
	}
	if c.pos != len(c.data) {
		return nil, fmt.Errorf("%d bytes left after %d records", len(c.data)-c.pos, count)
	}
	return evs, nil
}

// EventTypeFromRecordName derives the Currents event type from a writer
// schema's full name, e.g. "dataexport.S3.inner.users.messages.email.Open"
// → "users.messages.email.Open". Braze's namespace prefix differs by storage
// and has changed before, so match on the "users." suffix where there is one.
func EventTypeFromRecordName(fullName string) string {
	if strings.HasPrefix(fullName, "users.") {
		return fullName
	}
	if i := strings.Index(fullName, ".users."); i >= 0 {
		return fullName[i+1:]
	}
	if i := strings.Index(fullName, ".inner."); i >= 0 {
		return fullName[i+len(".inner."):]
	}
	return fullName
}
