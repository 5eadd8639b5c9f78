package validate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/validate"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// mutate decodes a fixture, applies fn to it and re-encodes it, so each invalid
// case states only what it breaks.
func mutate(t testing.TB, name string, fn func(b map[string]any)) []byte {
	t.Helper()
	var b map[string]any
	dec := json.NewDecoder(bytes.NewReader(readFixture(t, name)))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	fn(b)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func event(b map[string]any, i int) map[string]any {
	return b["events"].([]any)[i].(map[string]any)
}

func data(b map[string]any, i int) map[string]any {
	return event(b, i)["data"].(map[string]any)
}

func attrs(n int, value string) map[string]any {
	m := make(map[string]any, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("attr_%03d", i)] = value
	}
	return m
}

func TestBatchValid(t *testing.T) {
	for _, name := range []string{"email_open.json", "sms_delivery.json", "uninstall.json", "many_types.json"} {
		t.Run(name, func(t *testing.T) {
			if err := validate.Batch(readFixture(t, name)); err != nil {
				t.Fatalf("valid batch rejected:\n%v", err)
			}
		})
	}
}

func TestBatchValidAtLimits(t *testing.T) {
	cases := map[string][]byte{
		"100 custom attributes, longest names": mutate(t, "email_open.json", func(b map[string]any) {
			d := data(b, 0)
			ca := attrs(validate.MaxCustomAttributes-1, "v")
			ca[strings.Repeat("n", validate.MaxNameLength)] = "x"
			d["custom_attributes"] = ca
			d["event_name"] = strings.Repeat("ü", validate.MaxNameLength)
		}),
		"longest attribute value in characters": mutate(t, "email_open.json", func(b map[string]any) {
			data(b, 0)["custom_attributes"] = map[string]any{"v": strings.Repeat("é", validate.MaxValueLength)}
		}),
		"100 user attributes, longest list": mutate(t, "sms_delivery.json", func(b map[string]any) {
			ua := attrs(validate.MaxUserAttributes-1, "v")
			list := make([]any, validate.MaxUserAttributeListEntries)
			for i := range list {
				list[i] = "x"
			}
			list[0] = strings.Repeat("x", validate.MaxUserAttributeListEntryLength)
			ua["list"] = list
			b["user_attributes"] = ua
		}),
		"100 events": mutate(t, "uninstall.json", func(b map[string]any) {
			events := make([]any, validate.MaxEventsPerBatch)
			for i := range events {
				events[i] = event(b, 0)
			}
			b["events"] = events
		}),
		"batch of exactly 128 KB": batchOfSize(t, validate.MaxBatchBytes),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if err := validate.Batch(raw); err != nil {
				t.Fatalf("batch at the limits rejected:\n%v", err)
			}
		})
	}
}

func TestBatchInvalid(t *testing.T) {
	type want struct {
		path string
		code validate.Code
	}
	cases := []struct {
		name    string
		fixture string
		mutate  func(b map[string]any)
		raw     []byte // used instead of fixture+mutate when set
		want    []want
		message string // substring expected in the first violation's message
	}{
		{name: "not JSON", raw: []byte(`{"environment": "production",`), want: []want{{"", validate.CodeMalformed}}, message: "Unable to parse JSON batch"},
		{name: "trailing data", raw: []byte(`{"environment": "production"} {}`), want: []want{{"", validate.CodeMalformed}}},
		{name: "empty body", raw: []byte(``), want: []want{{"", validate.CodeMalformed}}},
		{name: "array instead of object", raw: []byte(`[]`), want: []want{{"", validate.CodeMalformed}}},
		{
			name: "missing environment", fixture: "email_open.json",
			mutate:  func(b map[string]any) { delete(b, "environment") },
			want:    []want{{"environment", validate.CodeRequired}},
			message: `Required batch field "environment" is missing or empty.`,
		},
		{
			name: "environment not in enum", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["environment"] = "prod" },
			want:   []want{{"environment", validate.CodeEnum}},
		},
		{
			name: "environment wrong type", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["environment"] = 1 },
			want:   []want{{"environment", validate.CodeType}},
		},
		{
			name: "unknown batch field", fixture: "email_open.json",
			mutate:  func(b map[string]any) { b["user_id"] = "x" },
			want:    []want{{"user_id", validate.CodeUnknownField}},
			message: `Unknown batch field "user_id" is not allowed.`,
		},
		{
			name: "schema_version not an integer", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["schema_version"] = "2" },
			want:   []want{{"schema_version", validate.CodeType}},
		},
		{
			name: "fractional mpid", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["mpid"] = json.Number("1.5") },
			want:   []want{{"mpid", validate.CodeType}},
		},
		{
			name: "missing event_type", fixture: "email_open.json",
			mutate:  func(b map[string]any) { delete(event(b, 1), "event_type") },
			want:    []want{{"events[1].event_type", validate.CodeRequired}},
			message: `Required event field "event_type" is missing or empty.`,
		},
		{
			name: "empty event_type", fixture: "email_open.json",
			mutate: func(b map[string]any) { event(b, 0)["event_type"] = "" },
			want:   []want{{"events[0].event_type", validate.CodeRequired}},
		},
		{
			name: "unknown event_type", fixture: "email_open.json",
			mutate: func(b map[string]any) { event(b, 0)["event_type"] = "email_open" },
			want:   []want{{"events[0].event_type", validate.CodeEnum}},
		},
		{
			name: "missing data", fixture: "email_open.json",
			mutate: func(b map[string]any) { delete(event(b, 0), "data") },
			want:   []want{{"events[0].data", validate.CodeRequired}},
		},
		{
			name: "extra field on a custom event", fixture: "email_open.json",
			mutate: func(b map[string]any) { event(b, 0)["timestamp"] = 1 },
			want:   []want{{"events[0].timestamp", validate.CodeUnknownField}},
		},
		{
			name: "events not an array", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["events"] = map[string]any{} },
			want:   []want{{"events", validate.CodeType}},
		},
		{
			name: "event not an object", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["events"] = []any{"x"} },
			want:   []want{{"events[0]", validate.CodeType}},
		},
		{
			name: "missing event_name", fixture: "email_open.json",
			mutate:  func(b map[string]any) { delete(data(b, 0), "event_name") },
			want:    []want{{"events[0].data.event_name", validate.CodeRequired}},
			message: `Required event data field "event_name" is missing or empty.`,
		},
		{
			name: "null event_name", fixture: "email_open.json",
			mutate: func(b map[string]any) { data(b, 0)["event_name"] = nil },
			want:   []want{{"events[0].data.event_name", validate.CodeRequired}},
		},
		{
			name: "missing custom_event_type", fixture: "email_open.json",
			mutate: func(b map[string]any) { delete(data(b, 1), "custom_event_type") },
			want:   []want{{"events[1].data.custom_event_type", validate.CodeRequired}},
		},
		{
			name: "custom_event_type not in enum", fixture: "email_open.json",
			mutate: func(b map[string]any) { data(b, 0)["custom_event_type"] = "purchase" },
			want:   []want{{"events[0].data.custom_event_type", validate.CodeEnum}},
		},
		{
			name: "source_message_id not a UUID", fixture: "email_open.json",
			mutate:  func(b map[string]any) { data(b, 0)["source_message_id"] = "0c6a4c1e2b7f5e11a3d46f5e4d3c2b1a" },
			want:    []want{{"events[0].data.source_message_id", validate.CodeFormat}},
			message: `must be a UUID`,
		},
		{
			name: "timestamp as string", fixture: "email_open.json",
			mutate: func(b map[string]any) { data(b, 0)["timestamp_unixtime_ms"] = "1719500000000" },
			want:   []want{{"events[0].data.timestamp_unixtime_ms", validate.CodeType}},
		},
		{
			name: "custom attribute value is an object", fixture: "email_open.json",
			mutate: func(b map[string]any) {
				data(b, 0)["custom_attributes"].(map[string]any)["nested"] = map[string]any{"a": 1}
			},
			want: []want{{"events[0].data.custom_attributes.nested", validate.CodeType}},
		},
		{
			name: "custom attribute value is an array", fixture: "email_open.json",
			mutate: func(b map[string]any) {
				data(b, 0)["custom_attributes"].(map[string]any)["media urls"] = []any{"a"}
			},
			want: []want{{`events[0].data.custom_attributes["media urls"]`, validate.CodeType}},
		},
		{
			name: "too many custom attributes", fixture: "email_open.json",
			mutate: func(b map[string]any) {
				data(b, 1)["custom_attributes"] = attrs(validate.MaxCustomAttributes+1, "v")
			},
			want:    []want{{"events[1].data.custom_attributes", validate.CodeLimit}},
			message: "Event has 101 custom attributes; the limit is 100.",
		},
		{
			name: "custom attribute value too long", fixture: "email_open.json",
			mutate: func(b map[string]any) {
				data(b, 0)["custom_attributes"].(map[string]any)["url"] = strings.Repeat("é", validate.MaxValueLength+1)
			},
			want: []want{{"events[0].data.custom_attributes.url", validate.CodeLimit}},
		},
		{
			name: "custom attribute name too long", fixture: "email_open.json",
			mutate: func(b map[string]any) {
				data(b, 0)["custom_attributes"] = map[string]any{strings.Repeat("n", validate.MaxNameLength+1): "v"}
			},
			want: []want{{"events[0].data.custom_attributes." + strings.Repeat("n", validate.MaxNameLength+1), validate.CodeLimit}},
		},
		{
			name: "event name too long", fixture: "email_open.json",
			mutate: func(b map[string]any) { data(b, 0)["event_name"] = strings.Repeat("n", validate.MaxNameLength+1) },
			want:   []want{{"events[0].data.event_name", validate.CodeLimit}},
		},
		{
			name: "too many events", fixture: "uninstall.json",
			mutate: func(b map[string]any) {
				ev := event(b, 0)
				events := make([]any, validate.MaxEventsPerBatch+1)
				for i := range events {
					events[i] = ev
				}
				b["events"] = events
			},
			want: []want{{"events", validate.CodeLimit}},
		},
		{
			name: "batch too large", fixture: "uninstall.json",
			mutate: func(b map[string]any) {
				// 40 values of 4000 characters: every value is within its limit, the batch is not.
				b["user_attributes"] = attrs(40, strings.Repeat("x", 4000))
			},
			want: []want{{"", validate.CodeLimit}},
		},
		{
			name: "too many user attributes", fixture: "sms_delivery.json",
			mutate: func(b map[string]any) { b["user_attributes"] = attrs(validate.MaxUserAttributes+1, "v") },
			want:   []want{{"user_attributes", validate.CodeLimit}},
		},
		{
			name: "user attribute value too long", fixture: "sms_delivery.json",
			mutate: func(b map[string]any) {
				b["user_attributes"].(map[string]any)["$mobile"] = strings.Repeat("1", validate.MaxValueLength+1)
			},
			want: []want{{"user_attributes.$mobile", validate.CodeLimit}},
		},
		{
			name: "user attribute list entry too long", fixture: "sms_delivery.json",
			mutate: func(b map[string]any) {
				b["user_attributes"].(map[string]any)["favourite_colours"] = []any{"red", strings.Repeat("b", validate.MaxUserAttributeListEntryLength+1)}
			},
			want: []want{{"user_attributes.favourite_colours[1]", validate.CodeLimit}},
		},
		{
			name: "user attribute list too long", fixture: "sms_delivery.json",
			mutate: func(b map[string]any) {
				b["user_attributes"].(map[string]any)["favourite_colours"] = make([]any, validate.MaxUserAttributeListEntries+1)
			},
			want: []want{{"user_attributes.favourite_colours", validate.CodeLimit}},
		},
		{
			name: "user attribute value is an object", fixture: "sms_delivery.json",
			mutate: func(b map[string]any) { b["user_attributes"].(map[string]any)["vip"] = map[string]any{} },
			want:   []want{{"user_attributes.vip", validate.CodeType}},
		},
		{
			name: "unknown identity key", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["user_identities"].(map[string]any)["customerid"] = "u" },
			want:   []want{{"user_identities.customerid", validate.CodeUnknownField}},
		},
		{
			name: "identity is an object", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["user_identities"].(map[string]any)["email"] = map[string]any{} },
			want:   []want{{"user_identities.email", validate.CodeType}},
		},
		{
			name: "platform not in enum", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["device_info"].(map[string]any)["platform"] = "ios" },
			want:   []want{{"device_info.platform", validate.CodeEnum}},
		},
		{
			name: "ios_idfv not a UUID", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["device_info"].(map[string]any)["ios_idfv"] = "device_id" },
			want:   []want{{"device_info.ios_idfv", validate.CodeFormat}},
		},
		{
			name: "advertising ids not UUIDs", fixture: "email_open.json",
			mutate: func(b map[string]any) {
				di := b["device_info"].(map[string]any)
				di["ios_advertising_id"] = "idfa"
				di["android_advertising_id"] = "gaid"
				di["roku_advertising_id"] = 5
			},
			want: []want{
				{"device_info.android_advertising_id", validate.CodeFormat},
				{"device_info.ios_advertising_id", validate.CodeFormat},
				{"device_info.roku_advertising_id", validate.CodeType},
			},
		},
		{
			name: "limit_ad_tracking as string", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["device_info"].(map[string]any)["limit_ad_tracking"] = "true" },
			want:   []want{{"device_info.limit_ad_tracking", validate.CodeType}},
		},
		{
			name: "unknown device_info field", fixture: "email_open.json",
			mutate: func(b map[string]any) { b["device_info"].(map[string]any)["device_id"] = "x" },
			want:   []want{{"device_info.device_id", validate.CodeUnknownField}},
		},
		{
			name: "bad ip", fixture: "many_types.json",
			mutate: func(b map[string]any) { b["ip"] = "300.1.1.1" },
			want:   []want{{"ip", validate.CodeFormat}},
		},
		{
			name: "source_info without channel", fixture: "many_types.json",
			mutate: func(b map[string]any) { b["source_info"] = map[string]any{"partner": "braze"} },
			want:   []want{{"source_info.channel", validate.CodeRequired}},
		},
		{
			name: "session_start without session_id", fixture: "many_types.json",
			mutate: func(b map[string]any) { delete(data(b, 0), "session_id") },
			want:   []want{{"events[0].data.session_id", validate.CodeRequired}},
		},
		{
			name: "location without longitude", fixture: "many_types.json",
			mutate: func(b map[string]any) { delete(data(b, 2)["location"].(map[string]any), "longitude") },
			want:   []want{{"events[2].data.location.longitude", validate.CodeRequired}},
		},
		{
			name: "commerce custom_event_type not in commerce enum", fixture: "many_types.json",
			mutate: func(b map[string]any) { data(b, 4)["custom_event_type"] = "buy" },
			want:   []want{{"events[4].data.custom_event_type", validate.CodeEnum}},
		},
		{
			name: "user_identity_change with bad identity_type", fixture: "many_types.json",
			mutate: func(b map[string]any) { data(b, 6)["new"].(map[string]any)["identity_type"] = "phone" },
			want:   []want{{"events[6].data.new.identity_type", validate.CodeEnum}},
		},
		{
			name: "several violations in document order", fixture: "email_open.json",
			mutate: func(b map[string]any) {
				delete(b, "environment")
				b["device_info"].(map[string]any)["platform"] = "ios"
				data(b, 0)["source_message_id"] = "x"
				delete(event(b, 1), "event_type")
			},
			want: []want{
				{"environment", validate.CodeRequired},
				{"device_info.platform", validate.CodeEnum},
				{"events[0].data.source_message_id", validate.CodeFormat},
				{"events[1].event_type", validate.CodeRequired},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if raw == nil {
				raw = mutate(t, tc.fixture, tc.mutate)
			}
			err := validate.Batch(raw)
			var verr *validate.Error
			if !errors.As(err, &verr) {
				t.Fatalf("want *validate.Error, got %v", err)
			}
			if len(verr.Violations) != len(tc.want) {
				t.Fatalf("want %d violations, got %d:\n%v", len(tc.want), len(verr.Violations), err)
			}
			for i, w := range tc.want {
				got := verr.Violations[i]
				if got.Path != w.path || got.Code != w.code {
					t.Errorf("violation %d: want %s (%s), got %s (%s): %s", i, w.path, w.code, got.Path, got.Code, got.Message)
				}
			}
			if tc.message != "" && !strings.Contains(verr.Violations[0].Message, tc.message) {
				t.Errorf("message %q does not contain %q", verr.Violations[0].Message, tc.message)
			}
			if !strings.HasPrefix(err.Error(), verr.Violations[0].String()) {
				t.Errorf("Error() should start with the first violation, got %q", err.Error())
			}
		})
	}
}

func TestMessagesDoNotEchoValues(t *testing.T) {
	secret := "reader@example.com-secret"
	raw := mutate(t, "email_open.json", func(b map[string]any) {
		b["device_info"].(map[string]any)["ios_idfv"] = secret
		data(b, 0)["custom_attributes"].(map[string]any)["url"] = map[string]any{"v": secret}
	})
	err := validate.Batch(raw)
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error echoes a value: %v", err)
	}
}

func TestErrorFormatting(t *testing.T) {
	e := &validate.Error{Violations: []validate.Violation{
		{Path: "events[0].event_type", Code: validate.CodeRequired, Message: `Required event field "event_type" is missing or empty.`},
		{Path: "", Code: validate.CodeLimit, Message: "Batch is too large."},
	}, Omitted: 3}
	want := "events[0].event_type: Required event field \"event_type\" is missing or empty.\nBatch is too large.\n(3 more violations omitted)"
	if e.Error() != want {
		t.Fatalf("got %q, want %q", e.Error(), want)
	}
	if !e.Has(validate.CodeLimit) || e.Has(validate.CodeFormat) {
		t.Fatal("Has reports the wrong codes")
	}
}

func TestViolationsAreCapped(t *testing.T) {
	raw := mutate(t, "uninstall.json", func(b map[string]any) {
		events := make([]any, 150)
		for i := range events {
			events[i] = map[string]any{"data": map[string]any{}}
		}
		b["events"] = events
	})
	var verr *validate.Error
	if !errors.As(validate.Batch(raw), &verr) {
		t.Fatal("want *validate.Error")
	}
	// 150 missing event_type + 1 event count limit.
	if len(verr.Violations) != validate.MaxViolations || verr.Omitted != 51 {
		t.Fatalf("got %d violations, %d omitted", len(verr.Violations), verr.Omitted)
	}
}

func TestBulkRequest(t *testing.T) {
	valid := readFixture(t, "bulk.json")
	one := readFixture(t, "uninstall.json")
	repeat := func(n int) []byte {
		parts := make([][]byte, n)
		for i := range parts {
			parts[i] = one
		}
		return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
	}
	badSecond := mutateBulk(t, valid, 1, func(b map[string]any) { delete(b, "environment") })
	cases := []struct {
		name  string
		raw   []byte
		paths []string
		codes []validate.Code
	}{
		{name: "valid", raw: valid},
		{name: "100 batches", raw: repeat(validate.MaxBatchesPerRequest)},
		{name: "101 batches", raw: repeat(validate.MaxBatchesPerRequest + 1), paths: []string{""}, codes: []validate.Code{validate.CodeLimit}},
		{name: "object instead of array", raw: one, paths: []string{""}, codes: []validate.Code{validate.CodeMalformed}},
		{name: "not JSON", raw: []byte(`[{"environment":`), paths: []string{""}, codes: []validate.Code{validate.CodeMalformed}},
		{name: "empty array", raw: []byte(`[]`), paths: []string{""}, codes: []validate.Code{validate.CodeRequired}},
		{name: "bad batch gets index prefix", raw: badSecond, paths: []string{"[1].environment"}, codes: []validate.Code{validate.CodeRequired}},
		{name: "batch not an object", raw: []byte(`[1]`), paths: []string{"[0]"}, codes: []validate.Code{validate.CodeMalformed}},
		{
			name: "batch too large inside a bulk request", raw: []byte("[" + string(batchOfSize(t, validate.MaxBatchBytes+1)) + "]"),
			paths: []string{"[0]"}, codes: []validate.Code{validate.CodeLimit},
		},
		{
			name: "request too large", raw: bulkOfSize(t, validate.MaxRequestBytes),
			paths: []string{""}, codes: []validate.Code{validate.CodeLimit},
		},
		{name: "request just under the limit", raw: bulkOfSize(t, validate.MaxRequestBytes-1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validate.BulkRequest(tc.raw)
			if tc.paths == nil {
				if err != nil {
					t.Fatalf("valid bulk request rejected:\n%v", err)
				}
				return
			}
			var verr *validate.Error
			if !errors.As(err, &verr) {
				t.Fatalf("want *validate.Error, got %v", err)
			}
			if len(verr.Violations) != len(tc.paths) {
				t.Fatalf("want %d violations, got:\n%v", len(tc.paths), err)
			}
			for i := range tc.paths {
				if v := verr.Violations[i]; v.Path != tc.paths[i] || v.Code != tc.codes[i] {
					t.Errorf("violation %d: want %q (%s), got %q (%s)", i, tc.paths[i], tc.codes[i], v.Path, v.Code)
				}
			}
		})
	}
}

// batchOfSize builds a valid batch of exactly size bytes by spreading padding over
// 40 user attributes, so no single value breaks the value length limit.
func batchOfSize(t testing.TB, size int) []byte {
	t.Helper()
	const n = 40
	build := func(pad int) []byte {
		var buf bytes.Buffer
		buf.WriteString(`{"environment":"production","user_attributes":{`)
		for a := 0; a < n; a++ {
			chunk := pad / n
			if a == 0 {
				chunk += pad % n
			}
			if a > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `"a%d":"%s"`, a, strings.Repeat("x", chunk))
		}
		buf.WriteString("}}")
		return buf.Bytes()
	}
	raw := build(size - len(build(0)))
	if len(raw) != size {
		t.Fatalf("built %d bytes, want %d", len(raw), size)
	}
	return raw
}

// bulkOfSize builds a valid bulk request of exactly size bytes out of three
// batches of about a third each.
func bulkOfSize(t testing.TB, size int) []byte {
	t.Helper()
	inner := size - 4 // "[", two ",", "]"
	first := inner - 2*(inner/3)
	parts := [][]byte{batchOfSize(t, first), batchOfSize(t, inner/3), batchOfSize(t, inner/3)}
	return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
}

func mutateBulk(t testing.TB, raw []byte, index int, fn func(b map[string]any)) []byte {
	t.Helper()
	var batches []map[string]any
	if err := json.Unmarshal(raw, &batches); err != nil {
		t.Fatal(err)
	}
	fn(batches[index])
	out, err := json.Marshal(batches)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIsUUID(t *testing.T) {
	cases := map[string]bool{
		"3f1c9a52-7d4b-4e8a-b6c1-2a9d8e7f6b50":   true,
		"5E9C2B8A-1F3D-4C6E-8A7B-9D0E1F2A3B4C":   true,
		"00000000-0000-0000-0000-000000000000":   true,
		"3f1c9a52-7d4b-4e8a-b6c1-2a9d8e7f6b5":    false,
		"3f1c9a527d4b4e8ab6c12a9d8e7f6b50":       false,
		"{3f1c9a52-7d4b-4e8a-b6c1-2a9d8e7f6b50}": false,
		"3f1c9a52-7d4b-4e8a-b6c1-2a9d8e7f6b5g":   false,
		"3f1c9a52_7d4b-4e8a-b6c1-2a9d8e7f6b50":   false,
		"":                                       false,
	}
	for s, want := range cases {
		if got := validate.IsUUID(s); got != want {
			t.Errorf("IsUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func BenchmarkBatch(b *testing.B) {
	raw := readFixture(b, "email_open.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := validate.Batch(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBulkRequest(b *testing.B) {
	raw := readFixture(b, "bulk.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := validate.BulkRequest(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzBatch checks that no input makes the validator panic and that every
// rejection is a *validate.Error with at least one violation.
func FuzzBatch(f *testing.F) {
	for _, name := range []string{"email_open.json", "sms_delivery.json", "uninstall.json", "many_types.json", "bulk.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"events":[{"event_type":"custom_event","data":null}],"user_attributes":{"a":[[]]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, fn := range []func([]byte) error{validate.Batch, validate.BulkRequest} {
			err := fn(raw)
			if err == nil {
				continue
			}
			var verr *validate.Error
			if !errors.As(err, &verr) || len(verr.Violations) == 0 {
				t.Fatalf("rejection without violations: %v", err)
			}
		}
	})
}
