// Command floor is a Benthos distribution with components that do no work
// of their own, to measure what Benthos v4.27 itself costs per event on
// the shipped pipeline's path (bench/ratio.sh prints it as "Benthos floor"):
//
//   - the `floor` scanner reads its file to the end without decoding it, then
//     emits `events` messages in batches of 500 (the braze_currents scanner's
//     default), each with a shared 1 KB content and the seven currents_*
//     metadata keys the real scanner sets, their values boxed once;
//   - the `floor` input does the same as a Benthos input, for the path of
//     the braze_currents input: it reads the file at `path` to the end, then
//     emits the same batches;
//   - the `floor_map` processor does what the currents_to_mparticle processor
//     must do to every message: copy it, set its content and five metadata
//     keys, again with values made once.
//
// Nothing here allocates per event: every allocation left is Benthos's
// (messages, contexts, spans, metadata maps) and the garbage collector's.
//
// `floor retained` prints instead what Benthos keeps in memory per message in
// flight, before any content: the input's message with its metadata and the
// processor's copy with its own (bench/memory.sh's bound).
//
//	go run ./bench/floor -c config.yaml
//	go run ./bench/floor retained
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/benthosdev/benthos/v4/public/service"

	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
)

// batchSize is the braze_currents scanner's default max_batch_size.
const batchSize = 500

var (
	content = bytes.Repeat([]byte{' '}, 1024)
	// The real scanner's keys (plugins/components/currents/message.go) and
	// the real processor's (plugins/components/mparticle), with stand-in
	// values of the same kinds.
	scannerMeta = []struct {
		key string
		val any
	}{
		{"currents_event_type", "users.messages.pushnotification.Send"},
		{"currents_id", "5f0c4c52-8f5a-4b0e-9d35-0a5e4ad0b6c1"},
		{"currents_time", "1764576000"},
		{"currents_schema", "com.braze.currents.UsersMessagesPushnotificationSend"},
		{"currents_object", "currents/event_type=x/date=2026-12-01-08/1.avro"},
		{"currents_date", "2026-12-01-08"},
		{"currents_integration_id", "5e1e4d2c9b8a7f6e5d4c3b2a"},
	}
	processorMeta = []struct {
		key string
		val any
	}{
		{"mparticle_feed", "ios"},
		{"mparticle_user", "user-1"},
		{"mparticle_historical", "false"},
		{"mparticle_event_id", "5f0c4c52-8f5a-4b0e-9d35-0a5e4ad0b6c1"},
		{"mparticle_event_name", "push_send"},
	}
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "retained" {
		retained()
		return
	}
	err := service.RegisterBatchScannerCreator("floor",
		service.NewConfigSpec().Field(service.NewIntField("events")),
		func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchScannerCreator, error) {
			n, err := conf.FieldInt("events")
			return floorCreator(n), err
		})
	if err == nil {
		err = service.RegisterBatchInput("floor",
			service.NewConfigSpec().Field(service.NewStringField("path")).Field(service.NewIntField("events")),
			func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchInput, error) {
				path, err := conf.FieldString("path")
				if err != nil {
					return nil, err
				}
				n, err := conf.FieldInt("events")
				return &floorInput{path: path, left: n}, err
			})
	}
	if err == nil {
		err = service.RegisterBatchProcessor("floor_map", service.NewConfigSpec(),
			func(*service.ParsedConfig, *service.Resources) (service.BatchProcessor, error) {
				return floorMap{}, nil
			})
	}
	if err != nil {
		panic(err)
	}
	service.RunCLI(context.Background())
}

type floorCreator int

func (n floorCreator) Create(rdr io.ReadCloser, aFn service.AckFunc, _ *service.ScannerSourceDetails) (service.BatchScanner, error) {
	return service.AutoAggregateBatchScannerAcks(&floorScanner{rdr: rdr, left: int(n)}, aFn), nil
}

func (floorCreator) Close(context.Context) error { return nil }

type floorScanner struct {
	rdr  io.ReadCloser
	left int
	read bool
}

func (s *floorScanner) NextBatch(context.Context) (service.MessageBatch, error) {
	if !s.read {
		if _, err := io.Copy(io.Discard, s.rdr); err != nil {
			return nil, err
		}
		s.read = true
	}
	if s.left == 0 {
		return nil, io.EOF
	}
	return nextBatch(&s.left), nil
}

// nextBatch builds the next batch of at most batchSize of the *left
// messages still to emit.
func nextBatch(left *int) service.MessageBatch {
	n := min(*left, batchSize)
	*left -= n
	batch := make(service.MessageBatch, n)
	for i := range batch {
		batch[i] = inputMessage()
	}
	return batch
}

// inputMessage is a message as the scanner and the input emit it.
func inputMessage() *service.Message {
	m := service.NewMessage(content)
	for _, kv := range scannerMeta {
		m.MetaSetMut(kv.key, kv.val)
	}
	return m
}

// mapped is what the processor makes of m.
func mapped(m *service.Message) *service.Message {
	c := m.Copy()
	c.SetBytes(content)
	for _, kv := range processorMeta {
		c.MetaSetMut(kv.key, kv.val)
	}
	return c
}

func (s *floorScanner) Close(context.Context) error { return s.rdr.Close() }

type floorInput struct {
	path string
	left int
}

func (in *floorInput) Connect(context.Context) error {
	f, err := os.Open(in.path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

func (in *floorInput) ReadBatch(context.Context) (service.MessageBatch, service.AckFunc, error) {
	if in.left == 0 {
		return nil, nil, service.ErrEndOfInput
	}
	return nextBatch(&in.left), func(context.Context, error) error { return nil }, nil
}

func (in *floorInput) Close(context.Context) error { return nil }

type floorMap struct{}

func (floorMap) ProcessBatch(_ context.Context, b service.MessageBatch) ([]service.MessageBatch, error) {
	out := make(service.MessageBatch, len(b))
	for i, m := range b {
		out[i] = mapped(m)
	}
	return []service.MessageBatch{out}, nil
}

func (floorMap) Close(context.Context) error { return nil }

// fileInputMeta are the keys the `file` input adds to every message.
var fileInputMeta = []string{"path", "mod_time_unix", "mod_time"}

// retained prints the heap held per event in flight: the message as the
// input emits it (the scanner's metadata, with or without the `file` input's)
// and the processor's copy, both kept until the output acknowledges.
func retained() {
	const n = 100000
	for _, file := range []bool{false, true} {
		in, out := make([]*service.Message, n), make([]*service.Message, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range in {
			m := inputMessage()
			if file {
				for _, k := range fileInputMeta {
					m.MetaSetMut(k, "")
				}
			}
			in[i], out[i] = m, mapped(m)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		path := "braze_currents input"
		if file {
			path = "file input + scanner"
		}
		fmt.Printf("%s: %d bytes per event in flight (its message and the processor's copy, no content)\n",
			path, (after.HeapAlloc-before.HeapAlloc)/n)
		runtime.KeepAlive(in)
		runtime.KeepAlive(out)
	}
}
