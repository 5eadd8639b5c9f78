package export

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

var day1 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// tree writes a generated export into a fresh in-memory bucket.
func tree(t testing.TB, cfg gen.Config) (*blob.Bucket, gen.Manifest) {
	t.Helper()
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	t.Cleanup(func() { _ = b.Close() })
	m, err := gen.Generate(cfg, func(key string, body []byte) error {
		return b.WriteAll(ctx, key, body, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	return b, m
}

// walkAll runs one walk and returns the objects in the order given, with
// the prefix of every list request.
func walkAll(t testing.TB, l *Lister, r Range) ([]Object, []string) {
	t.Helper()
	var lists []string
	l.OnList = func(p string) { lists = append(lists, p) }
	var got []Object
	if err := l.Walk(context.Background(), r, func(o Object) error {
		got = append(got, o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got, lists
}

func names(objs []Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Name
	}
	sort.Strings(out)
	return out
}

func manifestKeys(m gen.Manifest, keep func(gen.Object) bool) []string {
	var out []string
	for _, o := range m.Objects {
		if keep == nil || keep(o) {
			out = append(out, o.Key)
		}
	}
	sort.Strings(out)
	return out
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the test wants no objects; it proves nothing", what)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: got %d objects, want %d\ngot:  %v\nwant: %v", what, len(got), len(want), got, want)
	}
}

func hourOfKey(key string) time.Time { return currents.HourFromKey(key) }

func TestWalkFindsEveryObjectOldestHourFirst(t *testing.T) {
	for _, layout := range []gen.Layout{gen.LayoutSchemaID, gen.LayoutVersion, gen.Layout2017} {
		t.Run(string(layout), func(t *testing.T) {
			b, m := tree(t, gen.Config{Events: 3000, Hours: 5, FileEvents: 40, Layout: layout, Seed: 1,
				EventTypes: []string{"users.messages.email.Open", "users.messages.email.Send", "users.canvas.Entry"}})
			l := &Lister{Bucket: blob.PrefixedBucket(b, "currents/"), Prefix: "currents/"}
			got, _ := walkAll(t, l, Range{})
			sameList(t, "unbounded walk", names(got), manifestKeys(m, nil))
			for i, o := range got {
				if o.Hour.IsZero() || !o.Hour.Equal(hourOfKey(o.Name)) {
					t.Fatalf("object %s: hour %v", o.Name, o.Hour)
				}
				if o.EventType == "" || !strings.Contains(o.Name, "event_type="+o.EventType+"/") {
					t.Fatalf("object %s: event type %q", o.Name, o.EventType)
				}
				if o.Name != "currents/"+o.Key || o.Size <= 0 {
					t.Fatalf("object %+v: name, key or size wrong", o)
				}
				if i > 0 {
					p := got[i-1]
					if o.Hour.Before(p.Hour) {
						t.Fatalf("object %s (hour %v) after %s (hour %v): not oldest first", o.Name, o.Hour, p.Name, p.Hour)
					}
				}
			}
		})
	}
}

func TestWalkTypeFilterPrunesTypeFolders(t *testing.T) {
	b, m := tree(t, gen.Config{Events: 2000, Hours: 2, FileEvents: 50, Seed: 2})
	types, err := currents.NewTypeFilter([]string{"users.messages.email.*", "users.canvas.Entry"}, []string{"users.messages.email.Open"})
	if err != nil {
		t.Fatal(err)
	}
	l := &Lister{Bucket: blob.PrefixedBucket(b, "currents/"), Prefix: "currents/", Types: types}
	got, lists := walkAll(t, l, Range{})
	sameList(t, "type filter", names(got), manifestKeys(m, func(o gen.Object) bool {
		return o.EventType != "users.messages.email.Open" &&
			(strings.HasPrefix(o.EventType, "users.messages.email.") || o.EventType == "users.canvas.Entry")
	}))
	for _, p := range lists {
		if t0 := eventTypeOfPrefix(p); t0 != "" && !types.Match(t0) {
			t.Errorf("listed %q, a folder of an excluded type", p)
		}
	}
}

func eventTypeOfPrefix(p string) string {
	i := strings.Index(p, "event_type=")
	if i < 0 {
		return ""
	}
	rest := p[i+len("event_type="):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// A replay of one type over one day of a three-day, many-type export lists
// the prefix, the dataexport folder, that type's date= folders of that day
// (one request, narrowed by name) and the day's 24 hour folders: nothing else.
func TestWalkOneTypeOneDayListsOnlyItsFolders(t *testing.T) {
	b, m := tree(t, gen.Config{Events: 8000, Hours: 72, Start: day1, Seed: 3,
		EventTypes: []string{"users.messages.email.Open", "users.messages.email.Send", "users.messages.pushnotification.Send", "users.canvas.Entry"}})
	types, _ := currents.NewTypeFilter([]string{"users.messages.email.Open"}, nil)
	l := &Lister{Bucket: blob.PrefixedBucket(b, "currents/"), Prefix: "currents/", Types: types}
	r := Range{Since: day1.Add(24 * time.Hour), Until: day1.Add(48 * time.Hour)}
	got, lists := walkAll(t, l, r)
	sameList(t, "one type, one day", names(got), manifestKeys(m, func(o gen.Object) bool {
		h := hourOfKey(o.Key)
		return o.EventType == "users.messages.email.Open" && !h.Before(r.Since) && h.Before(r.Until)
	}))
	if len(lists) != 1+1+1+24 {
		t.Errorf("%d list requests, want 27 (prefix, dataexport folder, date folders, 24 hours): %q", len(lists), lists)
	}
	for _, p := range lists {
		switch {
		case p == "", strings.Count(p, "/") == 1 && strings.HasPrefix(p, "dataexport."):
		case strings.Contains(p, "/event_type=users.messages.email.Open/date=2026-11-02-"):
		default:
			t.Errorf("listed %q: outside the type and day", p)
		}
	}
}

func TestWalkRangeBoundsAreHourOverlaps(t *testing.T) {
	b, m := tree(t, gen.Config{Events: 600, Hours: 6, Start: day1, Seed: 4,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry"}})
	l := &Lister{Bucket: blob.PrefixedBucket(b, "currents/"), Prefix: "currents/"}
	// 01:30 to 03:00 overlaps the hours 01 and 02.
	r := Range{Since: day1.Add(90 * time.Minute), Until: day1.Add(3 * time.Hour)}
	got, _ := walkAll(t, l, r)
	sameList(t, "range", names(got), manifestKeys(m, func(o gen.Object) bool {
		h := hourOfKey(o.Key)
		return h.Equal(day1.Add(time.Hour)) || h.Equal(day1.Add(2*time.Hour))
	}))
	// Only a lower bound: everything from 04:00 on.
	got, _ = walkAll(t, l, Range{Since: day1.Add(4 * time.Hour)})
	sameList(t, "since only", names(got), manifestKeys(m, func(o gen.Object) bool {
		return !hourOfKey(o.Key).Before(day1.Add(4 * time.Hour))
	}))
}

func TestWalkShardsSplitObjectsExactlyOnce(t *testing.T) {
	b, m := tree(t, gen.Config{Events: 3000, Hours: 4, FileEvents: 20, Seed: 5,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry", "users.messages.sms.Send"}})
	seen := map[string]int{}
	var all []string
	for i := 0; i < 3; i++ {
		l := &Lister{Bucket: blob.PrefixedBucket(b, "currents/"), Prefix: "currents/", Shard: Shard{Index: i, Count: 3}}
		got, _ := walkAll(t, l, Range{})
		if len(got) == 0 {
			t.Fatalf("shard %d of 3 got no object of %d", i, len(m.Objects))
		}
		for _, o := range got {
			seen[o.Name]++
			all = append(all, o.Name)
			if ShardOf(o.Name, 3) != i {
				t.Fatalf("shard %d got %s of shard %d", i, o.Name, ShardOf(o.Name, 3))
			}
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s read by %d shards", k, n)
		}
	}
	sort.Strings(all)
	sameList(t, "union of shards", all, manifestKeys(m, nil))
}

// A url at the bucket root finds the export under its `currents/` folder,
// ignores files that are not Avro, and does not walk deep unrelated trees.
func TestWalkFromBucketRoot(t *testing.T) {
	b, m := tree(t, gen.Config{Events: 200, Seed: 6, EventTypes: []string{"users.messages.email.Open"}})
	ctx := context.Background()
	for _, k := range []string{
		"currents/dataexport.prod-03.S3.integration.5e1e4d2c9b8a7f6e5d4c3b2a/event_type=users.messages.email.Open/date=2026-11-01-00/x.avro.error.json",
		"unrelated/a/b/c/deep.avro",
		"currents/_SUCCESS",
	} {
		if err := b.WriteAll(ctx, k, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	l := &Lister{Bucket: b}
	got, lists := walkAll(t, l, Range{})
	sameList(t, "from root", names(got), manifestKeys(m, nil))
	for _, p := range lists {
		if strings.HasPrefix(p, "unrelated/a/b") {
			t.Errorf("listed %q: deeper than %d unknown levels", p, maxUnknownDepth)
		}
	}
}

// Objects outside date= folders are read when no range is set and skipped
// when one is, as their hour is unknown.
func TestWalkLooseObjects(t *testing.T) {
	b, m := tree(t, gen.Config{Events: 100, Seed: 7, EventTypes: []string{"users.messages.email.Open"}})
	ctx := context.Background()
	loose := "dataexport.S3.integration.abc/event_type=users.messages.email.Open/dataexport.S3.integration.abc+0+1.avro"
	if err := b.WriteAll(ctx, "currents/"+loose, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	l := &Lister{Bucket: blob.PrefixedBucket(b, "currents/"), Prefix: "currents/"}
	got, _ := walkAll(t, l, Range{})
	want := append(manifestKeys(m, nil), "currents/"+loose)
	sort.Strings(want)
	sameList(t, "loose, unbounded", names(got), want)
	got, _ = walkAll(t, l, Range{Since: day1})
	sameList(t, "loose, bounded", names(got), manifestKeys(m, nil))
}

func TestWalkStopsOnCallbackError(t *testing.T) {
	b, _ := tree(t, gen.Config{Events: 500, Hours: 3, Seed: 8})
	l := &Lister{Bucket: blob.PrefixedBucket(b, "currents/"), Prefix: "currents/"}
	stop := errors.New("stop")
	n := 0
	err := l.Walk(context.Background(), Range{}, func(Object) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("walk returned %v after %d objects, want the callback's error after 1", err, n)
	}
	if err := l.Walk(context.Background(), Range{Since: day1.Add(time.Hour), Until: day1}, func(Object) error { return nil }); err == nil {
		t.Fatal("an empty range walked without error")
	}
}

func TestParseBound(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "", want: time.Time{}},
		{in: "2026-11-01-13", want: time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)},
		{in: "2026-11-01", want: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-11-01T13:45:00+02:00", want: time.Date(2026, 11, 1, 11, 45, 0, 0, time.UTC)},
		{in: "2026-11-01T13:45:00.5Z", want: time.Date(2026, 11, 1, 13, 45, 0, 5e8, time.UTC)},
		{in: "72h", want: now.Add(-72 * time.Hour)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: " 2026-11-01-13 ", want: time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)},
		{in: "-1h", bad: true},
		{in: "yesterday", bad: true},
		{in: "2026-13-01-00", bad: true},
		{in: "2026/11/01", bad: true},
	} {
		got, err := ParseBound(c.in, now)
		if c.bad {
			if err == nil {
				t.Errorf("ParseBound(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseBound(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestRange(t *testing.T) {
	h := func(n int) time.Time { return day1.Add(time.Duration(n) * time.Hour) }
	r := Range{Since: h(2).Add(30 * time.Minute), Until: h(5)}
	for n, want := range map[int]bool{1: false, 2: true, 3: true, 4: true, 5: false, 6: false} {
		if got := r.ContainsHour(h(n)); got != want {
			t.Errorf("hour %d in %v: %v, want %v", n, r, got, want)
		}
	}
	if !(Range{}).ContainsHour(h(0)) || (Range{}).Bounded() || !r.Bounded() {
		t.Error("open range wrong")
	}
	for _, c := range []struct {
		r       Range
		ceiling time.Time
		want    string
	}{
		{Range{Since: h(0), Until: h(24)}, time.Time{}, "2026-11-01-"},
		{Range{Since: h(3), Until: h(4)}, time.Time{}, "2026-11-01-03"},
		{Range{Since: h(0), Until: h(24 * 9)}, time.Time{}, "2026-11-0"},
		{Range{Since: h(0), Until: h(24 * 40)}, time.Time{}, "2026-1"},
		{Range{Since: h(5)}, h(30), "2026-11-0"},
		{Range{Until: h(5)}, h(30), ""},
	} {
		if got := c.r.datePrefix(c.ceiling); got != c.want {
			t.Errorf("datePrefix of %v: %q, want %q", c.r, got, c.want)
		}
	}
	if err := (Range{Since: h(2), Until: h(2)}).Validate(); err == nil {
		t.Error("an empty range validated")
	}
}

func TestShard(t *testing.T) {
	for _, c := range []struct {
		s  Shard
		ok bool
	}{{Shard{0, 1}, true}, {Shard{1, 2}, true}, {Shard{2, 2}, false}, {Shard{-1, 2}, false}, {Shard{0, 0}, false}} {
		if err := c.s.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%+v) = %v", c.s, err)
		}
	}
	// Shards are stable (a restart keeps its objects) and spread evenly.
	counts := make([]int, 4)
	for i := 0; i < 4000; i++ {
		k := fmt.Sprintf("currents/dataexport.prod-01.S3.integration.x/event_type=t/date=2026-11-01-00/1/us/dataexport.prod-01.S3.integration.x+0+%d.avro", i)
		counts[ShardOf(k, 4)]++
		// The README documents FNV-1a of the key: instances of other
		// versions, or other tools, must agree on who owns an object.
		h := fnv.New32a()
		h.Write([]byte(k))
		if ShardOf(k, 4) != int(h.Sum32()%4) || !(Shard{}).Owns(k) {
			t.Fatalf("shard of %s is %d, FNV-1a says %d", k, ShardOf(k, 4), h.Sum32()%4)
		}
	}
	for i, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("shard %d of 4 got %d of 4000 keys: not spread", i, n)
		}
	}
	if fnv1a64("a") != 0xaf63dc4c8601ec8c {
		t.Errorf("fnv1a64(\"a\") = %x, want the FNV-1a test vector af63dc4c8601ec8c", fnv1a64("a"))
	}
}
