package gen_test

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

func realistic(t *testing.T, cfg gen.Config) (gen.Manifest, map[string][]byte) {
	t.Helper()
	cfg.Profile = gen.ProfileRealistic
	cfg.KeepRecords = true
	bodies := map[string][]byte{}
	m, err := gen.Generate(cfg, func(key string, body []byte) error {
		if _, dup := bodies[key]; dup {
			t.Fatalf("key written twice: %s", key)
		}
		bodies[key] = body
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, bodies
}

// hourOf returns the date= hour of a key.
func hourOf(t *testing.T, key string) string {
	_, rest, ok := strings.Cut(key, "/date=")
	if !ok {
		t.Fatalf("no date= in %s", key)
	}
	return rest[:13]
}

func TestRealisticDeterministic(t *testing.T) {
	cfg := gen.Config{Events: 3000, Hours: 2, Seed: 11}
	a, _ := realistic(t, cfg)
	b, _ := realistic(t, cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with the same seed differ")
	}
	c, _ := realistic(t, gen.Config{Events: 3000, Hours: 2, Seed: 12})
	if reflect.DeepEqual(a.Objects[0].Records, c.Objects[0].Records) {
		t.Fatal("another seed wrote the same records")
	}
}

func TestRealisticProfile(t *testing.T) {
	const events = 20000
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	m, bodies := realistic(t, gen.Config{Events: events, Hours: 3, Seed: 5, Start: start})
	if len(bodies) != len(m.Objects) {
		t.Fatalf("%d objects written, %d in the manifest", len(bodies), len(m.Objects))
	}
	if got := m.Events() - m.Duplicates(); got != events {
		t.Fatalf("%d distinct events, want %d", got, events)
	}

	type seen struct {
		obj  int
		hour string
		rec  map[string]any
	}
	byID := map[string][]seen{}
	types := map[string]int{}
	for i, o := range m.Objects {
		if len(o.Records) != o.Events {
			t.Fatalf("%s: %d records, %d events", o.Key, len(o.Records), o.Events)
		}
		if !strings.Contains(o.Key, "/event_type="+o.EventType+"/") {
			t.Fatalf("%s: not under its type %s", o.Key, o.EventType)
		}
		h := hourOf(t, o.Key)
		if h < "2026-11-01-00" || h > "2026-11-01-02" {
			t.Fatalf("%s: hour outside the range", o.Key)
		}
		var last int64
		for _, r := range o.Records {
			types[o.EventType]++
			id := r["id"].(string)
			byID[id] = append(byID[id], seen{i, h, r})
			// Files are written in queue order: event times are about ordered.
			tm := unix(r["time"])
			if tm+7*3600 < last {
				t.Fatalf("%s: time %d far before the previous %d", o.Key, tm, last)
			}
			last = max(last, tm)
		}
	}
	for _, name := range schemas.Names() {
		if types[name] == 0 {
			t.Errorf("no event of %s", name)
		}
	}

	// Duplicates: about 1 %, each the same record in another object of the
	// same or the next hour, and counted in that object.
	dups := 0
	for id, s := range byID {
		switch len(s) {
		case 1:
			continue
		case 2:
		default:
			t.Fatalf("id %s written %d times", id, len(s))
		}
		dups++
		a, b := s[0], s[1]
		if m.Objects[a.obj].EventType != m.Objects[b.obj].EventType || a.obj == b.obj {
			t.Fatalf("id %s: copies in %s and %s", id, m.Objects[a.obj].Key, m.Objects[b.obj].Key)
		}
		if m.Objects[b.obj].Duplicates == 0 {
			t.Fatalf("id %s: the copy's object %s does not count duplicates", id, m.Objects[b.obj].Key)
		}
		if b.hour != a.hour && b.hour != nextHour(t, a.hour) {
			t.Fatalf("id %s: copy in %s, original in %s", id, b.hour, a.hour)
		}
		if !reflect.DeepEqual(a.rec, b.rec) {
			t.Fatalf("id %s: the copy differs:\n%v\n%v", id, a.rec, b.rec)
		}
	}
	if dups != m.Duplicates() {
		t.Fatalf("%d ids written twice, manifest says %d duplicates", dups, m.Duplicates())
	}
	if share := float64(dups) / events; share < 0.007 || share > 0.013 {
		t.Fatalf("duplicate share %.4f, want about 0.01", share)
	}

	// Message chains: an email Open follows its Send (same user, same
	// send_id) minutes later, usually in the same hour's files.
	sends := map[string]map[string]any{}
	for _, o := range m.Objects {
		if o.EventType == "users.messages.email.Send" {
			for _, r := range o.Records {
				if sid, _ := r["send_id"].(string); strings.HasPrefix(sid, "send-") {
					sends[r["user_id"].(string)+"/"+sid] = r
				}
			}
		}
	}
	var gaps []int64
	for _, o := range m.Objects {
		if o.EventType != "users.messages.email.Open" || o.Duplicates > 0 {
			continue
		}
		for _, r := range o.Records {
			sid, _ := r["send_id"].(string)
			s, ok := sends[r["user_id"].(string)+"/"+sid]
			if !ok {
				continue // its Send was queued before the range
			}
			gaps = append(gaps, unix(r["time"])-unix(s["time"]))
			if r["campaign_id"] != s["campaign_id"] || r["canvas_id"] != s["canvas_id"] || r["email_address"] != s["email_address"] {
				t.Fatalf("Open and Send of one chain disagree:\n%v\n%v", r, s)
			}
		}
	}
	if len(gaps) < 100 {
		t.Fatalf("only %d email Opens matched a Send", len(gaps))
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	if med := gaps[len(gaps)/2]; med < 60 || med > 30*60 || gaps[0] <= 0 {
		t.Fatalf("Send → Open: median %ds, least %ds; want minutes, always after", med, gaps[0])
	}

	// One user's events of one hour spread over several type files, and
	// activity is skewed: a few users have many events.
	perUser := map[string]int{}
	typesPerUserHour := map[string]map[string]bool{}
	for _, o := range m.Objects {
		h := hourOf(t, o.Key)
		for _, r := range o.Records {
			u := r["user_id"].(string)
			perUser[u]++
			k := u + "/" + h
			if typesPerUserHour[k] == nil {
				typesPerUserHour[k] = map[string]bool{}
			}
			typesPerUserHour[k][o.EventType] = true
		}
	}
	multi, inMulti, total := 0, 0, 0
	for k, ts := range typesPerUserHour {
		_ = k
		if len(ts) >= 3 {
			multi++
		}
		total++
		if len(ts) >= 2 {
			inMulti++
		}
	}
	if float64(inMulti)/float64(total) < 0.3 || multi == 0 {
		t.Fatalf("users' hours with events of ≥2 types: %d of %d (≥3: %d)", inMulti, total, multi)
	}
	counts := make([]int, 0, len(perUser))
	for _, n := range perUser {
		counts = append(counts, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	top := 0
	for _, n := range counts[:len(counts)/10] {
		top += n
	}
	if float64(top)/float64(m.Events()) < 0.3 || counts[0] < 10*counts[len(counts)/2] {
		t.Fatalf("the 10%% most active users have %d of %d events, the most active %d, the median %d: not skewed", top, m.Events(), counts[0], counts[len(counts)/2])
	}
	t.Logf("%d objects, %d events (%d duplicates), %d users; user-hours with ≥2 types %d of %d (≥3: %d); top 10%% users %.0f%% of events, most active %d, median %d; Send→Open median %ds",
		len(m.Objects), m.Events(), dups, len(perUser), inMulti, total, multi, 100*float64(top)/float64(m.Events()), counts[0], counts[len(counts)/2], gaps[len(gaps)/2])
}

func nextHour(t *testing.T, h string) string {
	tm, err := time.Parse("2006-01-02-15", h)
	if err != nil {
		t.Fatal(err)
	}
	return tm.Add(time.Hour).Format("2006-01-02-15")
}

func TestRealisticSelectedTypesAndOptions(t *testing.T) {
	// A few types only: every event is of those, the budget is still met.
	few := []string{"users.messages.email.Open", "users.behaviors.Uninstall"}
	m, _ := realistic(t, gen.Config{Events: 500, EventTypes: few, Seed: 2, DuplicateShare: -1})
	if m.Events() != 500 || m.Duplicates() != 0 {
		t.Fatalf("%d events, %d duplicates; want 500, 0", m.Events(), m.Duplicates())
	}
	for _, o := range m.Objects {
		if o.EventType != few[0] && o.EventType != few[1] {
			t.Fatalf("unselected type %s", o.EventType)
		}
	}
	// Corrupt files, other layouts and codecs work as in the default profile.
	m, _ = realistic(t, gen.Config{Events: 2000, Seed: 3, CorruptFiles: 2, Codec: "snappy", Layout: gen.Layout2017})
	bad := 0
	for _, o := range m.Objects {
		if o.Corrupt != "" {
			bad++
		}
	}
	if bad != 2 {
		t.Fatalf("%d corrupt objects, want 2", bad)
	}
	if _, err := gen.Generate(gen.Config{Profile: "bursty"}, func(string, []byte) error { return nil }); err == nil {
		t.Fatal("an unknown profile was accepted")
	}
}

// unix reads a `time` field, int or long depending on the schema.
func unix(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	}
	panic("time is not a number")
}
