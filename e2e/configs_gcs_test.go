package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// TestConfigGCS runs configs/gcs.yaml as shipped against fake-gcs-server
// (in process, on loopback; gocloud's gcsblob honours
// STORAGE_EMULATOR_HOST), a redis-server of its own and the emulator with 2 %
// of batches refused; then again, which must send nothing.
func TestConfigGCS(t *testing.T) {
	redis := startRedis(t)
	exp := newExport(t, gen.Config{Events: 2000, Users: 300, Hours: 3, BlockEvents: 50, Connection: "GCS", Seed: 331})
	var objs []fakestorage.Object
	old := time.Now().Add(-time.Hour)
	for key, body := range exp.objectBodies(t) {
		objs = append(objs, fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "currents-bucket", Name: key, Created: old, Updated: old},
			Content:     body,
		})
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{InitialObjects: objs, Scheme: "http", Host: "127.0.0.1",
		// Downloads come as GET /<bucket>/<object> on the emulator host itself.
		PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	host := strings.TrimPrefix(srv.URL(), "http://")
	emu := startEmulator(t, -1, emulator.Faults{Seed: 4, BatchErrorRate: 0.02})
	dlqDir := filepath.Join(t.TempDir(), "dead-letter")
	httpAddr := freeAddr(t)
	env := append(emulatorEnv(emu), "STORAGE_EMULATOR_HOST="+host, "CURRENTS_BUCKET=currents-bucket", "CURRENTS_PREFIX=currents",
		"CHECKPOINT_REDIS_URL="+redis, "DEAD_LETTER_DIR="+dlqDir, "HTTP_ADDRESS="+httpAddr)
	watchedTwice(t, "gcs.yaml", "fake-gcs-server (GCS JSON API, "+srv.URL()+")", env, exp, emu, dlqDir, httpAddr, redis)
}
