package lograte

import (
	"slices"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTallyOneLinePerInterval(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	tl := &Tally{Every: time.Minute, Now: c.now}
	if n, due := tl.Add("android feed_paused", 3); !due || n != 3 {
		t.Fatalf("first: %d %v, want 3 at once", n, due)
	}
	for range 10 {
		c.t = c.t.Add(time.Second)
		if _, due := tl.Add("android feed_paused", 2); due {
			t.Fatal("a second line within the interval")
		}
	}
	if n, due := tl.Add("ios rejected", 1); !due || n != 1 {
		t.Fatalf("another key: %d %v, want its own line at once", n, due)
	}
	c.t = c.t.Add(time.Minute)
	if n, due := tl.Add("android feed_paused", 2); !due || n != 22 {
		t.Fatalf("after the interval: %d %v, want the 22 counted since the last line", n, due)
	}
	tl.Add("android feed_paused", 4)
	if got := tl.Flush(); !slices.Equal(got, []Count{{Key: "android feed_paused", N: 4}}) {
		t.Fatalf("flush: %v", got)
	}
	if got := tl.Flush(); len(got) != 0 {
		t.Fatalf("second flush: %v", got)
	}
}

func TestOutageBeginsAndEndsOnce(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	o := &Outage{Now: c.now}
	if ended, _, _ := o.OK(); ended {
		t.Fatal("an OK with no outage ended one")
	}
	if !o.Failed() {
		t.Fatal("the first failure did not begin an outage")
	}
	for range 5 {
		c.t = c.t.Add(8 * time.Second)
		if o.Failed() {
			t.Fatal("a later failure began another outage")
		}
	}
	ended, lasted, failed := o.OK()
	if !ended || lasted != 40*time.Second || failed != 6 {
		t.Fatalf("end: %v %v %d, want true 40s 6", ended, lasted, failed)
	}
	if ended, _, _ := o.OK(); ended {
		t.Fatal("ended twice")
	}
}
