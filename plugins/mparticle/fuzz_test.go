package mparticle

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/validate"
)

var (
	dropReasons  = map[DropReason]bool{DropNoIdentity: true, DropExcluded: true, DropUnknownType: true}
	errorReasons = map[string]bool{ReasonNoIdentity: true, ReasonUnknownType: true}
	feeds        = map[Feed]bool{FeedIOS: true, FeedAndroid: true, FeedWeb: true, FeedUnbound: true}
)

func init() {
	for _, r := range UnmappableReasons() {
		errorReasons[r] = true
	}
}

// checkOutcome asserts the property every mapping must have: the event is
// mapped to a batch that is valid JSON and valid for mParticle, or dropped
// with a known reason, or fails with a known reason naming the event; a
// drop or failure appends nothing. It returns the outcome for statistics.
func checkOutcome(t testing.TB, m *Mapper, ev currents.Event) string {
	t.Helper()
	prefix := []byte("[")
	out, res, err := m.AppendBatch(prefix, ev)
	switch {
	case err != nil:
		var me *Error
		if !errors.As(err, &me) || !errorReasons[me.Reason] || me.EventType != ev.Type || err.Error() == "" {
			t.Fatalf("error %v (%T) has no known reason or does not name the event", err, err)
		}
		if string(out) != "[" {
			t.Fatalf("failed mapping appended %q", out[1:])
		}
		return "error:" + me.Reason
	case res.Dropped != "":
		if string(out) != "[" {
			t.Fatalf("drop %q appended %q", res.Dropped, out[1:])
		}
		// An unmappable event is dropped with its error's reason, and the
		// error naming the event; the other drops have no error.
		if u := res.Unmapped; u != nil {
			if !errorReasons[u.Reason] || string(res.Dropped) != u.Reason || u.EventType != ev.Type || u.Error() == "" {
				t.Fatalf("drop %q with error %+v", res.Dropped, u)
			}
		} else if !dropReasons[res.Dropped] {
			t.Fatalf("drop %q has no known reason", res.Dropped)
		}
		return "dropped:" + string(res.Dropped)
	}
	// Identities are sent as Braze has them, never with U+FFFD for bad bytes.
	if !utf8.ValidString(res.User) {
		t.Fatalf("user key %q is not valid UTF-8", res.User)
	}
	raw := out[1:]
	if !json.Valid(raw) {
		t.Fatalf("invalid JSON: %q", raw)
	}
	var decoded map[string]any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatalf("undecodable batch: %v", err)
	}
	if err := validate.Batch(raw); err != nil {
		t.Fatalf("batch breaks mParticle's rules: %v\n%s", err, raw)
	}
	if len(raw) > MaxBatchBytes || !feeds[res.Feed] || !isUUID(res.SourceMessageID) || res.User == "" {
		t.Fatalf("result %+v for %d bytes", res, len(raw))
	}
	return "mapped"
}

var fuzzTypes = []string{
	"users.messages.email.Open", "users.behaviors.CustomEvent", "users.behaviors.Purchase",
	"users.behaviors.app.SessionEnd", "users.messages.sms.InboundReceive", "users.behaviors.Uninstall",
	"users.messages.pushnotification.Send", "users.messages.contentcard.Click",
}

// FuzzMap maps events whose values come from the fuzzer: any strings
// (invalid UTF-8, huge, empty), any times, any property text, any extra field,
// and fields of the wrong kind, under a few option sets.
func FuzzMap(f *testing.F) {
	f.Add(uint8(0), "id-1", "user-1", int64(eventTime), "ios", `{"a":1}`, "extra", "value", uint16(0))
	f.Add(uint8(1), fxDeviceID, "", int64(-1), "android", `{"a":{"b":[1,2]}}`, "", "\xff\xfe", uint16(0xffff))
	f.Add(uint8(2), "", "\x00", int64(1<<62), "roku", `{"n":1e400,"s":"\ud800"}`, strings.Repeat("k", 300), strings.Repeat("é", 5000), uint16(3))
	f.Add(uint8(3), "0b6f2c1d-9e8a-4b7c-8d6e-5f4a3b2c1d0e", "u", int64(0), "", "not json", "source_request_id", "x", uint16(0x5a5a))
	f.Add(uint8(7), "x", "y", int64(eventTime), "tvos", "", "card_id", "c", uint16(0x0f0f))
	var mappers []*Mapper
	for _, o := range fuzzOptionSets() {
		m, err := New(o)
		if err != nil {
			f.Fatal(err)
		}
		mappers = append(mappers, m)
	}
	f.Fuzz(func(t *testing.T, typeSel uint8, id, ext string, sec int64, platform, props, key, value string, kinds uint16) {
		typ := fuzzTypes[int(typeSel)%len(fuzzTypes)]
		if typeSel >= 200 {
			typ = key // an arbitrary, unknown type
		}
		// Each bit of kinds gives one role field a value of the wrong kind.
		pick := func(bit int, v currents.Value) currents.Value {
			if kinds&(1<<bit) != 0 {
				switch bit % 3 {
				case 0:
					return currents.IntValue(sec)
				case 1:
					return currents.BoolValue(true)
				default:
					return currents.Null
				}
			}
			return v
		}
		entries := []currents.Entry{
			{Name: "id", Value: pick(0, currents.StringValue(id))},
			{Name: "user_id", Value: pick(1, currents.StringValue(ext+"-braze"))},
			{Name: "external_user_id", Value: pick(2, currents.StringValue(ext))},
			{Name: "time", Value: pick(3, currents.IntValue(sec))},
			{Name: "platform", Value: pick(4, currents.StringValue(platform))},
			{Name: "properties", Value: pick(5, currents.StringValue(props))},
			{Name: "name", Value: pick(6, currents.StringValue(value))},
			{Name: "email_address", Value: pick(7, currents.StringValue(value))},
			{Name: "to_phone_number", Value: pick(8, currents.StringValue(value))},
			{Name: "device_id", Value: pick(9, currents.StringValue(id))},
			{Name: "ad_id", Value: pick(10, currents.StringValue(value))},
			{Name: "ad_id_type", Value: pick(11, currents.StringValue(platform))},
			{Name: "price", Value: pick(12, currents.FloatValue(float64(sec)/100))},
			{Name: "product_id", Value: pick(13, currents.StringValue(key))},
			{Name: "session_id", Value: pick(14, currents.StringValue(value))},
			{Name: "duration", Value: pick(15, currents.FloatValue(float64(sec%100000)))},
			{Name: "app_id", Value: currents.StringValue(fxAppID)},
		}
		if key != "" && roleOf(key) == roleNone {
			entries = append(entries, currents.Entry{Name: key, Value: currents.StringValue(value)},
				currents.Entry{Name: key + "_n", Value: currents.MapValue([]currents.Entry{{Name: value, Value: currents.StringValue(key)}})})
		}
		ev := currents.NewEvent(typ, entries)
		for _, m := range mappers {
			checkOutcome(t, m, ev)
		}
	})
}

// fuzzOptionSets are the option sets the property tests run under.
func fuzzOptionSets() []Options {
	return []Options{
		{Now: fixedNow},
		{Now: fixedNow, MissingIdentity: "user_id:other_id_2", DeviceIDMapping: DeviceIDByPlatform,
			AppPlatforms: map[string]string{fxAppID: "kindle"}, AppIDFeedTypes: []string{"*"},
			Attributes: AttributeOptions{Hash: []string{"email_address", "name", "url", "plan"}, Remove: []string{"campaign_name", "a"}}},
		{Now: fixedNow, MissingIdentity: MissingIdentityFail, UnknownTypes: UnknownFail, IdentityKey: "mobile_number", Unmappable: UnmappableFail},
		{Now: fixedNow, UnknownTypes: UnknownDrop, ExcludeEventTypes: []string{"users.messages.sms.*"}},
	}
}

// TestRandomEvents is the seeded property test: thousands of realistic
// events of every catalog type, damaged at random (nulls, wrong kinds, huge
// values, invalid UTF-8, missing fields, extra and nested fields, unknown
// types), each mapped under every option set.
func TestRandomEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 2026))
	var mappers []*Mapper
	for _, o := range fuzzOptionSets() {
		m, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		mappers = append(mappers, m)
	}
	types := schemas.Names()
	outcomes := map[string]int{}
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		typ := types[rng.IntN(len(types))]
		base := fixtureEvent(t, typ, nil)
		var entries []currents.Entry
		for j := 0; j < base.Len(); j++ {
			name, v := base.Field(j)
			if rng.IntN(8) == 0 {
				v, name = randomValue(rng, v), randomName(rng, name)
			}
			if name != "" {
				entries = append(entries, currents.Entry{Name: name, Value: v})
			}
		}
		for k := rng.IntN(3); k > 0; k-- {
			entries = append(entries, currents.Entry{Name: randomName(rng, "extra"), Value: randomValue(rng, currents.StringValue("x"))})
		}
		if rng.IntN(20) == 0 {
			typ = randomName(rng, typ)
		}
		ev := currents.NewEvent(typ, dedupEntries(entries))
		for _, m := range mappers {
			outcomes[checkOutcome(t, m, ev)]++
		}
	}
	t.Logf("outcomes: %v", outcomes)
	if outcomes["mapped"] < n || outcomes["dropped:no_identity"] == 0 || outcomes["error:wrong_kind"] == 0 ||
		outcomes["dropped:wrong_kind"] == 0 || outcomes["dropped:invalid_identity"] == 0 {
		t.Errorf("the random events do not exercise every outcome: %v", outcomes)
	}
}

// dedupEntries keeps the first entry of each name: a writer schema's field
// names are unique.
func dedupEntries(entries []currents.Entry) []currents.Entry {
	seen := map[string]bool{}
	out := entries[:0]
	for _, e := range entries {
		if !seen[e.Name] {
			seen[e.Name] = true
			out = append(out, e)
		}
	}
	return out
}

func randomValue(rng *rand.Rand, v currents.Value) currents.Value {
	switch rng.IntN(10) {
	case 0:
		return currents.Null
	case 1:
		return currents.IntValue(rng.Int64() - rng.Int64())
	case 2:
		return currents.BoolValue(rng.IntN(2) == 0)
	case 3:
		return currents.FloatValue(rng.NormFloat64() * 1e6)
	case 4:
		return currents.StringValue(strings.Repeat(randomText(rng, 8), 1+rng.IntN(1200)))
	case 5:
		return currents.StringValue(randomText(rng, rng.IntN(40)))
	case 6:
		return currents.ArrayValue([]currents.Value{currents.StringValue(randomText(rng, 5)), currents.Null})
	case 7:
		return currents.MapValue([]currents.Entry{{Name: randomText(rng, 4), Value: currents.StringValue(randomText(rng, 6))}})
	case 8:
		return currents.BytesValue(randomText(rng, 12))
	}
	return v
}

func randomName(rng *rand.Rand, name string) string {
	switch rng.IntN(8) {
	case 0:
		return "" // the field goes missing
	case 1:
		return randomText(rng, 1+rng.IntN(300))
	case 2:
		return name + "_" + randomText(rng, 3)
	}
	return name
}

// randomText mixes ASCII, JSON specials, multi-byte and invalid UTF-8.
func randomText(rng *rand.Rand, n int) string {
	pieces := []string{"a", "Z", "0", " ", `"`, `\`, "\n", "\x00", "\x1f", "é", "日", "😀", "\u2028", "\xff", "\xc3", "{", "}", ".", "-"}
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}
