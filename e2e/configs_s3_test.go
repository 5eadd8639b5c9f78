package e2e

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// s3Server is an S3 protocol server on loopback (gofakes3, memory backend).
type s3Server struct {
	srv     *httptest.Server
	backend *s3mem.Backend
}

// startS3 serves bucket holding objs. Objects carry modTime as their last
// modification (an export written a while ago), the server itself the real
// clock (it checks request signatures' times).
func startS3(t *testing.T, bucket string, objs map[string][]byte, modTime time.Time) *s3Server {
	t.Helper()
	s := &s3Server{backend: s3mem.New(s3mem.WithTimeSource(gofakes3.FixedTimeSource(modTime)))}
	faker := gofakes3.New(s.backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	s.srv = httptest.NewServer(faker.Server())
	t.Cleanup(s.srv.Close)
	if err := s.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	for k, body := range objs {
		s.put(t, bucket, k, body)
	}
	return s
}

func (s *s3Server) put(t *testing.T, bucket, key string, body []byte) {
	t.Helper()
	if _, err := s.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatal(err)
	}
}

// keys lists the keys under prefix.
func (s *s3Server) keys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	p := gofakes3.NewPrefix(&prefix, nil)
	l, err := s.backend.ListBucket(bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range l.Contents {
		out = append(out, c.Key)
	}
	return out
}

// TestConfigS3 runs configs/s3.yaml as shipped against gofakes3 (S3), a
// redis-server of its own (checkpoints) and the emulator (mParticle), with a
// corrupt object mixed in and 2 % of batches refused: every event is
// delivered or dead-lettered with its reason, the corrupt objects are
// quarantined; after SIGTERM a second run re-sends nothing.
func TestConfigS3(t *testing.T) {
	redis := startRedis(t)
	exp := newExport(t, gen.Config{Events: 3000, Users: 400, Hours: 3, BlockEvents: 50, CorruptFiles: 2, Seed: 301})
	s3 := startS3(t, "currents-bucket", exp.objectBodies(t), time.Now().Add(-time.Hour))
	emu := startEmulator(t, -1, emulator.Faults{Seed: 3, BatchErrorRate: 0.02})
	work := t.TempDir()
	dlqDir := filepath.Join(work, "dead-letter")
	httpAddr := freeAddr(t)
	env := append(awsTestEnv(t), emulatorEnv(emu)...)
	env = append(env, "CURRENTS_BUCKET=currents-bucket", "CURRENTS_PREFIX=currents",
		"CURRENTS_URL_PARAMS=&s3ForcePathStyle=true&disableSSL=true&endpoint="+s3.srv.URL,
		"CHECKPOINT_REDIS_URL="+redis, "DEAD_LETTER_DIR="+dlqDir, "HTTP_ADDRESS="+httpAddr)
	cfg := shippedConfig(t, "s3.yaml")
	objects := len(exp.manifest.Objects)
	corrupt := 0
	for _, o := range exp.manifest.Objects {
		if o.Corrupt != "" {
			corrupt++
		}
	}

	// watch: true: the run never ends by itself. Wait until every object is
	// completed or failed (the corrupt ones), then stop it as a user would.
	first := runShipped(t, "s3.yaml", cfg, work, env)
	settled := func() float64 {
		return metric(httpAddr, "currents_objects_completed") + metric(httpAddr, "currents_objects_failed")
	}
	poll(t, 3*time.Minute, func() string { return "every object completed or failed" },
		func() bool { return settled() >= float64(objects) }, first)
	logs := first.terminate(t)
	o := collect(t, emu, logs)
	o.readDLQDir(t, dlqDir)
	read := exp.decodable()
	anon := anonymous(read)
	reconcile(t, read, anon, o)
	if len(o.deadLettered) == 0 {
		t.Fatal("nothing dead-lettered: the batch errors were not injected")
	}
	for id, reason := range o.deadLettered {
		if !strings.HasPrefix(reason, "mparticle rejected") {
			t.Fatalf("event %s dead-lettered with %q, want the emulator's rejection", id, reason)
		}
	}
	quarantined := s3.keys(t, "currents-bucket", "currents-quarantine/")
	for _, obj := range exp.manifest.Objects {
		if obj.Corrupt == "" {
			continue
		}
		found := false
		for _, k := range quarantined {
			if strings.HasSuffix(k, obj.Key+".error.json") {
				found = true
			}
		}
		if !found {
			t.Errorf("corrupt object %s (%s) not quarantined; quarantine holds %v", obj.Key, obj.Corrupt, quarantined)
		}
	}
	checkpoints := redisKeys(t, redis)
	// One checkpoint per object, and the input's probe of the cache.
	if checkpoints != objects+1 {
		t.Errorf("redis holds %d keys, want one checkpoint per object (%d) and the probe", checkpoints, objects)
	}
	delivered, dupes := countDelivered(o)
	t.Logf("configs/s3.yaml against gofakes3 (S3, %s), redis-server (%s) and the emulator: %d objects (%d corrupt, quarantined), read %d = delivered %d + dropped %d + dead-lettered %d, duplicates %d; %d keys in redis (a checkpoint per object and the probe)",
		s3.srv.URL, redis, objects, corrupt, len(read), delivered, len(anon), len(o.deadLettered), dupes, checkpoints)

	// Second run: the checkpoints in Redis make it skip every object.
	before := emu.Stats()
	dlqBefore := dlqLines(t, dlqDir)
	second := runShipped(t, "s3.yaml (again)", cfg, work, env)
	poll(t, 2*time.Minute, func() string { return "every object skipped as checkpointed" },
		func() bool { return metric(httpAddr, "currents_objects_skipped") >= float64(objects) }, second)
	read2 := metric(httpAddr, "currents_objects_read")
	second.terminate(t)
	after := emu.Stats()
	if after.Requests != before.Requests || after.Events != before.Events {
		t.Fatalf("the second run sent %d requests, %d events; want none", after.Requests-before.Requests, after.Events-before.Events)
	}
	if n := dlqLines(t, dlqDir); n != dlqBefore {
		t.Fatalf("the second run dead-lettered %d more lines", n-dlqBefore)
	}
	if read2 != 0 {
		t.Fatalf("the second run read %v objects; want none", read2)
	}
	t.Logf("configs/s3.yaml second run: %d objects skipped from the redis checkpoints, 0 requests, 0 events re-sent", objects)
}

// TestConfigS3DryRunThenForReal follows the README: configs/s3.yaml first
// with `dry_run: true` on its output, then as shipped, on the same Redis
// and bucket. The dry run sends nothing and leaves no trace: no checkpoint
// (Redis holds only the input's probe), no quarantine record. The real run
// after it then reads every object and delivers every event.
func TestConfigS3DryRunThenForReal(t *testing.T) {
	redis := startRedis(t)
	exp := newExport(t, gen.Config{Events: 1500, Users: 300, Hours: 2, BlockEvents: 50, CorruptFiles: 1, Seed: 303})
	s3 := startS3(t, "currents-bucket", exp.objectBodies(t), time.Now().Add(-time.Hour))
	emu := startEmulator(t, -1, emulator.Faults{})
	work := t.TempDir()
	httpAddr := freeAddr(t)
	env := append(awsTestEnv(t), emulatorEnv(emu)...)
	env = append(env, "CURRENTS_BUCKET=currents-bucket", "CURRENTS_PREFIX=currents",
		"CURRENTS_URL_PARAMS=&s3ForcePathStyle=true&disableSSL=true&endpoint="+s3.srv.URL,
		"CHECKPOINT_REDIS_URL="+redis, "DEAD_LETTER_DIR="+filepath.Join(work, "dead-letter"), "HTTP_ADDRESS="+httpAddr)
	objects := float64(len(exp.manifest.Objects))
	settled := func() bool {
		return metric(httpAddr, "currents_objects_completed")+metric(httpAddr, "currents_objects_failed") >= objects
	}
	what := func() string { return "every object completed or failed" }

	shipped := mustRead(t, shippedConfig(t, "s3.yaml"))
	dryCfg := strings.Replace(string(shipped), "    - mparticle:\n", "    - mparticle:\n        dry_run: true\n        dry_run_path: ./dry-run.jsonl\n", 1)
	if dryCfg == string(shipped) {
		t.Fatal("configs/s3.yaml has no `- mparticle:` output to set dry_run on")
	}
	dryPath := filepath.Join(work, "s3-dry-run.yaml")
	if err := os.WriteFile(dryPath, []byte(dryCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dry := runShipped(t, "s3.yaml with dry_run", dryPath, work, env)
	poll(t, 3*time.Minute, what, settled, dry)
	dryLogs := dry.terminate(t)
	if st := emu.Stats(); st.Requests != 0 {
		t.Fatalf("the dry run sent %d requests to mParticle", st.Requests)
	}
	if lines := bytes.Count(mustRead(t, filepath.Join(work, "dry-run.jsonl")), []byte("\n")); lines == 0 {
		t.Fatalf("the dry run wrote no request:\n%s", tail(dryLogs, 3000))
	}
	if n := redisKeys(t, redis); n != 1 {
		t.Fatalf("after the dry run redis holds %d keys, want only the input's probe", n)
	}
	if q := s3.keys(t, "currents-bucket", "currents-quarantine/"); len(q) != 0 {
		t.Fatalf("the dry run quarantined %v", q)
	}

	real := runShipped(t, "s3.yaml", shippedConfig(t, "s3.yaml"), work, env)
	poll(t, 3*time.Minute, what, settled, real)
	o := collect(t, emu, real.terminate(t))
	read := exp.decodable()
	reconcile(t, read, anonymous(read), o)
	if n := redisKeys(t, redis); n != len(exp.manifest.Objects)+1 {
		t.Fatalf("after the real run redis holds %d keys, want a checkpoint per object (%d) and the probe", n, len(exp.manifest.Objects))
	}
	t.Logf("dry run: 0 requests, 0 checkpoints, 0 quarantine records; the real run after it: %d objects, every event delivered", len(exp.manifest.Objects))
}
