package currents_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// zigzag appends an Avro long.
func zigzag(b []byte, n int64) []byte {
	return binary.AppendUvarint(b, uint64((n<<1)^(n>>63)))
}

func avroString(b []byte, s string) []byte {
	return append(zigzag(b, int64(len(s))), s...)
}

// container hand-builds an object container file so that tests can write
// headers and blocks no encoder would produce.
func container(meta map[string]string, sync string, blocks ...[]byte) []byte {
	b := []byte("Obj\x01")
	b = zigzag(b, int64(len(meta)))
	for k, v := range meta {
		b = avroString(b, k)
		b = avroString(b, v)
	}
	b = zigzag(b, 0)
	b = append(b, sync...)
	for _, blk := range blocks {
		b = append(b, blk...)
	}
	return b
}

const testSync = "0123456789abcdef"
const tinySchema = `{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"id","type":"string"},{"name":"time","type":"int"}]}`

// block encodes records of tinySchema as one block.
func block(count int, sync string, ids ...string) []byte {
	var data []byte
	for i, id := range ids {
		data = avroString(data, id)
		data = zigzag(data, int64(1700000000+i))
	}
	b := zigzag(nil, int64(count))
	b = zigzag(b, int64(len(data)))
	b = append(b, data...)
	return append(b, sync...)
}

func TestBadInputIsTypedAndNamed(t *testing.T) {
	good := container(map[string]string{"avro.schema": tinySchema}, testSync, block(2, testSync, "a", "b"))
	tests := []struct {
		name      string
		body      []byte
		class     error
		block     int
		keptIDs   int // events decoded before the error
		wantInMsg string
	}{
		{"empty", nil, currents.ErrNotContainer, 0, 0, "empty object"},
		{"not avro", []byte("PK\x03\x04 a zip file"), currents.ErrNotContainer, 0, 0, "magic"},
		{"json", []byte(`{"id":"x"}`), currents.ErrNotContainer, 0, 0, "magic"},
		{"truncated header", good[:12], currents.ErrTruncatedHeader, 0, 0, "header"},
		{"header without sync", good[:len(good)-len(block(2, testSync, "a", "b"))-5], currents.ErrTruncatedHeader, 0, 0, "sync marker"},
		{"unknown codec", container(map[string]string{"avro.schema": tinySchema, "avro.codec": "lzma"}, testSync), currents.ErrUnknownCodec, 0, 0, `"lzma"`},
		{"schema not json", container(map[string]string{"avro.schema": `{"type":"record",`}, testSync), currents.ErrBadSchema, 0, 0, "writer schema"},
		{"schema missing", container(map[string]string{"other": "x"}, testSync), currents.ErrBadSchema, 0, 0, "no avro.schema"},
		{"schema not a record", container(map[string]string{"avro.schema": `"string"`}, testSync), currents.ErrBadSchema, 0, 0, "not a record"},
		{"bad sync", container(map[string]string{"avro.schema": tinySchema}, testSync,
			block(2, testSync, "a", "b"), block(1, "XXXXXXXXXXXXXXXX", "c")), currents.ErrBadSync, 2, 2, "block 2"},
		{"truncated block", container(map[string]string{"avro.schema": tinySchema}, testSync,
			block(2, testSync, "a", "b"), block(2, testSync, "c", "d")[:5]), currents.ErrTruncatedBlock, 2, 2, "data bytes"},
		{"truncated before sync", container(map[string]string{"avro.schema": tinySchema}, testSync,
			block(1, testSync, "a"), block(1, testSync, "b")[:10]), currents.ErrTruncatedBlock, 2, 1, "sync marker"},
		{"count larger than data", container(map[string]string{"avro.schema": tinySchema}, testSync,
			block(1, testSync, "a"), block(3, testSync, "b")), currents.ErrCorruptBlock, 2, 1, "record 2 of 3"},
		{"implausible count", container(map[string]string{"avro.schema": tinySchema}, testSync,
			block(1, testSync, "a"), block(1000, testSync, "b")), currents.ErrCorruptBlock, 2, 1, "cannot fit"},
		{"bytes left over", container(map[string]string{"avro.schema": tinySchema}, testSync,
			block(1, testSync, "a", "b")), currents.ErrCorruptBlock, 1, 0, "bytes left"},
		{"negative count", container(map[string]string{"avro.schema": tinySchema}, testSync,
			zigzag(zigzag(nil, -4), 0)), currents.ErrCorruptBlock, 1, 0, "object count -4"},
		{"deflate garbage", container(map[string]string{"avro.schema": tinySchema, "avro.codec": "deflate"}, testSync,
			append(zigzag(zigzag(nil, 1), 6), "\xff\xff\xff\xff\xff\xff"+testSync...)), currents.ErrCorruptBlock, 1, 0, "deflate codec"},
		{"snappy bad checksum", container(map[string]string{"avro.schema": tinySchema, "avro.codec": "snappy"}, testSync,
			append(zigzag(zigzag(nil, 1), 8), "\x03\x08abc\x00\x00\x00\x00"[:8]+testSync...)), currents.ErrCorruptBlock, 1, 0, "snappy"},
		{"string length past end", container(map[string]string{"avro.schema": tinySchema}, testSync,
			append(zigzag(zigzag(nil, 1), 3), "\x7e\x01\x02"+testSync...)), currents.ErrCorruptBlock, 1, 0, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const object = "currents/event_type=users.messages.email.Send/x.avro"
			evs, _, err := decodeAll(object, tt.body)
			if !errors.Is(err, tt.class) {
				t.Fatalf("err = %v, want class %v", err, tt.class)
			}
			var de *currents.DecodeError
			if !errors.As(err, &de) || de.Object != object || de.Block != tt.block {
				t.Fatalf("err = %#v, want object %q block %d", err, object, tt.block)
			}
			if !strings.Contains(err.Error(), object) || !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Fatalf("message %q lacks the object or %q", err, tt.wantInMsg)
			}
			if len(evs) != tt.keptIDs {
				t.Fatalf("kept %d events before the error, want %d", len(evs), tt.keptIDs)
			}
		})
	}
}

func TestErrorsAreSticky(t *testing.T) {
	body := container(map[string]string{"avro.schema": tinySchema}, testSync, block(1, testSync, "a"), block(1, "XXXXXXXXXXXXXXXX", "b"))
	r, err := currents.NewReader(bytes.NewReader(body), currents.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.NextBlock(); err != nil {
		t.Fatal(err)
	}
	_, err1 := r.NextBlock()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v then %v, want the same error twice", err1, err2)
	}
	if !strings.Contains(err1.Error(), "(unnamed)") {
		t.Fatalf("unnamed object not said: %v", err1)
	}
}

// The generator's corrupt objects fail with a typed error after delivering
// exactly the events it says are still good.
func TestGeneratedCorruptObjects(t *testing.T) {
	for _, codec := range []string{"null", "deflate"} {
		m, bodies := generate(t, gen.Config{Events: 100, CorruptFiles: 4, BlockEvents: 10, Codec: codec, Seed: 5})
		corrupt := 0
		for _, o := range m.Objects {
			evs, _, err := decodeAll(o.Key, bodies[o.Key])
			if o.Corrupt == "" {
				if err != nil || len(evs) != o.Events {
					t.Fatalf("good object %s: %d events, %v", o.Key, len(evs), err)
				}
				continue
			}
			corrupt++
			var de *currents.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%s (%s, %s): err = %v, want a DecodeError", o.Key, o.Corrupt, codec, err)
			}
			if len(evs) != o.GoodEvents {
				t.Fatalf("%s (%s, %s): kept %d events, want %d; err %v", o.Key, o.Corrupt, codec, len(evs), o.GoodEvents, err)
			}
		}
		if corrupt != 4 {
			t.Fatalf("%d corrupt objects, want 4", corrupt)
		}
	}
}

func TestEndOfFileIsEOF(t *testing.T) {
	body := container(map[string]string{"avro.schema": tinySchema}, testSync)
	evs, _, err := decodeAll("x", body)
	if err != nil || len(evs) != 0 {
		t.Fatalf("empty container: %d events, %v", len(evs), err)
	}
	r, _ := currents.NewReader(bytes.NewReader(body), currents.ReaderOptions{})
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
}
