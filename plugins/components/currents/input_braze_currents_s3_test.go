package currents

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// bciS3 is an S3 protocol server on loopback (gofakes3, memory backend)
// that records every request, so tests can see what the input listed.
type bciS3 struct {
	srv     *httptest.Server
	backend *s3mem.Backend
	mu      sync.Mutex
	reqs    []bciS3Request
	// fail, when set, answers a request with a 500 instead of serving it.
	fail func(r *http.Request) bool
}

type bciS3Request struct {
	method, path string
	query        url.Values
}

func newBciS3(t testing.TB, bucket string, e bciExport) *bciS3 {
	t.Helper()
	s := &bciS3{backend: s3mem.New()}
	faker := gofakes3.New(s.backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	h := faker.Server()
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, bciS3Request{method: r.Method, path: r.URL.Path, query: r.URL.Query()})
		fail := s.fail != nil && s.fail(r)
		s.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	if err := s.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	for k, body := range e.objs {
		if _, err := s.backend.PutObject(bucket, k, map[string]string{}, bytes.NewReader(body), int64(len(body)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The AWS SDK takes credentials from the environment, as in production;
	// shared config files and the instance metadata service are kept out.
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-test")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return s
}

func (s *bciS3) requests() []bciS3Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bciS3Request(nil), s.reqs...)
}

// lists returns the prefix of every ListObjects request, and the number of
// one-key probes (blob.Bucket.IsAccessible when the input connects).
func (s *bciS3) lists() (prefixes []string, probes int) {
	for _, r := range s.requests() {
		if r.method != http.MethodGet || strings.Count(strings.Trim(r.path, "/"), "/") != 0 || !r.query.Has("prefix") {
			continue
		}
		if r.query.Get("max-keys") == "1" {
			probes++
			continue
		}
		prefixes = append(prefixes, r.query.Get("prefix"))
	}
	return prefixes, probes
}

// gets returns the key of every GetObject request.
func (s *bciS3) gets(bucket string) []string {
	var out []string
	for _, r := range s.requests() {
		if k, ok := strings.CutPrefix(r.path, "/"+bucket+"/"); ok && r.method == http.MethodGet && k != "" {
			out = append(out, k)
		}
	}
	return out
}

// The input over the real AWS clients (SDK v1, the default, and v2) against
// an S3 server on loopback, through the url parameters a user of MinIO or
// another S3-compatible store would write.
func TestInputS3(t *testing.T) {
	e := bciGenerate(t, gen.Config{Events: 800, Hours: 3, FileEvents: 60, KeepRecords: true, Seed: 31,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry", "users.messages.sms.Send"}})
	for _, c := range []struct{ name, params string }{
		{"sdk_v1", "region=us-east-1&s3ForcePathStyle=true&disableSSL=true&endpoint="},
		{"sdk_v2", "awssdk=v2&use_path_style=true&region=us-east-1&endpoint="},
	} {
		t.Run(c.name, func(t *testing.T) {
			s3 := newBciS3(t, "currents-bucket", e)
			res := bciStream{input: fmt.Sprintf(`
braze_currents:
  url: "s3://currents-bucket/currents?%s%s"
  max_batch_size: 50
`, c.params, s3.srv.URL)}.run(t)
			res.exactlyOnce(t, e.ids(t, nil))
			for id, md := range res.meta {
				if !strings.HasPrefix(md["currents_object"], "currents/dataexport.prod-03.S3.integration.") {
					t.Fatalf("event %s: currents_object %q", id, md["currents_object"])
				}
			}
			if n := len(s3.gets("currents-bucket")); n != len(e.m.Objects) {
				t.Fatalf("%d objects fetched, the export has %d", n, len(e.m.Objects))
			}
		})
	}
}

// Pruning, seen from the server: a replay of one event type over one day of
// a three-day export with eight types lists only the prefix, the dataexport
// folder, that type's date= folders of that day and the day's hour folders,
// and fetches only that type's objects of that day.
func TestInputS3ReplayListsOnlyTheSelectedPartitions(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	e := bciGenerate(t, gen.Config{Events: 6000, Hours: 72, Start: start, KeepRecords: true, Seed: 32,
		EventTypes: []string{"users.messages.email.Open", "users.messages.email.Click", "users.messages.email.Send",
			"users.messages.pushnotification.Send", "users.messages.pushnotification.Open", "users.canvas.Entry",
			"users.messages.sms.Send", "users.campaigns.Conversion"}})
	s3 := newBciS3(t, "currents-bucket", e)
	res := bciStream{input: fmt.Sprintf(`
braze_currents:
  url: "s3://currents-bucket/currents?region=us-east-1&s3ForcePathStyle=true&disableSSL=true&endpoint=%s"
  event_types: [ users.messages.email.Open ]
  since: 2026-11-02-00
  until: 2026-11-03-00
`, s3.srv.URL)}.run(t)
	selected := func(key string) bool {
		return strings.Contains(key, "/event_type=users.messages.email.Open/date=2026-11-02-")
	}
	res.exactlyOnce(t, e.ids(t, func(o gen.Object) bool { return selected(o.Key) }))

	lists, probes := s3.lists()
	if probes != 1 {
		t.Errorf("%d one-key probes, want the one of Connect", probes)
	}
	folder := "currents/dataexport.prod-03.S3.integration.5e1e4d2c9b8a7f6e5d4c3b2a/"
	for _, p := range lists {
		if p != "currents/" && p != folder && !strings.HasPrefix(p, folder+"event_type=users.messages.email.Open/date=2026-11-02-") {
			t.Errorf("listed %q: outside the selected type and day", p)
		}
	}
	if len(lists) != 27 {
		t.Errorf("%d list requests, want 27 (prefix, dataexport folder, date folders, 24 hours): %q", len(lists), lists)
	}
	gets := s3.gets("currents-bucket")
	for _, k := range gets {
		if !selected(k) {
			t.Errorf("fetched %s: not selected", k)
		}
	}
	want := 0
	for _, o := range e.m.Objects {
		if selected(o.Key) {
			want++
		}
	}
	if len(gets) != want || len(e.m.Objects) < 10*want {
		t.Fatalf("fetched %d objects, want the %d selected of %d", len(gets), want, len(e.m.Objects))
	}
}

// A listing that fails midway (the SDK's own retries exhausted) is retried by
// the input from the hour it reached: every event still arrives exactly once.
func TestInputS3ListingErrorResumes(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	e := bciGenerate(t, gen.Config{Events: 600, Hours: 4, Start: start, KeepRecords: true, Seed: 33,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry"}})
	s3 := newBciS3(t, "currents-bucket", e)
	failures := 6 // more than one SDK call retries (4 attempts), fewer than two
	s3.fail = func(r *http.Request) bool {
		if failures > 0 && strings.Contains(r.URL.Query().Get("prefix"), "/date=2026-11-01-02/") {
			failures--
			return true
		}
		return false
	}
	res := bciStream{input: fmt.Sprintf(`
braze_currents:
  url: "s3://currents-bucket/currents?region=us-east-1&s3ForcePathStyle=true&disableSSL=true&endpoint=%s"
`, s3.srv.URL)}.run(t)
	if failures != 0 {
		t.Fatalf("%d injected failures left: the listing never reached them", failures)
	}
	if !strings.Contains(res.logs.String(), "Listing the Braze Currents export") {
		t.Fatalf("no listing error logged; logs:\n%s", res.logs)
	}
	res.exactlyOnce(t, e.ids(t, nil))
}
