package mparticle

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

// benchMix is a realistic mix: every catalog type, weighted the way a Braze
// export leans (email and push dominate), each event with its own id.
func benchMix(b *testing.B) []currents.Event {
	b.Helper()
	weights := map[string]int{
		"users.messages.email.Send": 8, "users.messages.email.Delivery": 8, "users.messages.email.Open": 6,
		"users.messages.email.Click": 2, "users.messages.pushnotification.Send": 6,
		"users.messages.pushnotification.Open": 2, "users.behaviors.CustomEvent": 4,
		"users.behaviors.app.SessionStart": 3, "users.behaviors.app.SessionEnd": 3,
		"users.messages.inappmessage.Impression": 2, "users.messages.contentcard.Impression": 2,
		"users.canvas.Entry": 2, "users.messages.sms.Delivery": 2,
	}
	var events []currents.Event
	for _, typ := range schemas.Names() {
		n := weights[typ]
		if n == 0 {
			n = 1
		}
		for i := 0; i < n; i++ {
			events = append(events, fixtureEvent(b, typ, map[string]any{"id": fixtureID(fmt.Sprint(typ, i))}))
		}
	}
	return events
}

// BenchmarkMap maps and encodes the realistic mix with the default options,
// reusing one output buffer as the processor does.
func BenchmarkMap(b *testing.B) {
	events := benchMix(b)
	m, err := New(Options{AppPlatforms: map[string]string{fxAppID: "ios"}})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 16<<10)
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		out, res, err := m.AppendBatch(buf[:0], events[i%len(events)])
		if err != nil || res.Dropped != "" {
			b.Fatal(err, res.Dropped)
		}
		bytes += int64(len(out))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/event")
	reportCPU(b, cpu)
}

// cpuTime is the CPU time the process has used. On a shared machine the
// wall clock per op also counts time spent waiting for a core; CPU time per
// event does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/event")
}

// BenchmarkMapParallel is BenchmarkMap from every core at once: the Mapper
// is shared, as processor threads share it.
func BenchmarkMapParallel(b *testing.B) {
	events := benchMix(b)
	m, err := New(Options{AppPlatforms: map[string]string{fxAppID: "ios"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 16<<10)
		i := 0
		for pb.Next() {
			if _, _, err := m.AppendBatch(buf[:0], events[i%len(events)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMapByType maps one type at a time, to find the expensive ones.
func BenchmarkMapByType(b *testing.B) {
	m, err := New(Options{AppPlatforms: map[string]string{fxAppID: "ios"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, typ := range []string{
		"users.messages.email.Open", "users.messages.pushnotification.Send",
		"users.behaviors.CustomEvent", "users.behaviors.Purchase", "users.behaviors.app.SessionEnd",
		"users.messages.sms.Delivery",
	} {
		b.Run(typ, func(b *testing.B) {
			ev := fixtureEvent(b, typ, nil)
			buf := make([]byte, 0, 16<<10)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, _, err := m.AppendBatch(buf[:0], ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMapHashing maps with the hash option on the email identity and a
// few attributes, which costs a SHA-256 and an allocation per hashed value.
func BenchmarkMapHashing(b *testing.B) {
	m, err := New(Options{Attributes: AttributeOptions{Hash: []string{"email_address", "external_user_id", "url"}}})
	if err != nil {
		b.Fatal(err)
	}
	ev := fixtureEvent(b, "users.messages.email.Click", nil)
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := m.AppendBatch(buf[:0], ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	for _, c := range []struct{ name, s string }{
		{"ascii", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"},
		{"escapes", "line one\nline \"two\"\t\\ end"},
		{"utf8", "Grüße aus Köln — 東京からこんにちは"},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(len(c.s)))
			for i := 0; i < b.N; i++ {
				buf = appendString(buf[:0], c.s)
			}
		})
	}
}
