package mparticle

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	mapping "github.com/currents-mparticle/currents-mparticle/plugins/mparticle"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/validate"
)

func ctmTestProc(t testing.TB, yaml string) *ctmProc {
	t.Helper()
	conf, err := ctmProcSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ctmProcFromParsed(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ctmTestEvent is a structured message as the braze_currents scanner emits
// it: the fields as an object, the type in metadata. Times are relative to
// the real clock, since the processor decides "historical" on it.
func ctmTestEvent(eventType string, fields map[string]any) *service.Message {
	base := map[string]any{
		"id":               "0d2f378f-a910-4ca9-b77e-82348f9bbd02",
		"user_id":          "5f3a9c1e2b7d4a0012345678",
		"external_user_id": "user-123",
		"time":             time.Now().Add(-time.Hour).Unix(),
	}
	for k, v := range fields {
		if v == nil {
			delete(base, k)
			continue
		}
		base[k] = v
	}
	msg := service.NewMessage(nil)
	msg.SetStructuredMut(base)
	if eventType != "" {
		msg.MetaSetMut("currents_event_type", eventType)
	}
	msg.MetaSetMut("currents_id", base["id"])
	return msg
}

func ctmDecode(t *testing.T, msg *service.Message) map[string]any {
	t.Helper()
	raw, err := msg.AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Batch(raw); err != nil {
		t.Fatalf("batch breaks mParticle's rules: %v\n%s", err, raw)
	}
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func ctmMeta(msg *service.Message, key string) string {
	v, _ := msg.MetaGet(key)
	return v
}

func TestProcessorBatch(t *testing.T) {
	p := ctmTestProc(t, `
app_platforms:
  app-ios: ios
missing_identity: drop
exclude_event_types: [ users.messages.webhook.* ]
unmappable: fail
`)
	old := time.Now().Add(-40 * 24 * time.Hour).Unix()
	in := service.MessageBatch{
		ctmTestEvent("users.messages.email.Open", map[string]any{"email_address": "jane@example.com", "campaign_name": "Spring"}),
		ctmTestEvent("users.messages.email.Open", map[string]any{"external_user_id": nil}), // dropped: no identity
		ctmTestEvent("users.behaviors.Uninstall", map[string]any{"app_id": "app-ios", "time": old, "id": "not-a-uuid"}),
		ctmTestEvent("users.messages.webhook.Send", nil), // dropped: excluded
		ctmTestEvent("", nil), // failed: no type metadata
		ctmTestEvent("users.canvas.Entry", map[string]any{"time": "yesterday"}), // failed: wrong kind
		ctmTestEvent("users.messages.pushnotification.Send", map[string]any{"platform": "android", "id": "b27393d5-2230-45d7-89d5-2d78617420b1"}),
	}
	in[0].MetaSetMut("currents_object", "currents/x.avro")
	out, err := p.ProcessBatch(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || len(out[0]) != 5 {
		t.Fatalf("got %d batches, want 1 of 5 messages (3 mapped, 2 errored)", len(out))
	}
	msgs := out[0]

	open := msgs[0]
	if open.GetError() != nil {
		t.Fatal(open.GetError())
	}
	b := ctmDecode(t, open)
	if ids := b["user_identities"].(map[string]any); ids["customer_id"] != "user-123" || ids["email"] != "jane@example.com" {
		t.Errorf("identities %v", ids)
	}
	for key, want := range map[string]string{
		"mparticle_feed": "unbound", "mparticle_user": "user-123", "mparticle_historical": "false",
		"mparticle_event_id": "0d2f378f-a910-4ca9-b77e-82348f9bbd02", "mparticle_event_name": "Email Opens",
		"currents_object": "currents/x.avro", // input metadata is kept
	} {
		if got := ctmMeta(open, key); got != want {
			t.Errorf("open: metadata %s = %q, want %q", key, got, want)
		}
	}

	uninstall := msgs[1]
	ub := ctmDecode(t, uninstall)
	if e := ub["events"].([]any)[0].(map[string]any); e["event_type"] != "uninstall" {
		t.Errorf("uninstall event %v", e)
	}
	if ctmMeta(uninstall, "mparticle_feed") != "ios" || ctmMeta(uninstall, "mparticle_historical") != "true" {
		t.Errorf("uninstall feed %q historical %q", ctmMeta(uninstall, "mparticle_feed"), ctmMeta(uninstall, "mparticle_historical"))
	}
	if id := ctmMeta(uninstall, "mparticle_event_id"); len(id) != 36 || id == "not-a-uuid" {
		t.Errorf("uninstall event id %q, want a derived UUID", id)
	}

	noType := msgs[2]
	if err := noType.GetError(); err == nil || !strings.Contains(err.Error(), "currents_event_type") {
		t.Errorf("message without type: error %v", err)
	}
	wrongKind := msgs[3]
	if err := wrongKind.GetError(); err == nil || !strings.Contains(err.Error(), "field time") || !strings.Contains(err.Error(), "users.canvas.Entry") {
		t.Errorf("wrong kind: error %v", err)
	}
	// An errored message keeps its input, for the dead letter.
	if s, err := wrongKind.AsStructured(); err != nil || s.(map[string]any)["time"] != "yesterday" {
		t.Errorf("errored message content %v (%v)", s, err)
	}

	push := msgs[4]
	if ctmMeta(push, "mparticle_feed") != "android" {
		t.Errorf("push feed %q", ctmMeta(push, "mparticle_feed"))
	}
	// The messages share one buffer: appending to one message's bytes must
	// not overwrite the next one's.
	first, _ := open.AsBytes()
	next, _ := uninstall.AsBytes()
	before := string(next)
	_ = append(first, `garbage`...)
	if after, _ := uninstall.AsBytes(); string(after) != before {
		t.Error("appending to a message's bytes changed the next message")
	}
}

func TestProcessorAllDropped(t *testing.T) {
	p := ctmTestProc(t, `event_types: [ users.canvas.* ]`)
	out, err := p.ProcessBatch(context.Background(), service.MessageBatch{
		ctmTestEvent("users.messages.email.Open", nil),
		ctmTestEvent("users.canvas.Entry", map[string]any{"external_user_id": nil}),
	})
	if err != nil || len(out) != 0 {
		t.Fatalf("got %v, %v; want no batch", out, err)
	}
}

func TestProcessorFailPolicy(t *testing.T) {
	p := ctmTestProc(t, `
missing_identity: fail
unknown_event_types: fail
`)
	out, err := p.ProcessBatch(context.Background(), service.MessageBatch{
		ctmTestEvent("users.messages.email.Open", map[string]any{"external_user_id": nil}),
		ctmTestEvent("users.messages.line.Click", nil),
	})
	if err != nil || len(out) != 1 || len(out[0]) != 2 {
		t.Fatalf("got %v, %v", out, err)
	}
	for i, want := range []string{"missing_identity is fail", "not in the catalog"} {
		if err := out[0][i].GetError(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("message %d: error %v, want %q", i, err, want)
		}
	}
}

func TestProcessorOptions(t *testing.T) {
	p := ctmTestProc(t, `
environment: development
identity: other_id_3
device_id_mapping: by_platform
platform_feeds: { roku: web }
attributes:
  remove: [ campaign_name ]
  hash: [ email_address ]
`)
	out, err := p.ProcessBatch(context.Background(), service.MessageBatch{
		ctmTestEvent("users.messages.pushnotification.Send", map[string]any{
			"platform": "roku", "device_id": "c5a1e0f2-7b3d-4e8a-9f61-2d4c8b7a9e03", "campaign_name": "x",
		}),
		ctmTestEvent("users.messages.email.Send", map[string]any{"email_address": "jane@example.com"}),
	})
	if err != nil || len(out) != 1 || len(out[0]) != 2 {
		t.Fatalf("got %v, %v", out, err)
	}
	push := ctmDecode(t, out[0][0])
	if push["environment"] != "development" || push["user_identities"].(map[string]any)["other_id_3"] != "user-123" {
		t.Errorf("push batch %v", push)
	}
	if di := push["device_info"].(map[string]any); di["ios_idfv"] != nil || di["platform"] != "roku" {
		t.Errorf("device_info %v: by_platform leaves a roku device id out", di)
	}
	if ctmMeta(out[0][0], "mparticle_feed") != "web" {
		t.Errorf("roku feed %q", ctmMeta(out[0][0], "mparticle_feed"))
	}
	attrs := push["events"].([]any)[0].(map[string]any)["data"].(map[string]any)["custom_attributes"].(map[string]any)
	if _, ok := attrs["campaign_name"]; ok {
		t.Error("campaign_name not removed")
	}
	email := ctmDecode(t, out[0][1])
	if got := email["user_identities"].(map[string]any)["email"]; got != "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d" {
		t.Errorf("email identity %v, want hashed", got)
	}
}

func TestProcessorConfigErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{`missing_identity: skip`, "missing_identity"},
		{`missing_identity: "user_id:nobody"`, "missing_identity"},
		{`app_platforms: { a: windows }`, "app_platforms"},
		{`platform_feeds: { ios: web }`, "platform_feeds"},
		{`event_types: [ "[" ]`, "event_types"},
		{`attributes: { remove: [ id ] }`, "attributes.remove"},
	} {
		conf, err := ctmProcSpec().ParseYAML(c.yaml, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.yaml, err)
		}
		if _, err := ctmProcFromParsed(conf, service.MockResources()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", c.yaml, err, c.want)
		}
	}
	// Enumerated fields are linted by Benthos; parsing alone lets any
	// string through, so the constructor must refuse them too.
	for _, yaml := range []string{`environment: staging`, `identity: customerid`, `device_id_mapping: idfa`, `unknown_event_types: ignore`, `unmappable: skip`} {
		conf, err := ctmProcSpec().ParseYAML(yaml, nil)
		if err != nil {
			continue
		}
		if _, err := ctmProcFromParsed(conf, service.MockResources()); err == nil {
			t.Errorf("%s accepted", yaml)
		}
	}
}

// TestProcessorStream runs the processor registered under its name in a
// stream, from a producer to a consumer, as a config would.
func TestProcessorStream(t *testing.T) {
	sb := service.NewStreamBuilder()
	if err := sb.SetLoggerYAML(`level: none`); err != nil {
		t.Fatal(err)
	}
	produce, err := sb.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.AddProcessorYAML(`
currents_to_mparticle:
  app_platforms: { app-android: android }
`); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*service.Message
	if err := sb.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stream, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }()

	var batch service.MessageBatch
	for i := 0; i < 10; i++ {
		batch = append(batch, ctmTestEvent("users.behaviors.Uninstall", map[string]any{
			"app_id": "app-android", "id": "0d2f378f-a910-4ca9-b77e-82348f9bbd" + strconv.Itoa(10+i),
		}))
	}
	batch = append(batch, ctmTestEvent("users.behaviors.Uninstall", map[string]any{"external_user_id": nil}))
	if err := produce(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := stream.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil && err != context.Canceled {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 10 {
		t.Fatalf("consumed %d messages, want the 10 with an identity", len(got))
	}
	for i, m := range got {
		b := ctmDecode(t, m)
		if ctmMeta(m, "mparticle_feed") != "android" || b["source_request_id"] != "0d2f378f-a910-4ca9-b77e-82348f9bbd"+strconv.Itoa(10+i) {
			t.Errorf("message %d: feed %q batch %v", i, ctmMeta(m, "mparticle_feed"), b["source_request_id"])
		}
	}
}

// BenchmarkProcessor maps batches of 500 structured messages, the scanner's
// batch size: the processor's own cost on top of the Mapper (structured
// message to event, message copies, metadata).
func BenchmarkProcessor(b *testing.B) {
	p := ctmTestProc(b, `app_platforms: { app-ios: ios }`)
	batch := make(service.MessageBatch, 500)
	for i := range batch {
		batch[i] = ctmTestEvent("users.messages.pushnotification.Send", map[string]any{
			"id": "0d2f378f-a910-4ca9-b77e-82348f9b" + strconv.Itoa(1000+i), "platform": "ios", "app_id": "app-ios",
			"campaign_id": "8fda69e315120886ccd633ee", "campaign_name": "Spring Sale", "send_id": "765db018cfcf37641764ff66",
			"device_id": "c5a1e0f2-7b3d-4e8a-9f61-2d4c8b7a9e03", "timezone": "America/New_York", "app_group_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := p.ProcessBatch(context.Background(), batch)
		if err != nil || len(out[0]) != len(batch) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}

// The run's totals, logged on Close, add up every batch: mapped, dropped by
// reason and failed.
func TestProcessorTally(t *testing.T) {
	p := ctmTestProc(t, `missing_identity: drop`)
	batch := service.MessageBatch{
		ctmTestEvent("users.messages.email.Open", map[string]any{"email_address": "a@example.com"}),
		ctmTestEvent("users.messages.email.Open", map[string]any{"external_user_id": nil}),
		ctmTestEvent("", nil), // not an event: dropped by default
		ctmTestEvent("users.canvas.Entry", map[string]any{"time": 0}), // unmappable: dropped by default
		ctmTestEvent("users.canvas.Entry", map[string]any{"external_user_id": nil}),
	}
	for i := 0; i < 2; i++ {
		if _, err := p.ProcessBatch(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{"no_identity": 4, "bad_message": 2, "invalid_time": 2}
	if p.tally.mapped != 2 || p.tally.failed != 0 || !maps.Equal(p.tally.dropped, want) {
		t.Fatalf("tally = %+v, want 2 mapped, 0 failed, dropped %v", p.tally, want)
	}
	f := ctmTestProc(t, `unmappable: fail`)
	if _, err := f.ProcessBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if f.tally.mapped != 1 || f.tally.failed != 2 || !maps.Equal(f.tally.dropped, map[string]int{"no_identity": 2}) {
		t.Fatalf("unmappable: fail: tally = %+v", f.tally)
	}
	for i := 0; i < 2; i++ { // once per pipeline thread
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// Every reason an unmappable event can have is explained in the unmappable
// option's description, and listed in the metrics section.
func TestProcessorDocumentsUnmappableReasons(t *testing.T) {
	var spec struct {
		Description string `json:"description"`
		Config      struct {
			Children []struct {
				Name        string `json:"name"`
				Description string `json:"description"`
			} `json:"children"`
		} `json:"config"`
	}
	service.GlobalEnvironment().WalkProcessors(func(name string, view *service.ConfigView) {
		if name != "currents_to_mparticle" {
			return
		}
		raw, err := view.FormatJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatal(err)
		}
	})
	var desc string
	for _, c := range spec.Config.Children {
		if c.Name == "unmappable" {
			desc = c.Description
		}
	}
	if desc == "" {
		t.Fatal("no unmappable option")
	}
	for _, r := range append(mapping.UnmappableReasons(), ctmReasonBadMessage) {
		if !strings.Contains(desc, "`"+r+"`") || !strings.Contains(spec.Description, "`"+r+"`") {
			t.Errorf("reason %s is not in the unmappable option's description or the metrics section", r)
		}
	}
}
