package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"

	"github.com/currents-mparticle/currents-mparticle/internal/jsonstring"
)

// benchItems returns users×perUser one-event items, users interleaved as
// events of a Currents file are, with ids from first on.
func benchItems(feed string, first, users, perUser int, ts int64) []Item {
	items := make([]Item, 0, users*perUser)
	for k := 0; k < perUser; k++ {
		for u := 0; u < users; u++ {
			items = append(items, Item{Feed: feed, Batch: testBatch(fmt.Sprintf("user-%d", u), ts, eventID(first+len(items)))})
		}
	}
	return items
}

func BenchmarkPack(b *testing.B) {
	for _, bc := range []struct {
		name           string
		users, perUser int
	}{
		{"100users_1event", 100, 1},
		{"10users_10events", 10, 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, _, _ := newTestClient(b, "http://127.0.0.1:1/v2", nil)
			items := benchItems("ios", 0, bc.users, bc.perUser, recentMS)
			errs := make([]error, len(items))
			p := &packer{}
			bytes := 0
			for _, it := range items {
				bytes += len(it.Batch)
			}
			b.SetBytes(int64(bytes))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.pack(c, items, errs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/event")
		})
	}
}

func BenchmarkAppendJSONString(b *testing.B) {
	s := "https://s2s.example.test/v2/bulkevents/historical \"quoted\" é\n"
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for i := 0; i < b.N; i++ {
		buf = jsonstring.Append(buf[:0], s)
	}
}

// BenchmarkSendEmulator measures events per second into the emulator over
// loopback. Each Send carries 100 events of 10 users (10 each):
//
//   - unlimited: no rate limit, packed, one sender or four concurrent ones;
//   - 270bps_packed: mParticle's default 270 batches/s, events of a user
//     packed into shared batches (10 events per batch);
//   - 270bps_one_event_per_batch: the same limit with one event per batch,
//     the hosted connector's shape;
//   - _pace50: pacing from 50% of X-mp-rate-limit-percentage-used instead of
//     the default 80%.
//
// Under the limit the bucket starts full (one second of batches), so run
// with -benchtime of several seconds for steady-state figures.
func BenchmarkSendEmulator(b *testing.B) {
	for _, bc := range []struct {
		name    string
		rate    float64
		perBat  int // events per batch limit; 0 keeps the default
		senders int
	}{
		{"unlimited_packed", -1, 0, 1},
		{"unlimited_packed_4senders", -1, 0, 4},
		{"270bps_packed", 270, 0, 1},
		{"270bps_one_event_per_batch", 270, 1, 1},
		{"270bps_one_event_per_batch_pace50", 270, 1, 1},
		{"270bps_packed_pace50", 270, 0, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := startEmulator(b, emulator.Config{BatchesPerSecond: bc.rate})
			c, _, _ := newTestClient(b, srv.URL, func(cfg *Config) {
				cfg.Now = time.Now
				cfg.Limits.MaxEventsPerBatch = bc.perBat
				// Keep the default backoff: this is the throughput a
				// deployment would see.
				cfg.InitialInterval, cfg.MaxInterval = DefaultInitialInterval, DefaultMaxInterval
				if strings.HasSuffix(bc.name, "pace50") {
					cfg.PaceThreshold = 50
				}
			})
			ts := time.Now().Add(-time.Minute).UnixMilli()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			var failed atomic.Int64
			per := b.N / bc.senders
			for s := 0; s < bc.senders; s++ {
				n := per
				if s == 0 {
					n += b.N % bc.senders
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n; i++ {
						first := int(next.Add(100)) - 100
						items := benchItems("ios", first, 10, 10, ts)
						for _, err := range c.Send(context.Background(), items) {
							if err != nil {
								failed.Add(1)
							}
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d events failed", failed.Load())
			}
			st := srv.Stats()
			if st.Events != 100*b.N {
				b.Fatalf("emulator recorded %d events, want %d", st.Events, 100*b.N)
			}
			b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(st.Batches)/b.Elapsed().Seconds(), "batches/s")
		})
	}
}

// BenchmarkSendDiscard measures the client's own cost per Send of 100
// events of 10 users (packing, one HTTP round trip on loopback) against a
// server that answers 202 without reading JSON; the figures include
// net/http on both sides.
func BenchmarkSendDiscard(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c, _, _ := newTestClient(b, srv.URL+"/v2", func(cfg *Config) { cfg.Metrics = NopMetrics{} })
	items := benchItems("ios", 0, 10, 10, recentMS)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, err := range c.Send(context.Background(), items) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "events/s")
}
