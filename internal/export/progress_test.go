package export

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

func TestTallyCountsByHourAndType(t *testing.T) {
	h0, h1, h2 := day1, day1.Add(time.Hour), day1.Add(2*time.Hour)
	done := &Checkpoint{Status: StatusCompleted}
	failed := &Checkpoint{Status: StatusFailed, Class: "bad sync marker", Error: "boom"}
	var tl Tally
	obj := func(name string, h time.Time, typ string) Object {
		return Object{Name: name, Hour: h, EventType: typ}
	}
	tl.Add(obj("a", h1, "email.Open"), done, false)
	tl.Add(obj("b", h1, "email.Open"), failed, true)
	tl.Add(obj("c", h1, "email.Open"), nil, false)
	tl.Add(obj("d", h1, "email.Click"), done, false)
	tl.Add(obj("e", h2, "email.Open"), nil, true) // a record left after its checkpoint went
	tl.Add(obj("f", h0, "email.Open"), done, false)
	tl.Add(obj("g", time.Time{}, ""), nil, false) // outside any date= folder
	tl.Add(obj("h", h2, "email.Open"), failed, false)
	p := tl.Progress()

	want := []Row{
		{EventType: "", Counts: Counts{Objects: 1, Pending: 1}},
		{Hour: h0, EventType: "email.Open", Counts: Counts{Objects: 1, Completed: 1}},
		{Hour: h1, EventType: "email.Click", Counts: Counts{Objects: 1, Completed: 1}},
		{Hour: h1, EventType: "email.Open", Counts: Counts{Objects: 3, Completed: 1, Failed: 1, Quarantined: 1, Pending: 1}},
		{Hour: h2, EventType: "email.Open", Counts: Counts{Objects: 2, Failed: 1, Quarantined: 1, Pending: 1}},
	}
	if !reflect.DeepEqual(p.Rows, want) {
		t.Fatalf("rows:\n got %+v\nwant %+v", p.Rows, want)
	}
	if wantTotal := (Counts{Objects: 8, Completed: 3, Failed: 2, Quarantined: 2, Pending: 3}); p.Total != wantTotal {
		t.Fatalf("total %+v, want %+v", p.Total, wantTotal)
	}
	if !p.OldestPending.Equal(h1) {
		t.Fatalf("oldest pending hour %v, want %v (the undated object has no hour)", p.OldestPending, h1)
	}
	if len(p.Failed) != 2 || p.Failed[0].Name != "b" || !p.Failed[0].Quarantined || p.Failed[1].Name != "h" || p.Failed[1].Quarantined ||
		p.Failed[0].Checkpoint.Class != "bad sync marker" {
		t.Fatalf("failed %+v", p.Failed)
	}

	var empty Tally
	if p := empty.Progress(); len(p.Rows) != 0 || p.Total != (Counts{}) || !p.OldestPending.IsZero() {
		t.Fatalf("empty tally: %+v", p)
	}
}

// Survey counts what the lister selects (range, types), with records looked
// up by full key.
func TestSurveyOverAnExport(t *testing.T) {
	b, m := tree(t, gen.Config{Events: 600, Hours: 3, FileEvents: 40, Seed: 7, Start: day1,
		EventTypes: []string{"users.messages.email.Open", "users.messages.email.Send"}})
	l := &Lister{Bucket: blob.PrefixedBucket(b, "currents/"), Prefix: "currents/"}
	r := Range{Since: day1.Add(time.Hour)} // leaves out the first hour
	cps := map[string]*Checkpoint{}
	quarantined := map[string]bool{}
	var want Counts
	for i, o := range m.Objects {
		if !r.ContainsHour(hourOfKey(o.Key)) {
			cps[o.Key] = &Checkpoint{Status: StatusFailed} // out of range: never counted
			continue
		}
		want.Objects++
		switch i % 3 {
		case 0:
			cps[o.Key] = &Checkpoint{Status: StatusCompleted}
			want.Completed++
		case 1:
			cps[o.Key] = &Checkpoint{Status: StatusFailed}
			quarantined[o.Key] = true
			want.Failed++
			want.Quarantined++
		default:
			want.Pending++
		}
	}
	if want.Pending == 0 || want.Failed == 0 {
		t.Fatal("the export is too small to prove anything")
	}
	lookup := func(_ context.Context, name string) (*Checkpoint, error) { return cps[name], nil }
	p, err := Survey(context.Background(), l, r, lookup, quarantined)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != want {
		t.Fatalf("total %+v, want %+v", p.Total, want)
	}
	if len(p.Failed) != want.Failed || p.OldestPending.Before(r.Since) {
		t.Fatalf("%d failed, oldest pending %v", len(p.Failed), p.OldestPending)
	}

	// Without a checkpoint cache, everything is pending.
	p, err = Survey(context.Background(), l, r, nil, nil)
	if err != nil || p.Total.Pending != want.Objects || p.Total.Objects != want.Objects {
		t.Fatalf("without a cache: %+v, %v", p.Total, err)
	}

	// A lookup error stops the survey and names the object.
	_, err = Survey(context.Background(), l, r, func(context.Context, string) (*Checkpoint, error) {
		return nil, fmt.Errorf("cache down")
	}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "object currents/") || !strings.HasSuffix(err.Error(), "cache down") {
		t.Fatalf("lookup error: %v", err)
	}
}
