package e2e

// The dashboard (deploy/grafana) and the alerting rules (deploy/prometheus)
// may only use metrics the binary really exports: a run against the
// emulator, with faults that make every labelled series appear, is scraped
// and every metric name of every panel and rule expression is looked up.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// opsPipeline follows exportDir (watch mode) with checkpoints in a file
// cache, a quarantine folder, the shipped configs' dead letter, Prometheus
// metrics on httpAddr, and a short auth_failure_window.
func opsPipeline(exportDir, checkpointDir, quarantineDir, dlqDir, emuURL, httpAddr string, watch bool) string {
	feeds := feedsYAML("          ")
	return fmt.Sprintf(`
input:
  braze_currents:
    url: %q
    watch: %v
    poll_interval: 1s
    min_object_age: 0s
    checkpoint_cache: checkpoint
    quarantine: %q
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  fallback:
    - mparticle:
        url: %q
        feeds:
%s        backoff: { initial_interval: 20ms, max_interval: 300ms }
%s
cache_resources:
  - label: checkpoint
    file: { directory: %q }
http: { address: %q }
logger: { level: WARN, format: logfmt }
metrics: { prometheus: {} }
`, "file://"+filepath.ToSlash(exportDir), watch, "file://"+filepath.ToSlash(quarantineDir), emuURL, feeds,
		deadLetterYAML(filepath.Join(dlqDir, "delivery.jsonl"), "    "), checkpointDir, httpAddr)
}

// scrape returns the metric names (as exposed, with _sum, _count, _bucket
// for summaries and histograms) served at addr/metrics.
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.IndexAny(l, "{ "); i > 0 {
			names[l[:i]] = true
		}
	}
	return names
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "offset": true, "bool": true, "and": true, "or": true, "unless": true, "atan2": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true}
)

// promMetricNames returns the metric names a PromQL expression selects:
// identifiers outside strings, label matchers, ranges and grouping clauses
// that are not keywords, function names (followed by "(") or numbers.
// Grafana variables are replaced first ($__rate_interval by a duration,
// $var by a label value).
func promMetricNames(expr string) []string {
	e := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h").Replace(expr)
	e = regexp.MustCompile(`\$\{?[A-Za-z_]+\}?`).ReplaceAllString(e, "x")
	e = promStrings.ReplaceAllString(e, `""`)
	for prev := ""; prev != e; {
		prev = e
		e = promMatchers.ReplaceAllString(e, " ")
		e = promRanges.ReplaceAllString(e, " ")
		e = promGrouping.ReplaceAllString(e, " ")
	}
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if promKeywords[name] || (loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.')) {
			continue // a keyword, or the unit of a duration / exponent of a number
		}
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") {
			continue // a function or aggregation
		}
		out = append(out, name)
	}
	return out
}

func TestPromMetricNames(t *testing.T) {
	got := promMetricNames(`sum by (feed) (rate(mparticle_requests{status=~"4..", feed="$feed"}[$__rate_interval])) / ignoring(x) group_left max without (quantile) (mparticle_request_latency_ns{quantile="0.99"}) > 1e9 and on (job) up offset 5m`)
	want := []string{"mparticle_requests", "mparticle_request_latency_ns", "up"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// dashboardExprs returns every target expression of the Grafana dashboard,
// by panel title, and every variable query.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "currents-mparticle.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	out := map[string][]string{}
	for _, p := range d.Panels {
		if p.Type == "row" || p.Type == "text" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty expression", p.Title)
			}
			out["panel "+p.Title] = append(out["panel "+p.Title], tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		q := ""
		switch x := v.Query.(type) {
		case string:
			q = x
		case map[string]any:
			q, _ = x["query"].(string)
		}
		// label_values(metric, label) names a metric too.
		if m := regexp.MustCompile(`label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)`).FindStringSubmatch(q); m != nil {
			out["variable "+v.Name] = append(out["variable "+v.Name], m[1])
		}
	}
	return out
}

// alertExprs returns every rule expression of the alerting rules, by alert.
func alertExprs(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Record      string            `json:"record"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	out := map[string][]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert+r.Record] = append(out["alert "+r.Alert+r.Record], r.Expr)
		}
	}
	if len(out) == 0 {
		t.Fatal("alerts.yaml holds no rule")
	}
	return out
}

// prometheusSynthetic are series Prometheus itself writes per scrape target.
var prometheusSynthetic = map[string]bool{"up": true}

// TestDashboardAndAlertsUseExportedMetrics runs the binary against the
// emulator with faults (a feed refused for a while, throttling, 5xx,
// batches rejected inside 202s) and corrupt objects, scrapes /metrics and
// checks every metric name of every dashboard panel and alert rule.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	exprs := dashboardExprs(t)
	for k, v := range alertExprs(t) {
		exprs[k] = v
	}

	exp := newExport(t, gen.Config{Events: 1500, Users: 300, Hours: 2, BlockEvents: 50, CorruptFiles: 2, Seed: 13})
	emu, err := emulator.Start("127.0.0.1:0", emulator.Config{Feeds: feedCreds, BatchesPerSecond: 150,
		Faults: emulator.Faults{Seed: 13, ServerErrorRate: 0.03, BatchErrorRate: 0.02,
			ForbiddenUntil: time.Now().Add(3 * time.Second), ForbiddenFeeds: []string{"android"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	work := t.TempDir()
	cp, quarantine, dlq := filepath.Join(work, "checkpoint"), filepath.Join(work, "quarantine"), filepath.Join(work, "dlq")
	for _, d := range []string{cp, quarantine, dlq} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	cfg := filepath.Join(work, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(opsPipeline(exp.dir, cp, quarantine, dlq, emu.URL, addr, true)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runShipped(t, "ops pipeline", cfg, work, nil)
	objects := float64(len(exp.manifest.Objects))
	poll(t, 3*time.Minute, func() string { return "every object completed or failed" }, func() bool {
		return metric(addr, "currents_objects_completed")+metric(addr, "currents_objects_failed") >= objects
	}, p)
	exported := scrape(t, addr)
	p.terminate(t)
	// A second run skips every object from its checkpoint: the series of
	// currents_objects_skipped appear then.
	again := runShipped(t, "ops pipeline (again)", cfg, work, nil)
	poll(t, time.Minute, func() string { return "every object skipped" }, func() bool {
		return metric(addr, "currents_objects_skipped") >= objects
	}, again)
	for n := range scrape(t, addr) {
		exported[n] = true
	}
	again.terminate(t)

	var keys []string
	for k := range exprs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	used := map[string]bool{}
	for _, k := range keys {
		for _, e := range exprs[k] {
			names := promMetricNames(e)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", k, e)
			}
			for _, n := range names {
				used[n] = true
				if !exported[n] && !prometheusSynthetic[n] {
					t.Errorf("%s uses %s, which the binary does not export (expression %q)", k, n, e)
				}
			}
		}
	}
	var all []string
	for n := range exported {
		all = append(all, n)
	}
	sort.Strings(all)
	if t.Failed() {
		t.Logf("exported: %s", strings.Join(all, " "))
	}
	var usedList []string
	for n := range used {
		usedList = append(usedList, n)
	}
	sort.Strings(usedList)
	t.Logf("%d expressions (%d panels/variables and rules) use %d metrics, all exported by the binary after a run against the emulator: %s",
		func() int {
			n := 0
			for _, v := range exprs {
				n += len(v)
			}
			return n
		}(), len(exprs), len(used), strings.Join(usedList, " "))

	// The expressions also parse as PromQL: promtool checks them as rules.
	if path := needTool(t, "promtool", "Debian package prometheus"); path != "" {
		var b strings.Builder
		b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		i := 0
		for _, k := range keys {
			if !strings.HasPrefix(k, "panel ") {
				continue
			}
			for _, e := range exprs[k] {
				e = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h").Replace(e)
				e = regexp.MustCompile(`\$\{?[A-Za-z_]+\}?`).ReplaceAllString(e, ".*")
				q, _ := json.Marshal(e)
				fmt.Fprintf(&b, "      - record: dashboard:expr_%d\n        expr: %s\n", i, q)
				i++
			}
		}
		rules := filepath.Join(work, "dashboard-rules.yaml")
		if err := os.WriteFile(rules, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(path, "check", "rules", rules).CombinedOutput(); err != nil {
			t.Fatalf("the dashboard's expressions do not parse as PromQL: %v\n%s", err, out)
		}
		t.Logf("promtool parses the dashboard's %d expressions", i)
	}
}
