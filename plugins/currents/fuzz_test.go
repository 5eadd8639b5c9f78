package currents_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// FuzzReader: whatever the bytes, the reader never panics, never loops for
// ever, and ends either with io.EOF or with a *DecodeError.
func FuzzReader(f *testing.F) {
	for i, codec := range []string{"null", "deflate", "snappy", "zstandard"} {
		_, bodies := generate(f, gen.Config{Events: 12, EventTypes: []string{"users.messages.email.Open", "users.messages.whatsapp.InboundReceive"}, BlockEvents: 3, Codec: codec, Seed: uint64(i)})
		for _, b := range bodies {
			f.Add(b)
		}
	}
	f.Add(container(map[string]string{"avro.schema": tinySchema}, testSync, block(2, testSync, "a", "b")))
	f.Add([]byte("Obj\x01"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := currents.NewReader(bytes.NewReader(body), currents.ReaderOptions{Object: "fuzz", MaxBlockBytes: 1 << 20})
		if err != nil {
			var de *currents.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("header error is %T: %v", err, err)
			}
			return
		}
		defer r.Close()
		for i := 0; ; i++ {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				var de *currents.DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("error is %T: %v", err, err)
				}
				return
			}
			_ = ev.Map()
			if i > len(body)*8+8 {
				t.Fatalf("more events than the bytes can hold")
			}
		}
	})
}
