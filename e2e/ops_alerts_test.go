package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/client"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/eventsapi"
)

// TestAlertRulesFireOnTheFirstFailure: the failure counters the alerts and
// the dashboard read are in /metrics at 0 as soon as the binary starts, for
// every class, feed and reason, so that `increase(...) > 0` sees the first
// failure; and deploy/prometheus/alerts_test.yml, which feeds each alert
// such series, passes `promtool test rules`.
func TestAlertRulesFireOnTheFirstFailure(t *testing.T) {
	emu := startEmulator(t, -1, emulator.Faults{})
	exportDir := t.TempDir()
	httpAddr := freeAddr(t)
	cfg := fmt.Sprintf(`
input:
  braze_currents:
    url: %q
    watch: true
`, "file://"+filepath.ToSlash(exportDir)) + mapToEmulator(emu.URL) + fmt.Sprintf(`
http: { address: %q }
metrics: { prometheus: {} }
logger: { level: WARN }
`, httpAddr)
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runShipped(t, "pipeline", path, dir, nil)
	var body string
	poll(t, time.Minute, func() string { return "/metrics to answer" }, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		// Benthos serves /metrics once the stream is built.
		return resp.StatusCode == http.StatusOK
	}, p)
	zero := func(name string, labels ...string) {
		t.Helper()
		re := `(?m)^` + regexp.QuoteMeta(name) + `\{[^}]*`
		for _, l := range labels {
			re += regexp.QuoteMeta(l) + `[^}]*`
		}
		if name == "currents_object_retries" || name == "currents_objects_skipped" {
			re = `(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})?`
		}
		if !regexp.MustCompile(re + `\}? 0$`).MatchString(body) {
			t.Errorf("/metrics at start has no %s{%s} at 0", name, strings.Join(labels, ","))
		}
	}
	for _, class := range append(currents.ErrorClasses(), "rejected_downstream", "unreadable") {
		zero("currents_objects_failed", `class="`+class+`"`)
	}
	for _, class := range currents.ErrorClasses() {
		zero("currents_decode_errors", `class="`+class+`"`)
	}
	zero("currents_object_retries")
	zero("currents_objects_skipped")
	for _, feed := range eventsapi.Feeds() {
		for _, reason := range client.Reasons() {
			zero("mparticle_events_failed", `feed="`+feed+`"`, `reason="`+reason+`"`)
		}
	}
	p.terminate(t)

	promtool := needTool(t, "promtool", "Debian package prometheus")
	out, err := exec.Command(promtool, "test", "rules", filepath.Join("..", "deploy", "prometheus", "alerts_test.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules deploy/prometheus/alerts_test.yml:\n%s", out)
}
