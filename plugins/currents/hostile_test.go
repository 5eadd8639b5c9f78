package currents_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// Each hostile file must be refused quickly, with little memory, with an
// error that names the object, the block and the limit, and stays short.
// Before decode limits existed these allocated 4.7 GB (array<null>, 10 KB),
// ran out of memory (array<null>, 100 KB; 10,000 null fields), allocated
// 0.9 GB (deflate zeros) and 1 GB (deflate bomb), or logged 500 KB (nested
// schema).
const (
	hostileMaxAlloc = 64 << 20
	hostileMaxTime  = 5 * time.Second
	hostileMaxMsg   = 1024
)

type hostileCase struct {
	shape string
	opts  currents.ReaderOptions
	limit string // the LimitError's Limit
	max   int64  // its Max
	block int    // 0: refused in the header
}

func checkHostile(t *testing.T, c hostileCase) {
	t.Helper()
	_, body, err := gen.HostileBody(c.shape)
	if err != nil {
		t.Fatal(err)
	}
	object := "currents/event_type=users.messages.email.Send/" + c.shape + ".avro"
	c.opts.Object = object
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	events, err := decodeWith(body, c.opts)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%s (%d bytes): refused in %s with %.1f MB allocated: %v", c.shape, len(body), took.Round(time.Millisecond), float64(alloc)/(1<<20), err)

	if !errors.Is(err, currents.ErrLimitExceeded) {
		t.Fatalf("err = %v, want ErrLimitExceeded", err)
	}
	var de *currents.DecodeError
	var le *currents.LimitError
	if !errors.As(err, &de) || !errors.As(err, &le) {
		t.Fatalf("err = %#v, want a DecodeError caused by a LimitError", err)
	}
	if de.Object != object || de.Block != c.block || le.Limit != c.limit || le.Max != c.max {
		t.Fatalf("object %q block %d limit %s = %d, want %q block %d limit %s = %d", de.Object, de.Block, le.Limit, le.Max, object, c.block, c.limit, c.max)
	}
	msg := err.Error()
	where := "header"
	if c.block > 0 {
		where = fmt.Sprintf("block %d", c.block)
	}
	for _, want := range []string{object, where, fmt.Sprintf("%s = %d", c.limit, c.max)} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if len(msg) > hostileMaxMsg {
		t.Errorf("message of %d bytes, want at most %d: %.300s", len(msg), hostileMaxMsg, msg)
	}
	if events != 0 {
		t.Errorf("%d events decoded, want none", events)
	}
	if alloc > hostileMaxAlloc {
		t.Errorf("%d MB allocated, want at most %d MB", alloc>>20, hostileMaxAlloc>>20)
	}
	if took > hostileMaxTime {
		t.Errorf("took %s, want at most %s", took, hostileMaxTime)
	}
}

// decodeWith decodes every block, counting events, and returns the first error.
func decodeWith(body []byte, opts currents.ReaderOptions) (int, error) {
	r, err := currents.NewReader(bytes.NewReader(body), opts)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n := 0
	for {
		evs, err := r.NextBlock()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += len(evs)
	}
}

func TestHostileFilesAreRefusedCheaply(t *testing.T) {
	for _, c := range []hostileCase{
		{shape: gen.HostileArrayNull10K, limit: currents.LimitMaxItems, max: currents.DefaultMaxItems, block: 1},
		{shape: gen.HostileArrayNull100K, limit: currents.LimitMaxItems, max: currents.DefaultMaxItems, block: 1},
		{shape: gen.HostileDeflateZeros, limit: currents.LimitMaxBlockEvents, max: currents.DefaultMaxBlockEvents, block: 1},
		// Its 10,000 fields make a schema of 309 KB.
		{shape: gen.HostileNullFields, limit: currents.LimitMaxSchemaBytes, max: currents.DefaultMaxSchemaBytes},
		{shape: gen.HostileDeflateBomb, limit: currents.LimitMaxBlockBytes, max: currents.DefaultMaxBlockBytes, block: 1},
		{shape: gen.HostileNestedSchema, limit: currents.LimitMaxSchemaBytes, max: currents.DefaultMaxSchemaBytes},
	} {
		t.Run(c.shape, func(t *testing.T) { checkHostile(t, c) })
	}
}

// With the first limit each shape meets raised out of reach, the next one
// still refuses it before the memory is allocated.
func TestHostileFilesMeetTheNextLimit(t *testing.T) {
	const huge = 1 << 40
	for _, c := range []hostileCase{
		// Items of no bytes are counted against the block's values (a
		// lower limit than the default, whose 6 million values are 240 MB).
		{shape: gen.HostileArrayNull100K, opts: currents.ReaderOptions{MaxItems: huge, MaxBlockValues: 500_000},
			limit: currents.LimitMaxBlockValues, max: 500_000, block: 1},
		// ~617,000 events × 34 fields, refused before the slab.
		{shape: gen.HostileDeflateZeros, opts: currents.ReaderOptions{MaxBlockEvents: huge},
			limit: currents.LimitMaxBlockValues, max: currents.DefaultMaxBlockValues, block: 1},
		{shape: gen.HostileNullFields, opts: currents.ReaderOptions{MaxSchemaBytes: 1 << 20},
			limit: currents.LimitMaxSchemaFields, max: currents.DefaultMaxSchemaFields},
		// 100,000 events × 10,000 fields = a billion values.
		{shape: gen.HostileNullFields, opts: currents.ReaderOptions{MaxSchemaBytes: 1 << 20, MaxSchemaFields: huge},
			limit: currents.LimitMaxBlockValues, max: currents.DefaultMaxBlockValues, block: 1},
		{shape: gen.HostileNullFields, opts: currents.ReaderOptions{MaxSchemaBytes: 1 << 20, MaxSchemaFields: huge, MaxBlockValues: huge},
			limit: currents.LimitMaxBlockEvents, max: 50_000, block: 1},
		// The bomb's limit raised to 1 GiB: it is counted, not kept, past
		// 16 MiB, and refused at the limit.
		{shape: gen.HostileDeflateBomb, opts: currents.ReaderOptions{MaxBlockBytes: 1000 << 20},
			limit: currents.LimitMaxBlockBytes, max: 1000 << 20, block: 1},
		// The nesting is refused before the JSON parser recurses into it.
		{shape: gen.HostileNestedSchema, opts: currents.ReaderOptions{MaxSchemaBytes: 1 << 20},
			limit: currents.LimitMaxDepth, max: currents.DefaultMaxDepth},
	} {
		if c.limit == currents.LimitMaxBlockEvents {
			c.opts.MaxBlockEvents = int(c.max)
		}
		t.Run(c.shape+"/"+c.limit, func(t *testing.T) { checkHostile(t, c) })
	}
}

// Every limit refuses one more than it allows, and allows exactly its value.
func TestLimitsAtTheirBoundary(t *testing.T) {
	arraySchema := `{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"a","type":{"type":"array","items":"null"}}]}`
	// One record whose array has n null items in one block.
	arrayBlock := func(n int) []byte {
		data := zigzag(nil, int64(n))
		if n > 0 {
			data = zigzag(data, 0)
		}
		b := zigzag(zigzag(nil, 1), int64(len(data)))
		return append(append(b, data...), testSync...)
	}
	nestedSchema := func(depth int) string {
		return `{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"a","type":` +
			strings.Repeat(`{"type":"array","items":`, depth) + `"null"` + strings.Repeat(`}`, depth) + `}]}`
	}
	tiny := func(blocks ...[]byte) []byte {
		return container(map[string]string{"avro.schema": tinySchema}, testSync, blocks...)
	}
	twoEvents := block(2, testSync, "a", "b") // 2 events × 2 fields = 4 values
	storedSize := len(twoEvents) - len(testSync) - 2
	recursive := `{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"next","type":["null","Send"]}]}`
	// n nested records: n-1 times the record branch, then null.
	chain := func(n int) []byte {
		var data []byte
		for i := 0; i < n-1; i++ {
			data = zigzag(data, 1)
		}
		data = zigzag(data, 0)
		b := zigzag(zigzag(nil, 1), int64(len(data)))
		return append(append(b, data...), testSync...)
	}
	tests := []struct {
		name  string
		body  []byte
		ok    currents.ReaderOptions
		fails currents.ReaderOptions
		limit string
	}{
		{"events", tiny(twoEvents), currents.ReaderOptions{MaxBlockEvents: 2}, currents.ReaderOptions{MaxBlockEvents: 1}, currents.LimitMaxBlockEvents},
		{"values", tiny(twoEvents), currents.ReaderOptions{MaxBlockValues: 4}, currents.ReaderOptions{MaxBlockValues: 3}, currents.LimitMaxBlockValues},
		{"stored bytes", tiny(twoEvents), currents.ReaderOptions{MaxBlockBytes: storedSize}, currents.ReaderOptions{MaxBlockBytes: storedSize - 1}, currents.LimitMaxBlockBytes},
		{"items", container(map[string]string{"avro.schema": arraySchema}, testSync, arrayBlock(7)),
			currents.ReaderOptions{MaxItems: 7}, currents.ReaderOptions{MaxItems: 6}, currents.LimitMaxItems},
		// 1 event × 1 field + 7 items.
		{"items as values", container(map[string]string{"avro.schema": arraySchema}, testSync, arrayBlock(7)),
			currents.ReaderOptions{MaxBlockValues: 8}, currents.ReaderOptions{MaxBlockValues: 7}, currents.LimitMaxBlockValues},
		{"schema depth", container(map[string]string{"avro.schema": nestedSchema(5)}, testSync, arrayBlock(0)),
			currents.ReaderOptions{MaxDepth: 5}, currents.ReaderOptions{MaxDepth: 4}, currents.LimitMaxDepth},
		// A recursive record nests its values deeper than its schema.
		{"value depth", container(map[string]string{"avro.schema": recursive}, testSync, chain(7)),
			currents.ReaderOptions{MaxDepth: 6}, currents.ReaderOptions{MaxDepth: 5}, currents.LimitMaxDepth},
		{"schema bytes", tiny(twoEvents), currents.ReaderOptions{MaxSchemaBytes: len(tinySchema)}, currents.ReaderOptions{MaxSchemaBytes: len(tinySchema) - 1}, currents.LimitMaxSchemaBytes},
		{"schema fields", tiny(twoEvents), currents.ReaderOptions{MaxSchemaFields: 2}, currents.ReaderOptions{MaxSchemaFields: 1}, currents.LimitMaxSchemaFields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeWith(tt.body, tt.ok); err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			_, err := decodeWith(tt.body, tt.fails)
			var le *currents.LimitError
			if !errors.Is(err, currents.ErrLimitExceeded) || !errors.As(err, &le) || le.Limit != tt.limit {
				t.Fatalf("past the limit: err = %v, want limit %s", err, tt.limit)
			}
		})
	}
}

// Nothing the file holds is copied into an error whole: schemas, keys and
// values are cut to a few hundred bytes and say how long they were.
func TestErrorsQuoteLittleOfTheInput(t *testing.T) {
	long := strings.Repeat("x", 300_000)
	tests := []struct {
		name  string
		body  []byte
		opts  currents.ReaderOptions
		class error
	}{
		{"unknown type in the schema",
			container(map[string]string{"avro.schema": `{"type":"record","name":"R","fields":[{"name":"a","type":"` + long + `"}]}`}, testSync),
			currents.ReaderOptions{MaxSchemaBytes: 1 << 20}, currents.ErrBadSchema},
		{"codec name", container(map[string]string{"avro.schema": tinySchema, "avro.codec": long}, testSync),
			currents.ReaderOptions{}, currents.ErrUnknownCodec},
		{"metadata key", nil, currents.ReaderOptions{}, currents.ErrTruncatedHeader},
		{"nested schema", nil, currents.ReaderOptions{MaxSchemaBytes: 1 << 20, MaxDepth: 1 << 20}, currents.ErrBadSchema},
	}
	// A metadata entry: a long key, then a value length past the header bound.
	meta := zigzag([]byte("Obj\x01"), 1)
	meta = avroString(meta, long)
	tests[2].body = zigzag(meta, 1<<40)
	_, nested, err := gen.HostileBody(gen.HostileNestedSchema)
	if err != nil {
		t.Fatal(err)
	}
	tests[3].body = nested
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeWith(tt.body, tt.opts)
			if !errors.Is(err, tt.class) {
				t.Fatalf("err = %.300v, want class %v", err, tt.class)
			}
			msg := err.Error()
			if len(msg) > hostileMaxMsg || !strings.Contains(msg, " bytes)") {
				t.Fatalf("message of %d bytes, want it cut with its length said: %.400s", len(msg), msg)
			}
		})
	}
}

// The defaults accept the largest block the generator plausibly writes: a
// whole 100,000-event file (Braze's most) in one block, of the types with the
// most bytes and the most values per event. Compressed, these blocks decode
// to more than is kept while counting (16 MiB), so they also take the
// second decoding pass.
func TestDefaultLimitsAcceptTheLargestPlausibleBlock(t *testing.T) {
	for typ, codec := range map[string]string{"users.messages.whatsapp.InboundReceive": "deflate", "users.messages.email.Click": "zstandard"} {
		m, bodies := generate(t, gen.Config{Events: 100_000, FileEvents: 100_000, BlockEvents: 100_000, EventTypes: []string{typ}, Codec: codec, Seed: 1})
		if len(m.Objects) != 1 {
			t.Fatalf("%d objects, want one", len(m.Objects))
		}
		n, err := decodeWith(bodies[m.Objects[0].Key], currents.ReaderOptions{})
		if err != nil || n != 100_000 {
			t.Fatalf("%s: %d events, %v", typ, n, err)
		}
	}
}

// The sample export decodes with every limit set to the maximum the limits'
// documentation says was measured on it, so those figures stay true.
func TestSampleExportIsWithinTheMeasuredMaxima(t *testing.T) {
	measured := currents.ReaderOptions{
		MaxBlockEvents: 43, MaxBlockBytes: 12_919, MaxBlockValues: 714, MaxItems: 2,
		MaxDepth: 1, MaxSchemaBytes: 1_727, MaxSchemaFields: 34,
	}
	files := 0
	err := filepath.WalkDir("../../configs/sample", func(p string, d os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".avro") {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if _, err := decodeWith(body, measured); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		return nil
	})
	if err != nil || files < 55 {
		t.Fatalf("%d sample files: %v", files, err)
	}
}

// A zstandard bomb, with and without the frame saying its size: counted past
// 16 MiB without being kept, and refused at max_block_bytes.
func TestZstandardBombIsCountedNotKept(t *testing.T) {
	var stream, whole bytes.Buffer
	w, err := zstd.NewWriter(&stream)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for i := 0; i < 200; i++ {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	whole.Write(enc.EncodeAll(make([]byte, 200<<20), nil))
	for name, frame := range map[string][]byte{"streamed": stream.Bytes(), "size in the frame": whole.Bytes()} {
		body := container(map[string]string{"avro.schema": tinySchema, "avro.codec": "zstandard"}, testSync,
			append(append(zigzag(zigzag(nil, 1), int64(len(frame))), frame...), testSync...))
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := decodeWith(body, currents.ReaderOptions{Object: name})
		runtime.ReadMemStats(&after)
		var le *currents.LimitError
		if !errors.As(err, &le) || le.Limit != currents.LimitMaxBlockBytes {
			t.Fatalf("%s: err = %v, want max_block_bytes", name, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > hostileMaxAlloc {
			t.Errorf("%s: %d MB allocated, want at most %d MB", name, alloc>>20, hostileMaxAlloc>>20)
		}
	}
}
