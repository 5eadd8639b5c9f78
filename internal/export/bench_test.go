package export

import (
	"context"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

const benchKey = "currents/dataexport.prod-03.S3.integration.5e1e4d2c9b8a7f6e5d4c3b2a/event_type=users.messages.pushnotification.Send/date=2026-11-01-13/112/us-03/dataexport.prod-03.S3.integration.5e1e4d2c9b8a7f6e5d4c3b2a+2+100.avro"

// Shard selection runs once per listed object.
func BenchmarkShardOwns(b *testing.B) {
	s := Shard{Index: 1, Count: 4}
	b.ReportAllocs()
	n := 0
	for i := 0; i < b.N; i++ {
		if s.Owns(benchKey) {
			n++
		}
	}
	_ = n
}

// A walk over an in-memory export of 5 types × 48 hours. memblob sorts every
// key on every list request, so this measures memblob as much as the walk; it
// guards against the walk listing more than it should (allocs/op).
func BenchmarkWalk(b *testing.B) {
	bk, m := tree(b, gen.Config{Events: 5000, Hours: 48, FileEvents: 20, Seed: 9,
		EventTypes: []string{"users.messages.email.Open", "users.messages.email.Send", "users.canvas.Entry", "users.messages.sms.Send", "users.campaigns.Conversion"}})
	l := &Lister{Bucket: blob.PrefixedBucket(bk, "currents/"), Prefix: "currents/"}
	ctx := context.Background()
	r := Range{Since: day1, Until: day1.Add(48 * time.Hour)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		if err := l.Walk(ctx, r, func(Object) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != len(m.Objects) {
			b.Fatalf("walked %d objects, want %d", n, len(m.Objects))
		}
	}
	b.ReportMetric(float64(len(m.Objects)*b.N)/b.Elapsed().Seconds(), "objects/s")
}
