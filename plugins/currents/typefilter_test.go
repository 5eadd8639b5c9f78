package currents_test

import (
	"strings"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

func TestTypeFilter(t *testing.T) {
	f, err := currents.NewTypeFilter([]string{"users.messages.email.*", "users.*.Send"}, []string{"*.Open", "users.messages.sms.*"})
	if err != nil {
		t.Fatal(err)
	}
	// path.Match's * matches any run of characters but "/", dots included:
	// "users.*.Send" selects the Send of every channel.
	for typ, want := range map[string]bool{
		"users.messages.email.Click":            true,
		"users.messages.email.Open":             false,
		"users.messages.pushnotification.Send":  true,
		"users.canvas.Entry":                    false,
		"users.messages.sms.Send":               false,
		"users.behaviors.subscription.Send":     true,
		"users.campaigns.Send":                  true,
		"users.messages.contentcard.Impression": false,
	} {
		if got := f.Match(typ); got != want {
			t.Errorf("Match(%q) = %v, want %v", typ, got, want)
		}
	}
	if !(currents.TypeFilter{}).Match("anything") || (currents.TypeFilter{}).Selective() || !f.Selective() {
		t.Error("zero filter must select everything")
	}
	for _, bad := range [][]string{{"users.[a"}, {""}} {
		if _, err := currents.NewTypeFilter(bad, nil); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
		if _, err := currents.NewTypeFilter(nil, bad); err == nil {
			t.Errorf("exclude pattern %q accepted", bad)
		}
	}
}

// Errors name the option at fault, for both callers' users.
func TestTypeFilterErrorsNameTheOption(t *testing.T) {
	if _, err := currents.NewTypeFilter([]string{"["}, nil); err == nil || !strings.HasPrefix(err.Error(), "event_types:") {
		t.Errorf("include error %v", err)
	}
	if _, err := currents.NewTypeFilter(nil, []string{""}); err == nil || !strings.HasPrefix(err.Error(), "exclude_event_types:") {
		t.Errorf("exclude error %v", err)
	}
	p, err := currents.ParseTypePatterns("app_id_feed_types", []string{"users.campaigns.*"})
	if err != nil || !p.MatchAny("users.campaigns.Conversion") || p.MatchAny("users.canvas.Entry") || (currents.TypePatterns{}).MatchAny("x") {
		t.Errorf("TypePatterns: %v %v", p, err)
	}
}

// Type matching runs once per event_type= folder and per object.
func BenchmarkTypeFilterMatch(b *testing.B) {
	f, err := currents.NewTypeFilter([]string{"users.messages.email.*", "users.messages.pushnotification.*"}, []string{"*.Abort"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !f.Match("users.messages.pushnotification.Send") {
			b.Fatal("no match")
		}
	}
}
