package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/validate"
)

// packItems runs the packer alone and returns its plans and item errors.
func packItems(t *testing.T, c *Client, items []Item) ([]*feedPlan, []error) {
	t.Helper()
	errs := make([]error, len(items))
	p := &packer{}
	return p.pack(c, items, errs), errs
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestPackMergesOneUsersItems(t *testing.T) {
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", nil)
	items := []Item{
		{Feed: "unbound", Batch: testBatch("alice", recentMS, eventID(1))},
		{Feed: "unbound", Batch: testBatch("bob", recentMS, eventID(2))},
		{Feed: "unbound", Batch: testBatch("alice", recentMS, eventID(3), eventID(4))},
		{Feed: "ios", Batch: testBatch("alice", recentMS, eventID(5))},
	}
	plans, errs := packItems(t, c, items)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if len(plans) != 2 || plans[0].feed.name != "unbound" || plans[1].feed.name != "ios" {
		t.Fatalf("want plans for unbound then ios, got %d plans", len(plans))
	}
	unbound := plans[0].requests
	if len(unbound) != 1 {
		t.Fatalf("unbound: %d requests, want 1", len(unbound))
	}
	if err := validate.BulkRequest(unbound[0].body); err != nil {
		t.Fatalf("unbound request is not valid: %v", err)
	}
	batches := decodeBulk(t, unbound[0].body)
	if len(batches) != 2 {
		t.Fatalf("unbound: %d batches, want 2 (alice, bob)", len(batches))
	}
	if got := batchEventIDs(t, batches[0]); !slices.Equal(got, []string{eventID(1), eventID(3), eventID(4)}) {
		t.Errorf("alice's batch carries %v", got)
	}
	if got := batchEventIDs(t, batches[1]); !slices.Equal(got, []string{eventID(2)}) {
		t.Errorf("bob's batch carries %v", got)
	}
	if got := unbound[0].batches[0].items; !slices.Equal(got, []int{0, 2}) {
		t.Errorf("alice's batch items = %v, want [0 2]", got)
	}
	for i, b := range batches {
		var srid string
		if err := json.Unmarshal(b["source_request_id"], &srid); err != nil || !uuidRE.MatchString(srid) {
			t.Errorf("batch %d source_request_id %s is not a UUIDv5", i, b["source_request_id"])
		}
		if srid != unbound[0].sourceRequestID(&unbound[0].batches[i]) {
			t.Errorf("batch %d: sourceRequestID() = %s, body has %s", i, unbound[0].sourceRequestID(&unbound[0].batches[i]), srid)
		}
		if string(b["environment"]) != `"production"` || string(b["schema_version"]) != "2" {
			t.Errorf("batch %d lost its envelope: %v", i, b)
		}
	}
}

func TestPackEnvelopeKeyOrderDoesNotMatter(t *testing.T) {
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", nil)
	a := `{"environment":"production","schema_version":2,"user_identities":{"customer_id":"u"},"events":[{"event_type":"uninstall","data":{"source_message_id":"` + eventID(1) + `"}}]}`
	b := `{"events":[{"event_type":"uninstall","data":{"source_message_id":"` + eventID(2) + `"}}], "schema_version":2 ,"user_identities":{"customer_id":"u"},"environment":"production"}`
	// A different user_identities value (even by whitespace) is another envelope.
	d := `{"environment":"production","schema_version":2,"user_identities":{ "customer_id":"u"},"events":[{"event_type":"uninstall","data":{"source_message_id":"` + eventID(3) + `"}}]}`
	plans, errs := packItems(t, c, []Item{{Feed: "web", Batch: []byte(a)}, {Feed: "web", Batch: []byte(b)}, {Feed: "web", Batch: []byte(d)}})
	if errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("errors: %v", errs)
	}
	r := plans[0].requests[0]
	if len(r.batches) != 2 || !slices.Equal(r.batches[0].items, []int{0, 1}) {
		t.Fatalf("want items 0 and 1 merged and 2 apart, got %+v", r.batches)
	}
	if err := validate.BulkRequest(r.body); err != nil {
		t.Fatalf("invalid request: %v", err)
	}
}

func TestSourceRequestIDIsDeterministic(t *testing.T) {
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", nil)
	srid := func(items ...Item) string {
		plans, errs := packItems(t, c, items)
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return plans[0].requests[0].sourceRequestID(&plans[0].requests[0].batches[0])
	}
	x := Item{Feed: "ios", Batch: testBatch("u", recentMS, eventID(1))}
	y := Item{Feed: "ios", Batch: testBatch("u", recentMS, eventID(2))}
	z := Item{Feed: "ios", Batch: testBatch("u", recentMS, eventID(3))}
	first := srid(x, y, z)
	if again := srid(x, y, z); again != first {
		t.Errorf("same items, different ids: %s, %s", first, again)
	}
	if reordered := srid(z, x, y); reordered != first {
		t.Errorf("same events in another order got another id: %s vs %s", reordered, first)
	}
	if other := srid(x, y); other == first {
		t.Errorf("different events got the same id %s", other)
	}
	// The mapped batch's own source_request_id is replaced, not kept.
	if strings.Contains(first, "mapped") {
		t.Errorf("source_request_id %s kept the item's own", first)
	}
}

func TestPackLimits(t *testing.T) {
	// 700 users, some with several events and large attributes, across
	// two feeds: every request and batch must stay within the limits.
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", nil)
	var items []Item
	id := 0
	for u := 0; u < 700; u++ {
		n := 1 + u%3
		ids := make([]string, n)
		for k := range ids {
			id++
			ids[k] = eventID(id)
		}
		b := testBatch(fmt.Sprintf("user-%d", u%250), recentMS, ids...)
		if u%7 == 0 {
			// Pad with a large (valid) attribute value to stress byte limits.
			b = bytes.Replace(b, []byte(`"Spring"`), []byte(`"`+strings.Repeat("x", 4000)+`"`), -1)
		}
		feed := "unbound"
		if u%2 == 0 {
			feed = "android"
		}
		items = append(items, Item{Feed: feed, Batch: b})
	}
	plans, errs := packItems(t, c, items)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	seen := map[string]int{}
	srids := map[string]bool{}
	for _, fp := range plans {
		for _, r := range fp.requests {
			if len(r.body) >= 256*1000 {
				t.Errorf("request of %d bytes", len(r.body))
			}
			if len(r.batches) > 100 {
				t.Errorf("request of %d batches", len(r.batches))
			}
			if err := validate.BulkRequest(r.body); err != nil {
				t.Errorf("invalid request: %v", err)
			}
			for bi, b := range decodeBulk(t, r.body) {
				raw, _ := json.Marshal(b)
				if len(raw) > 128*1000 {
					t.Errorf("batch of %d bytes", len(raw))
				}
				ids := batchEventIDs(t, b)
				if len(ids) > 100 {
					t.Errorf("batch of %d events", len(ids))
				}
				if r.batches[bi].events != len(ids) {
					t.Errorf("batchRef counts %d events, body has %d", r.batches[bi].events, len(ids))
				}
				for _, id := range ids {
					seen[id]++
				}
				srid := r.sourceRequestID(&r.batches[bi])
				if srids[srid] {
					t.Errorf("source_request_id %s used twice", srid)
				}
				srids[srid] = true
			}
		}
	}
	if len(seen) != id {
		t.Errorf("packed %d distinct events, want %d", len(seen), id)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("event %s packed %d times", k, n)
		}
	}
}

func TestPackSmallLimitsAreExact(t *testing.T) {
	// With a limit of 3 events per batch and 2 batches per request, 7
	// one-event items of one user make batches of 3,3,1 in requests of 2,1.
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", func(cfg *Config) {
		cfg.Limits = Limits{MaxEventsPerBatch: 3, MaxBatchesPerRequest: 2}
	})
	var items []Item
	for i := 1; i <= 7; i++ {
		items = append(items, Item{Feed: "ios", Batch: testBatch("u", recentMS, eventID(i))})
	}
	plans, _ := packItems(t, c, items)
	var shape [][]int
	for _, r := range plans[0].requests {
		var sizes []int
		for _, b := range r.batches {
			sizes = append(sizes, b.events)
		}
		shape = append(shape, sizes)
	}
	if fmt.Sprint(shape) != "[[3 3] [1]]" {
		t.Fatalf("requests/batches shape %v, want [[3 3] [1]]", shape)
	}
}

func TestPackByteLimitIsExact(t *testing.T) {
	// A batch limit of exactly the size of a two-item batch must hold two
	// items, and one byte less must not.
	item := func(n int) Item { return Item{Feed: "ios", Batch: testBatch("u", recentMS, eventID(n))} }
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", nil)
	plans, _ := packItems(t, c, []Item{item(1), item(2)})
	b := plans[0].requests[0].batches[0]
	size := b.end - b.start
	for _, tt := range []struct {
		limit, batches int
	}{{size, 1}, {size - 1, 2}} {
		c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", func(cfg *Config) {
			cfg.Limits = Limits{MaxBatchBytes: tt.limit}
		})
		plans, errs := packItems(t, c, []Item{item(1), item(2)})
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("limit %d: %v", tt.limit, errs)
		}
		r := plans[0].requests[0]
		if len(r.batches) != tt.batches {
			t.Errorf("limit %d: %d batches, want %d", tt.limit, len(r.batches), tt.batches)
		}
		for _, b := range r.batches {
			if b.end-b.start > tt.limit {
				t.Errorf("limit %d: batch of %d bytes", tt.limit, b.end-b.start)
			}
		}
	}
}

func TestPackRejectsItemsThatCanNeverBeSent(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = eventID(i)
	}
	huge := bytes.Replace(testBatch("u", recentMS, eventID(1)), []byte(`"Spring"`),
		[]byte(`"`+strings.Repeat("y", 130000)+`"`), 1)
	tests := []struct {
		name   string
		item   Item
		reason string
	}{
		{"unknown feed", Item{Feed: "tvos", Batch: testBatch("u", recentMS, eventID(1))}, ReasonFeedNotConfigured},
		{"empty feed", Item{Feed: "", Batch: testBatch("u", recentMS, eventID(1))}, ReasonFeedNotConfigured},
		{"not JSON", Item{Feed: "ios", Batch: []byte(`{"events":[`)}, ReasonInvalidBatch},
		{"not an object", Item{Feed: "ios", Batch: []byte(`[{"events":[]}]`)}, ReasonInvalidBatch},
		{"no events", Item{Feed: "ios", Batch: []byte(`{"environment":"production"}`)}, ReasonInvalidBatch},
		{"events not an array", Item{Feed: "ios", Batch: []byte(`{"events":{}}`)}, ReasonInvalidBatch},
		{"empty events", Item{Feed: "ios", Batch: []byte(`{"events":[]}`)}, ReasonInvalidBatch},
		{"event not an object", Item{Feed: "ios", Batch: []byte(`{"events":[1]}`)}, ReasonInvalidBatch},
		{"duplicate key", Item{Feed: "ios", Batch: []byte(`{"environment":"production","environment":"development","events":[{}]}`)}, ReasonInvalidBatch},
		{"duplicate events", Item{Feed: "ios", Batch: []byte(`{"events":[{}],"events":[{}]}`)}, ReasonInvalidBatch},
		{"101 events", Item{Feed: "ios", Batch: testBatch("u", recentMS, many...)}, ReasonTooLarge},
		{"130 KB", Item{Feed: "ios", Batch: huge}, ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, m, _ := newTestClient(t, "http://127.0.0.1:1/v2", nil)
			good := Item{Feed: "ios", Batch: testBatch("v", recentMS, eventID(999))}
			plans, errs := packItems(t, c, []Item{tt.item, good})
			if Reason(errs[0]) != tt.reason {
				t.Fatalf("reason %q (%v), want %q", Reason(errs[0]), errs[0], tt.reason)
			}
			if errs[1] != nil {
				t.Fatalf("the good item failed too: %v", errs[1])
			}
			if len(plans) != 1 || len(plans[0].requests[0].batches) != 1 {
				t.Fatalf("the bad item was planned for sending")
			}
			if n := m.get(func(m *recordingMetrics) int { return m.failed[tt.item.Feed+" "+tt.reason] }); n == 0 {
				t.Errorf("no EventsFailed count for %s", tt.reason)
			}
			var de *DeliveryError
			if !errors.As(errs[0], &de) || de.Temporary() || de.Message == "" {
				t.Errorf("want a permanent DeliveryError with a message, got %#v", errs[0])
			}
		})
	}
}

func TestPackHistoricalSplit(t *testing.T) {
	tests := []struct {
		name       string
		historical bool
		ts         []int64
		wantHist   bool
	}{
		{"recent", true, []int64{recentMS}, false},
		{"old", true, []int64{oldMS}, true},
		{"old but option off", false, []int64{oldMS}, false},
		{"mixed ages stay real-time", true, []int64{oldMS, recentMS}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", func(cfg *Config) { cfg.Historical = tt.historical })
			var items []Item
			for i, ts := range tt.ts {
				items = append(items, Item{Feed: "web", Batch: testBatch("u", ts, eventID(i))})
			}
			plans, _ := packItems(t, c, items)
			var hist []bool
			for _, r := range plans[0].requests {
				hist = append(hist, r.hist)
			}
			if tt.name == "mixed ages stay real-time" {
				// Two items: the old one goes historical alone.
				if fmt.Sprint(hist) != "[false true]" && fmt.Sprint(hist) != "[true false]" {
					t.Fatalf("requests historical = %v, want one of each", hist)
				}
				return
			}
			if len(hist) != 1 || hist[0] != tt.wantHist {
				t.Fatalf("requests historical = %v, want [%v]", hist, tt.wantHist)
			}
			if got := c.urlOf(plans[0].requests[0]); tt.wantHist != strings.HasSuffix(got, "/bulkevents/historical") {
				t.Errorf("url %s", got)
			}
		})
	}
	// One item holding an old and a recent event must stay real-time.
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", nil)
	mixed := bytes.Replace(testBatch("u", oldMS, eventID(1), eventID(2)),
		[]byte(fmt.Sprint(oldMS)), []byte(fmt.Sprint(recentMS)), 1)
	plans, _ := packItems(t, c, []Item{{Feed: "web", Batch: mixed}})
	if plans[0].requests[0].hist {
		t.Error("an item with a recent event went to the historical endpoint")
	}
}

func TestPackEnvironmentOverride(t *testing.T) {
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", func(cfg *Config) { cfg.Environment = "development" })
	without := []byte(`{"schema_version":2,"events":[{"event_type":"uninstall","data":{"source_message_id":"` + eventID(2) + `"}}]}`)
	plans, errs := packItems(t, c, []Item{{Feed: "ios", Batch: testBatch("u", recentMS, eventID(1))}, {Feed: "ios", Batch: without}})
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	for i, b := range decodeBulk(t, plans[0].requests[0].body) {
		if string(b["environment"]) != `"development"` {
			t.Errorf("batch %d environment = %s", i, b["environment"])
		}
	}
}

func TestParseMillis(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1717243200000", 1717243200000, true},
		{"-5", -5, true},
		{"1.7e12", 1700000000000, true},
		{"12.9", 12, true},
		{"", 0, false},
		{"-", 0, false},
		{`"1"`, 0, false},
		{"null", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseMillis([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseMillis(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
