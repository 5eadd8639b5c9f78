package mparticle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// ctmWideEvents is the number of events of the wide export.
const ctmWideEvents = 40

// ctmWideExport writes one Avro file of users.messages.email.Open events
// whose writer schema has, besides the fields the mapping reads, 120 more
// string fields in reverse alphabetical order (attr_119 first): more custom
// attributes than mParticle's 100, so which ones are sent depends on the
// order the mapping sees the fields in. It returns the file and the events
// decoded from it by the library.
func ctmWideExport(t *testing.T) (file string, events []currents.Event) {
	t.Helper()
	fields := []string{
		`{"name":"id","type":"string"}`,
		`{"name":"user_id","type":"string"}`,
		`{"name":"external_user_id","type":["null","string"]}`,
		`{"name":"time","type":"int"}`,
		`{"name":"email_address","type":"string"}`,
	}
	for i := 119; i >= 0; i-- {
		fields = append(fields, fmt.Sprintf(`{"name":"attr_%03d","type":"string"}`, i))
	}
	schema := avro.MustParse(`{"type":"record","name":"Open","namespace":"dataexport.S3.inner.users.messages.email","fields":[` + strings.Join(fields, ",") + `]}`)
	var buf bytes.Buffer
	enc, err := ocf.NewEncoder(schema.String(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < ctmWideEvents; n++ {
		rec := map[string]any{
			"id":               fmt.Sprintf("0d2f378f-a910-4ca9-b77e-82348f9b%04d", n),
			"user_id":          "5f3a9c1e2b7d4a0012345678",
			"external_user_id": fmt.Sprintf("wide-user-%d", n),
			"time":             ctmRecent(),
			"email_address":    "someone@example.com",
		}
		for i := 0; i < 120; i++ {
			rec[fmt.Sprintf("attr_%03d", i)] = fmt.Sprintf("v%d", i)
		}
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	name := "dataexport.prod-03.S3.integration.5f3a9c1e2b7d4a0012345678"
	file = filepath.Join(t.TempDir(), "currents", name, "event_type=users.messages.email.Open", "date=2026-11-01-10", "512", "us-03", name+"+0+0.avro")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dec, err := currents.NewReader(bytes.NewReader(buf.Bytes()), currents.ReaderOptions{Object: file})
	if err != nil {
		t.Fatal(err)
	}
	for {
		evs, err := dec.NextBlock()
		if err != nil {
			break
		}
		events = append(events, evs...)
	}
	if len(events) != ctmWideEvents {
		t.Fatalf("decoded %d events, want %d", len(events), ctmWideEvents)
	}
	return file, events
}

// ctmRunCarried runs file input + braze_currents scanner + processors +
// currents_to_mparticle, and returns each batch by mparticle_event_id with
// its mparticle_user and mparticle_event_name, and how many events the
// processor read from the carried event and by parsing.
func ctmRunCarried(t *testing.T, file, processors string) (out map[string][3]string, carried, parsed int64) {
	t.Helper()
	b := service.NewStreamBuilder()
	if err := b.SetLoggerYAML("level: WARN"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddInputYAML(fmt.Sprintf("file:\n  paths: [ %q ]\n  scanner:\n    braze_currents: {}\n", file)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{processors, "currents_to_mparticle: {}"} {
		if p == "" {
			continue
		}
		if err := b.AddProcessorYAML(p); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	out = map[string][3]string{}
	if err := b.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			if err := m.GetError(); err != nil {
				return err
			}
			raw, _ := m.AsBytes()
			out[ctmMeta(m, "mparticle_event_id")] = [3]string{string(raw), ctmMeta(m, "mparticle_user"), ctmMeta(m, "mparticle_event_name")}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	strm, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c0, p0 := ctmEventsCarried.Load(), ctmEventsParsed.Load()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := strm.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return out, ctmEventsCarried.Load() - c0, ctmEventsParsed.Load() - p0
}

// ctmLibraryBatch maps an event with the processor's default options, as
// the library does.
func ctmLibraryBatch(t *testing.T, ev currents.Event) string {
	t.Helper()
	p := ctmTestProc(t, `{}`)
	raw, res, err := p.mapper.AppendBatch(nil, ev)
	if err != nil || res.Dropped != "" {
		t.Fatalf("library: %v %s", err, res.Dropped)
	}
	return string(raw)
}

// Messages of the scanner that no processor changed are mapped from the
// event they carry, without a parse, and the batches are the library's,
// byte for byte: the custom attributes kept within mParticle's limit are the
// first in writer-schema order (attr_119 down to attr_0xx), not the first
// by name. A processor that changes only metadata keeps that way, and the
// event type in the metadata is honoured.
func TestProcessorCarriedEventFastPath(t *testing.T) {
	file, events := ctmWideExport(t)
	out, carried, parsed := ctmRunCarried(t, file, "")
	if carried != ctmWideEvents || parsed != 0 {
		t.Fatalf("%d events read from the carried event, %d parsed; want all %d carried", carried, parsed, ctmWideEvents)
	}
	if len(out) != ctmWideEvents {
		t.Fatalf("%d batches, want %d", len(out), ctmWideEvents)
	}
	for _, ev := range events {
		got, want := out[ev.ID()][0], ctmLibraryBatch(t, ev)
		if got != want {
			t.Fatalf("event %s: processor sent\n%s\nthe library maps\n%s", ev.ID(), got, want)
		}
		if !strings.Contains(got, `"attr_119":"v119"`) || strings.Contains(got, `"attr_000"`) {
			t.Fatalf("event %s: attributes not trimmed in writer-schema order:\n%s", ev.ID(), got)
		}
	}

	// A mapping that reads the content and sets only metadata (the content
	// is left as it was): still the carried event, with the type the
	// metadata says.
	out, carried, parsed = ctmRunCarried(t, file, `mapping: 'meta currents_event_type = if this.external_user_id.has_prefix("wide-") { "users.messages.email.Click" } else { "users.messages.email.Bounce" }'`)
	if carried != ctmWideEvents || parsed != 0 {
		t.Fatalf("metadata changed: %d carried, %d parsed; want all carried", carried, parsed)
	}
	for _, ev := range events {
		if name := out[ev.ID()][2]; name != "Email Clicks" {
			t.Fatalf("event %s: event name %q after the type changed to email.Click, want Email Clicks", ev.ID(), name)
		}
	}
}

// A processor that changes a field between the scanner and
// currents_to_mparticle is honoured: the message is parsed, the change is
// mapped, and the fields keep the writer-schema order of the event the
// message came from, so the same attributes are kept as by the library.
func TestProcessorCarriedEventChangedField(t *testing.T) {
	file, events := ctmWideExport(t)
	for _, proc := range []string{
		"mapping: |\n  root = this\n  root.external_user_id = \"changed-\" + this.external_user_id",
		`mutation: 'root.external_user_id = "changed-" + this.external_user_id'`,
	} {
		out, carried, parsed := ctmRunCarried(t, file, proc)
		if carried != 0 || parsed != ctmWideEvents {
			t.Fatalf("%s: %d carried, %d parsed; want all %d parsed", proc, carried, parsed, ctmWideEvents)
		}
		for _, ev := range events {
			old, _ := ev.StringField("external_user_id")
			want := strings.ReplaceAll(ctmLibraryBatch(t, ev), `"`+old+`"`, `"changed-`+old+`"`)
			got := out[ev.ID()]
			if got[1] != "changed-"+old {
				t.Fatalf("%s: event %s: mparticle_user %q, want the changed changed-%s", proc, ev.ID(), got[1], old)
			}
			if got[0] != want {
				t.Fatalf("%s: event %s: processor sent\n%s\nwant the library's batch of the changed event\n%s", proc, ev.ID(), got[0], want)
			}
		}
	}
}

// The slow path's order: carried names first, in their order, then any
// others by name; without a carried event, by name.
func TestProcessorParsedOrder(t *testing.T) {
	ev := currents.NewEvent("users.messages.email.Open", []currents.Entry{
		{Name: "id", Value: currents.StringValue("0d2f378f-a910-4ca9-b77e-82348f9bbd02")},
		{Name: "zeta", Value: currents.StringValue("z")},
		{Name: "alpha", Value: currents.StringValue("a")},
	})
	text := ev.AppendJSON(nil)
	carriers := currents.NewEventJSONs(1)
	msg := service.NewMessage(text).WithContext(carriers.Set(0, context.Background(), ev, text))
	msg.MetaSetMut("currents_event_type", ev.Type)
	got, fast, err := ctmEvent(msg)
	if err != nil || !fast || got.Len() != 3 {
		t.Fatalf("unchanged message: fast=%v err=%v", fast, err)
	}
	if _, _, err := ctmEvent(msg); err != nil {
		t.Fatal(err)
	}
	if _, ok := currents.TakeEventJSON(msg.Context()); ok {
		t.Fatal("the mapped event is still carried")
	}
	// Each case below carries the event again: the processor takes it.
	carriers.Set(0, context.Background(), ev, text)
	changed := msg.Copy()
	changed.SetStructured(map[string]any{"id": "x", "alpha": "b", "zeta": "y", "beta": "new"})
	got, fast, err = ctmEvent(changed)
	if err != nil || fast {
		t.Fatalf("changed message: fast=%v err=%v", fast, err)
	}
	if names := strings.Join(got.Names(), ","); names != "id,zeta,alpha,beta" {
		t.Fatalf("changed message: fields %s, want id,zeta,alpha,beta", names)
	}
	// Same bytes in another slice: not provably the written content.
	carriers.Set(0, context.Background(), ev, text)
	other := service.NewMessage(append([]byte(nil), text...)).WithContext(msg.Context())
	other.MetaSetMut("currents_event_type", ev.Type)
	if _, fast, _ := ctmEvent(other); fast {
		t.Fatal("a copy of the bytes took the fast path")
	}
}

// BenchmarkProcessorCarried is BenchmarkProcessor on messages as the
// braze_currents scanner and input emit them: JSON content with the decoded
// event beside it, which the processor maps without a parse.
func BenchmarkProcessorCarried(b *testing.B) {
	p := ctmTestProc(b, `app_platforms: { app-ios: ios }`)
	batch := make(service.MessageBatch, 500)
	ctxs := currents.NewEventJSONs(len(batch))
	evs, texts := make([]currents.Event, len(batch)), make([][]byte, len(batch))
	for i := range batch {
		fields := []currents.Entry{
			{Name: "id", Value: currents.StringValue("0d2f378f-a910-4ca9-b77e-82348f9b" + fmt.Sprint(1000+i))},
			{Name: "user_id", Value: currents.StringValue("5f3a9c1e2b7d4a0012345678")},
			{Name: "external_user_id", Value: currents.StringValue("user-123")},
			{Name: "time", Value: currents.IntValue(time.Now().Add(-time.Hour).Unix())},
		}
		for _, kv := range [][2]string{{"platform", "ios"}, {"app_id", "app-ios"}, {"campaign_id", "8fda69e315120886ccd633ee"}, {"campaign_name", "Spring Sale"},
			{"send_id", "765db018cfcf37641764ff66"}, {"device_id", "c5a1e0f2-7b3d-4e8a-9f61-2d4c8b7a9e03"}, {"timezone", "America/New_York"}, {"app_group_id", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"}} {
			fields = append(fields, currents.Entry{Name: kv[0], Value: currents.StringValue(kv[1])})
		}
		ev := currents.NewEvent("users.messages.pushnotification.Send", fields)
		text := ev.AppendJSON(nil)
		evs[i], texts[i] = ev, text
		batch[i] = service.NewMessage(text).WithContext(ctxs.Set(i, context.Background(), ev, text))
		batch[i].MetaSetMut("currents_event_type", ev.Type)
		batch[i].MetaSetMut("currents_id", ev.ID())
	}
	c0 := ctmEventsCarried.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The processor releases each event once mapped: carry them again.
		for j := range batch {
			ctxs.Set(j, context.Background(), evs[j], texts[j])
		}
		out, err := p.ProcessBatch(context.Background(), batch)
		if err != nil || len(out[0]) != len(batch) {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := ctmEventsCarried.Load() - c0; n != int64(b.N*len(batch)) {
		b.Fatalf("%d of %d events took the fast path", n, b.N*len(batch))
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}

// A mapped message keeps nothing of its event's Avro block: the event's
// strings point into the block's decoded bytes, and the output holds mapped
// messages for as long as mParticle takes them, so metadata cut from those
// strings would keep megabytes alive per message batch in flight.
func TestMappedMessagesDoNotKeepTheEventsBlockAlive(t *testing.T) {
	p := ctmTestProc(t, `app_platforms: { app-ios: ios }`)
	block := make([]byte, 1<<20) // stands for the decoded bytes of an Avro block
	alive := weak.Make(&block[0])
	at := 0
	cut := func(s string) currents.Value { // a string of the block, as the decoder makes them
		n := copy(block[at:], s)
		v := currents.StringValue(unsafe.String(&block[at], n))
		at += n
		return v
	}
	batch := make(service.MessageBatch, 3)
	ctxs := currents.NewEventJSONs(len(batch))
	for i := range batch {
		ev := currents.NewEvent("users.behaviors.CustomEvent", []currents.Entry{
			{Name: "id", Value: cut(fmt.Sprintf("0d2f378f-a910-4ca9-b77e-82348f9b%04d", i))},
			{Name: "user_id", Value: cut("5f3a9c1e2b7d4a0012345678")},
			{Name: "external_user_id", Value: cut(fmt.Sprintf("user-%d", i))},
			{Name: "time", Value: currents.IntValue(int64(ctmRecent()))},
			{Name: "name", Value: cut(fmt.Sprintf("custom event %d", i))},
			{Name: "app_id", Value: cut("app-ios")},
			{Name: "platform", Value: cut("ios")},
		})
		text := ev.AppendJSON(nil)
		batch[i] = service.NewMessage(text).WithContext(ctxs.Set(i, context.Background(), ev, text))
		batch[i].MetaSetMut("currents_event_type", ev.Type)
		batch[i].MetaSetMut("currents_id", strings.Clone(ev.ID()))
	}
	out, err := p.ProcessBatch(context.Background(), batch)
	if err != nil || len(out) != 1 || len(out[0]) != len(batch) {
		t.Fatalf("mapped %v, %v", out, err)
	}
	block, batch = nil, nil
	runtime.GC()
	if alive.Value() != nil {
		for _, m := range out[0] {
			m.MetaWalkMut(func(k string, v any) error { t.Logf("%s: %v", k, v); return nil })
		}
		t.Fatal("the mapped messages keep their events' block alive")
	}
	for i, m := range out[0] {
		if u, _ := m.MetaGet(ctmMetaUser); u != fmt.Sprintf("user-%d", i) {
			t.Errorf("message %d: %s %q", i, ctmMetaUser, u)
		}
		if n, _ := m.MetaGet(ctmMetaEventName); n != fmt.Sprintf("custom event %d", i) {
			t.Errorf("message %d: %s %q", i, ctmMetaEventName, n)
		}
	}
}
