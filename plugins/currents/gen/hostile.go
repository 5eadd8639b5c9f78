package gen

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

// The hostile shapes Hostile writes: small files whose blocks claim or
// decode into far more than their size, each one a way a reader without
// decode limits ran out of memory or logged megabytes. Tests assert a reader
// refuses each quickly with little memory.
const (
	// HostileArrayNull10K and HostileArrayNull100K hold one record whose
	// array<null> field is written as thousands of blocks of item counts:
	// null items take no bytes, so 10 KB say tens of millions of items.
	HostileArrayNull10K  = "hostile_array_null_10k"
	HostileArrayNull100K = "hostile_array_null_100k"
	// HostileDeflateZeros is a deflate block of 20 MiB of zero bytes under a
	// real writer schema: every field at its minimum, some 600,000 empty
	// events in a block of about 20 KB.
	HostileDeflateZeros = "hostile_deflate_zeros"
	// HostileNullFields has a schema of 10,000 null fields and one block
	// claiming 100,000 records (a billion values) in 100 KB.
	HostileNullFields = "hostile_null_fields"
	// HostileDeflateBomb is a 1 MB deflate block that inflates to 1 GiB.
	HostileDeflateBomb = "hostile_deflate_bomb"
	// HostileNestedSchema has a writer schema whose field nests 20,000
	// arrays (about 500 KB of JSON).
	HostileNestedSchema = "hostile_nested_schema"
)

// HostileShapes lists every hostile shape, in the order Hostile writes them.
var HostileShapes = []string{
	HostileArrayNull10K, HostileArrayNull100K, HostileDeflateZeros,
	HostileNullFields, HostileDeflateBomb, HostileNestedSchema,
}

// Hostile writes one object of every hostile shape into the export cfg
// describes, named like Braze's objects of its first hour (partition 7, which
// Generate never uses), so that a lister picks them up with the real ones.
// Each Object has Corrupt set to its shape and no good events.
func Hostile(cfg Config, sink Sink) (Manifest, error) {
	if err := cfg.defaults(); err != nil {
		return Manifest{}, err
	}
	g := &generator{cfg: cfg}
	var m Manifest
	for i, shape := range HostileShapes {
		eventType, body, err := HostileBody(shape)
		if err != nil {
			return m, err
		}
		obj := Object{EventType: eventType, Corrupt: shape, Size: len(body),
			Key: g.key(cell{eventType: eventType}, 7, int64(i+1))}
		if err := sink(obj.Key, body); err != nil {
			return m, fmt.Errorf("gen: write %s: %w", obj.Key, err)
		}
		m.Objects = append(m.Objects, obj)
	}
	return m, nil
}

var hostileCache sync.Map // shape → hostileBody; the bomb takes seconds to deflate

type hostileBody struct {
	eventType string
	body      []byte
}

// HostileBody returns the event type and bytes of one hostile shape. The
// bytes are shared between callers: do not modify them.
func HostileBody(shape string) (eventType string, body []byte, err error) {
	if b, ok := hostileCache.Load(shape); ok {
		h := b.(hostileBody)
		return h.eventType, h.body, nil
	}
	const send = "users.messages.email.Send"
	var h hostileBody
	switch shape {
	case HostileArrayNull10K, HostileArrayNull100K:
		size := 10 << 10
		if shape == HostileArrayNull100K {
			size = 100 << 10
		}
		schema := `{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.email","fields":[` +
			`{"name":"id","type":"string"},{"name":"a","type":{"type":"array","items":"null"}}]}`
		data := hostileString(nil, "hostile")
		// Every count as large as the bytes left after it, so that a reader
		// bounding a count by the bytes left accepts each one: worked out
		// from the end (the closing zero count) backwards.
		var counts []int64
		for left := 1; left < size-512; {
			counts = append(counts, int64(left))
			left += len(hostileLong(nil, int64(left)))
		}
		for i := len(counts) - 1; i >= 0; i-- {
			data = hostileLong(data, counts[i])
		}
		data = hostileLong(data, 0)
		h = hostileBody{send, hostileContainer(schema, "null", hostileBlock(1, data))}
	case HostileDeflateZeros:
		t, _ := schemas.Lookup("users.messages.email.Click")
		// Zero bytes decode as the least every field can be: "" for a
		// string, 0, false, the null branch of a union, an empty array.
		minBytes := 0
		for _, f := range t.Fields {
			if f.Type == schemas.Float && !f.Optional {
				minBytes += 4
			} else {
				minBytes++
			}
		}
		const decoded = 20 << 20
		h = hostileBody{t.Name, hostileContainer(t.WriterSchema("S3"), "deflate",
			hostileBlock(decoded/minBytes, hostileDeflate(decoded, flate.DefaultCompression)))}
	case HostileNullFields:
		var s strings.Builder
		s.WriteString(`{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.email","fields":[`)
		for i := 0; i < 10_000; i++ {
			if i > 0 {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, `{"name":"f%d","type":"null"}`, i)
		}
		s.WriteString(`]}`)
		h = hostileBody{send, hostileContainer(s.String(), "null", hostileBlock(100_000, make([]byte, 100_000)))}
	case HostileDeflateBomb:
		schema := `{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"id","type":"string"}]}`
		h = hostileBody{send, hostileContainer(schema, "deflate", hostileBlock(1, hostileDeflate(1<<30, flate.BestCompression)))}
	case HostileNestedSchema:
		const depth = 20_000
		var s strings.Builder
		s.WriteString(`{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"a","type":`)
		s.WriteString(strings.Repeat(`{"type":"array","items":`, depth))
		s.WriteString(`"string"` + strings.Repeat(`}`, depth) + `}]}`)
		h = hostileBody{send, hostileContainer(s.String(), "null", hostileBlock(1, hostileLong(nil, 0)))}
	default:
		return "", nil, fmt.Errorf("gen: unknown hostile shape %q", shape)
	}
	hostileCache.Store(shape, h)
	return h.eventType, h.body, nil
}

func hostileLong(b []byte, n int64) []byte {
	return binary.AppendUvarint(b, uint64((n<<1)^(n>>63)))
}

func hostileString(b []byte, s string) []byte {
	return append(hostileLong(b, int64(len(s))), s...)
}

const hostileSync = "HOSTILE-SYNC-16B"

// hostileContainer writes an object container file by hand: the shapes are
// ones no Avro encoder would produce.
func hostileContainer(schema, codec string, blocks ...[]byte) []byte {
	b := []byte("Obj\x01")
	b = hostileLong(b, 2)
	b = hostileString(b, "avro.schema")
	b = hostileString(b, schema)
	b = hostileString(b, "avro.codec")
	b = hostileString(b, codec)
	b = hostileLong(b, 0)
	b = append(b, hostileSync...)
	for _, blk := range blocks {
		b = append(b, blk...)
	}
	return b
}

func hostileBlock(count int, data []byte) []byte {
	b := hostileLong(nil, int64(count))
	b = hostileLong(b, int64(len(data)))
	b = append(b, data...)
	return append(b, hostileSync...)
}

// hostileDeflate deflates n zero bytes.
func hostileDeflate(n, level int) []byte {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, level)
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zeros))
		_, _ = w.Write(zeros[:k])
		n -= k
	}
	_ = w.Close()
	return out.Bytes()
}
