package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2/ocf"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// unmappableObject writes, beside a good object of the export, one more
// object of n events of its type whose time is 0: valid Avro, events the
// mapping cannot map (invalid_time). It returns the object's key and its
// records by id.
func unmappableObject(t *testing.T, exp export, n int) (string, map[string]map[string]any) {
	t.Helper()
	for _, o := range exp.manifest.Objects {
		if o.Corrupt != "" || o.Older || len(o.Records) < n {
			continue
		}
		et, ok := schemas.Lookup(o.EventType)
		if !ok {
			continue
		}
		var buf bytes.Buffer
		enc, err := ocf.NewEncoder(et.WriterSchema("S3"), &buf)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]any{}
		for i, r := range o.Records[:n] {
			c := map[string]any{}
			for k, v := range r {
				c[k] = v
			}
			c["id"] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
			c["time"] = 0
			c["external_user_id"] = fmt.Sprintf("user-unmappable-%d", i+1)
			if err := enc.Encode(c); err != nil {
				t.Fatalf("%s: %v", o.EventType, err)
			}
			out[c["id"].(string)] = c
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		key := path.Join(path.Dir(o.Key), "unmappable-"+path.Base(o.Key))
		p := filepath.Join(exp.dir, filepath.FromSlash(key))
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return key, out
	}
	t.Fatal("no object to copy records from")
	return "", nil
}

// TestConfigDeadLetterAndReplay runs configs/dead-letter.yaml as shipped
// (the braze_currents input, against gofakes3) over an export with users
// without external_user_id, events without a usable time, and 3 % of
// batches refused by the emulator: every event is delivered or
// dead-lettered with its reason, never both. Then, the cause fixed (the
// emulator refuses nothing, anonymous users go out under Braze's user_id),
// configs/replay-dead-letter.yaml replays the dead letter: each
// dead-lettered event is delivered once, except the ones no fix can map,
// which are dead-lettered again with their reason; nothing is delivered
// twice.
func TestConfigDeadLetterAndReplay(t *testing.T) {
	exp := newExport(t, gen.Config{Events: 2000, Users: 300, Hours: 2, BlockEvents: 50, NoExternalIDShare: 0.2, Seed: 311})
	read := exp.decodable()
	anon := anonymous(read)
	badKey, bad := unmappableObject(t, exp, 7)
	for id, r := range bad {
		read[id] = r
	}
	bodies := exp.objectBodies(t)
	bodies[badKey] = mustRead(t, filepath.Join(exp.dir, filepath.FromSlash(badKey)))
	s3 := startS3(t, "currents-bucket", bodies, time.Now().Add(-time.Hour))
	emu := startEmulator(t, -1, emulator.Faults{Seed: 5, BatchErrorRate: 0.03})
	work := t.TempDir()
	dlqDir := filepath.Join(work, "dead-letter")
	env := append(awsTestEnv(t), emulatorEnv(emu)...)
	env = append(env, "CURRENTS_BUCKET=currents-bucket", "CURRENTS_PREFIX=currents/",
		"CURRENTS_URL_PARAMS=&s3ForcePathStyle=true&disableSSL=true&endpoint="+s3.srv.URL, "DEAD_LETTER_DIR="+dlqDir, "HTTP_ADDRESS="+freeAddr(t))

	// The input reads the bucket once, then the run ends by itself.
	logs := runShipped(t, "dead-letter.yaml", shippedConfig(t, "dead-letter.yaml"), work, env).wait(t, 3*time.Minute)
	o := collect(t, emu, logs)
	files := o.readDLQDir(t, dlqDir)
	reconcile(t, read, nil, o)
	counts := map[string]int{}
	for id, reason := range o.deadLettered {
		switch {
		case anon[id]:
			if !strings.Contains(reason, "no_identity") && !strings.Contains(reason, "external_user_id") {
				t.Fatalf("anonymous event %s dead-lettered with %q", id, reason)
			}
			counts["no_identity"]++
		case bad[id] != nil:
			if !strings.Contains(reason, "invalid_time") {
				t.Fatalf("event %s without a usable time dead-lettered with %q", id, reason)
			}
			counts["invalid_time"]++
		default:
			if !strings.HasPrefix(reason, "mparticle rejected") {
				t.Fatalf("event %s dead-lettered with %q, want the emulator's rejection", id, reason)
			}
			counts["rejected"]++
		}
	}
	if counts["no_identity"] != len(anon) || counts["invalid_time"] != len(bad) || counts["rejected"] == 0 {
		t.Fatalf("dead letter by reason %v; want %d no_identity, %d invalid_time and some rejected", counts, len(anon), len(bad))
	}
	delivered, dupes := countDelivered(o)
	t.Logf("configs/dead-letter.yaml against gofakes3 (S3, %s, braze_currents input) and the emulator (3%% of batches refused): read %d = delivered %d + dropped 0 + dead-lettered %d (%d no_identity, %d invalid_time, %d rejected), duplicates %d; files %v",
		s3.srv.URL, len(read), delivered, len(o.deadLettered), counts["no_identity"], counts["invalid_time"], counts["rejected"], dupes, baseNames(files))

	// The causes fixed: mParticle accepts every batch, and anonymous users
	// are sent with Braze's user_id as the `other` identity.
	if err := emu.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	before := collect(t, emu, "")
	replayDir := filepath.Join(work, "dead-letter-replay")
	renv := append(emulatorEnv(emu), "DEAD_LETTER_DIR="+dlqDir, "REPLAY_DEAD_LETTER_DIR="+replayDir, "REPLAY_MISSING_IDENTITY=user_id:other")
	rlogs := runShipped(t, "replay-dead-letter.yaml", shippedConfig(t, "replay-dead-letter.yaml"), work, renv).wait(t, 2*time.Minute)
	after := collect(t, emu, rlogs)
	var again outcome
	again.deadLettered = map[string]string{}
	again.readDLQDir(t, replayDir)

	// An event with neither external_user_id nor user_id has no identity
	// mParticle could take, whatever the fix: the replay drops and counts it.
	noIdentity := map[string]bool{}
	for id := range anon {
		if u, _ := read[id]["user_id"].(string); u == "" {
			noIdentity[id] = true
		}
	}
	if want := fmt.Sprintf("dropped (no_identity: %d)", len(noIdentity)); len(noIdentity) > 0 && !strings.Contains(rlogs, want) {
		t.Fatalf("the replay's tally lacks %q:\n%s", want, tail(rlogs, 3000))
	}
	replayed := 0
	for id, n := range after.delivered {
		if n != 1 {
			t.Fatalf("event %s recorded %d times after the replay", id, n)
		}
		if before.delivered[id] == 0 {
			if _, ok := o.deadLettered[id]; !ok {
				t.Fatalf("the replay delivered %s, which was not dead-lettered", id)
			}
			replayed++
		}
	}
	for id := range o.deadLettered {
		_, del := after.delivered[id]
		reason, dl := again.deadLettered[id]
		switch {
		case noIdentity[id]:
			if del || dl {
				t.Fatalf("event %s without any identity: delivered %v, dead-lettered again %v", id, del, dl)
			}
		case bad[id] != nil:
			if del || !dl || !strings.Contains(reason, "invalid_time") {
				t.Fatalf("event %s without a usable time: delivered %v, dead-lettered again %v (%q)", id, del, dl, reason)
			}
		case del == dl:
			t.Fatalf("dead-lettered event %s (%q) after the replay: delivered %v, dead-lettered again %v (%q)\n%s", id, o.deadLettered[id], del, dl, reason, tail(rlogs, 3000))
		case dl:
			t.Fatalf("event %s dead-lettered again after the fix: %q", id, reason)
		}
	}
	for id := range again.deadLettered {
		if _, ok := o.deadLettered[id]; !ok {
			t.Fatalf("the replay dead-lettered %s, which was not in the dead letter", id)
		}
	}
	if replayed != len(o.deadLettered)-len(bad)-len(noIdentity) {
		t.Fatalf("the replay delivered %d events, want %d", replayed, len(o.deadLettered)-len(bad)-len(noIdentity))
	}
	t.Logf("configs/replay-dead-letter.yaml against the emulator: read %d dead-lettered = delivered %d once (%d no_identity as user_id:other, %d rejected before) + dropped %d (no user_id either) + dead-lettered again %d (invalid_time); delivered twice 0; %d events in the emulator, each once",
		len(o.deadLettered), replayed, counts["no_identity"]-len(noIdentity), counts["rejected"], len(noIdentity), len(again.deadLettered), len(after.delivered))
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
