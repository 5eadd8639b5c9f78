package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/internal/runstatus"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// s3Faults is a fault-injecting proxy in front of an S3 server: it passes
// listings and other calls through, and spoils object bodies as a flaky
// network or S3-compatible gateway would.
type s3Faults struct {
	srv     *httptest.Server
	backend string

	mu   sync.Mutex
	rand *rand.Rand
	// cutShort: the share of object GETs whose body ends cleanly (chunked,
	// no Content-Length) part-way.
	cutShort float64
	// reset: the share of object GETs whose connection is dropped part-way
	// through a body of the announced length.
	reset float64
	// cutAtBlock: the share of object GETs whose body ends cleanly right
	// after the first Avro block of a file holding more: a file that looks
	// whole.
	cutAtBlock float64
	// denied: object keys (suffixes) answered 403 AccessDenied on every GET.
	denied []string
	// spoiled counts the bodies cut or reset, by key.
	spoiled map[string]int
}

func startS3Faults(t *testing.T, backend *httptest.Server, seed int64) *s3Faults {
	t.Helper()
	f := &s3Faults{backend: backend.URL, rand: rand.New(rand.NewSource(seed)), spoiled: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// objectGet reports a GET of one object (a listing has list-type or prefix).
func objectGet(r *http.Request) bool {
	q := r.URL.Query()
	return r.Method == http.MethodGet && !q.Has("list-type") && !q.Has("prefix") && !q.Has("delimiter") &&
		strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
}

func (f *s3Faults) serve(w http.ResponseWriter, r *http.Request) {
	if objectGet(r) {
		for _, k := range f.denied {
			if strings.HasSuffix(r.URL.Path, k) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
				return
			}
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, f.backend+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host // the request is signed for the proxy's host
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	fault := ""
	if objectGet(r) && resp.StatusCode == http.StatusOK && len(body) > 1 {
		f.mu.Lock()
		at := 1 + f.rand.Intn(len(body)-1)
		switch p := f.rand.Float64(); {
		case p < f.cutShort:
			fault = "cut"
		case p < f.cutShort+f.reset:
			fault = "reset"
		case p < f.cutShort+f.reset+f.cutAtBlock:
			if end := firstBlockEnd(body); end > 0 && end < len(body) {
				fault, at = "cut", end
			}
		}
		if fault != "" {
			f.spoiled[r.URL.Path]++
		}
		f.mu.Unlock()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		switch fault {
		case "cut":
			// Chunked, and ended cleanly: the client sees an early EOF.
			w.Header().Del("Content-Length")
			w.Header().Del("ETag")
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(body[:at])
			return
		case "reset":
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(body[:at])
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
			return
		}
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, bytes.NewReader(body))
}

// firstBlockEnd is the byte offset just after the first block of an Avro
// container file (its sync marker ends the header and every block), or 0.
func firstBlockEnd(file []byte) int {
	if len(file) < 32 {
		return 0
	}
	sync := file[len(file)-16:]
	header := bytes.Index(file, sync)
	if header < 0 {
		return 0
	}
	next := bytes.Index(file[header+16:], sync)
	if next < 0 {
		return 0
	}
	return header + 16 + next + 16
}

// spoiledBodies is the number of bodies cut short or reset so far.
func (f *s3Faults) spoiledBodies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.spoiled {
		n += c
	}
	return n
}

// s3InputPipeline reads bucket/currents through the braze_currents input at
// endpoint, once, into the emulator; inputOpts are extra input fields.
func s3InputPipeline(endpoint, emuURL, inputOpts string) string {
	return fmt.Sprintf(`
input:
  braze_currents:
    url: s3://currents-bucket/currents?region=us-east-1&s3ForcePathStyle=true&disableSSL=true&endpoint=%s
%s
`, url.QueryEscape(endpoint), indent(inputOpts, "    ")) + mapToEmulator(emuURL) + infoLogs
}

// mapToEmulator is the middle of a test pipeline: the mapping, and the
// mparticle output to the emulator.
func mapToEmulator(emuURL string) string {
	return fmt.Sprintf(`
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
    url: %s
    feeds:
%s`, emuURL, feedsYAML("      "))
}

// infoLogs ends a test pipeline that logs at INFO (the closing lines are
// INFO) and exports no metrics.
const infoLogs = `
logger: { level: INFO, format: logfmt }
metrics: { none: {} }
`

// runToEnd runs the binary on config until it exits by itself (within d)
// and returns its logs and exit code.
func runToEnd(t *testing.T, config string, env []string, d time.Duration) (logs string, code int) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runShipped(t, "pipeline", cfgPath, dir, env)
	select {
	case <-p.done:
	case <-time.After(d):
		p.kill(t)
		t.Fatalf("the run did not end within %v:\n%s", d, tail(p.logs.String(), 4000))
	}
	return p.logs.String(), exitCode(t, p.err)
}

// exitCode is the exit code of a finished command, from the error its Run
// or Wait returned.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run: %v", err)
	}
	return ee.ExitCode()
}

// readAgainThroughFaults runs the braze_currents input once over an export
// of cfg, served by gofakes3 behind s3Faults set up by spoil, into the
// emulator, and checks that the faults were injected and every event was
// delivered anyway, with exit 0. It returns the run's logs and outcome.
func readAgainThroughFaults(t *testing.T, cfg gen.Config, seed int64, spoil func(*s3Faults)) (string, outcome, *s3Faults) {
	t.Helper()
	exp := newExport(t, cfg)
	s3 := startS3(t, "currents-bucket", exp.objectBodies(t), time.Now().Add(-time.Hour))
	faults := startS3Faults(t, s3.srv, seed)
	spoil(faults)
	emu := startEmulator(t, -1, emulator.Faults{})
	logs, code := runToEnd(t, s3InputPipeline(faults.srv.URL, emu.URL, ""), awsTestEnv(t), 3*time.Minute)
	if code != 0 {
		t.Fatalf("exit code %d, want 0:\n%s", code, tail(logs, 4000))
	}
	if faults.spoiledBodies() == 0 {
		t.Fatal("no body was spoiled: the fault was not injected")
	}
	o := collect(t, emu, logs)
	read := exp.decodable()
	reconcile(t, read, anonymous(read), o)
	return logs, o, faults
}

// TestS3BodiesCutShortAreReadAgain: a fifth of the object GETs end cleanly
// before the object's size (a gateway that lost its upstream, chunked, no
// Content-Length). A short read is a transport fault, not a corrupt file:
// every object is read again until it comes whole, every event is
// delivered, none is failed, and the run exits 0.
func TestS3BodiesCutShortAreReadAgain(t *testing.T) {
	logs, o, faults := readAgainThroughFaults(t, gen.Config{Events: 3000, Users: 400, Hours: 3, BlockEvents: 50, Seed: 311}, 5,
		func(f *s3Faults) { f.cutShort = 0.2 })
	if strings.Contains(logs, "recorded as failed") {
		t.Fatalf("an object was recorded as failed:\n%s", tail(logs, 4000))
	}
	// The run's closing lines say what each feed delivered.
	said := 0
	for _, m := range regexp.MustCompile(`mparticle: feed \w+: (\d+) events delivered`).FindAllStringSubmatch(logs, -1) {
		n, _ := strconv.Atoi(m[1])
		said += n
	}
	if said != o.stats.Events {
		t.Fatalf("the closing lines say %d events delivered, the emulator recorded %d:\n%s", said, o.stats.Events, tail(logs, 3000))
	}
	t.Logf("%d of the object GETs were cut short; every event delivered", faults.spoiledBodies())
}

// TestS3BodiesCutAtABlockBoundaryAreReadAgain: a third of the GETs end
// cleanly right after the file's first block, so the file looks whole to
// the decoder; the input compares the bytes it got with the object's size
// and reads it again: every event delivered, exit 0.
func TestS3BodiesCutAtABlockBoundaryAreReadAgain(t *testing.T) {
	_, _, faults := readAgainThroughFaults(t, gen.Config{Events: 2000, Users: 300, Hours: 2, BlockEvents: 50, Seed: 319}, 13,
		func(f *s3Faults) { f.cutAtBlock = 0.3 })
	t.Logf("%d GETs cut after the first block; every event delivered", faults.spoiledBodies())
}

// TestUnreadableObjectFailsAfterMaxReadAttempts: one object answers 403
// AccessDenied for ever (a KMS key not granted). A one-pass run does not
// retry it for ever: after max_read_attempts reads it is recorded as failed
// (class unreadable) and named, every other event is delivered, and the run
// exits with the code that says objects failed.
func TestUnreadableObjectFailsAfterMaxReadAttempts(t *testing.T) {
	exp := newExport(t, gen.Config{Events: 600, Users: 100, Hours: 1, BlockEvents: 50, Seed: 313})
	s3 := startS3(t, "currents-bucket", exp.objectBodies(t), time.Now().Add(-time.Hour))
	faults := startS3Faults(t, s3.srv, 7)
	denied := exp.manifest.Objects[0]
	faults.denied = []string{denied.Key}
	emu := startEmulator(t, -1, emulator.Faults{})
	logs, code := runToEnd(t, s3InputPipeline(faults.srv.URL, emu.URL, "max_read_attempts: 3"), awsTestEnv(t), 2*time.Minute)
	if code != runstatus.ExitObjectsFailed {
		t.Fatalf("exit code %d, want %d (objects failed):\n%s", code, runstatus.ExitObjectsFailed, tail(logs, 4000))
	}
	if !strings.Contains(logs, denied.Key) || !strings.Contains(logs, "recorded as failed (unreadable)") {
		t.Fatalf("the denied object %s is not named as failed:\n%s", denied.Key, tail(logs, 4000))
	}
	o := collect(t, emu, logs)
	read := exp.decodable()
	skip := anonymous(read)
	for _, r := range denied.Records {
		skip[r["id"].(string)] = true // never readable
	}
	reconcile(t, read, skip, o)
}

// TestStockS3InputConnectionResetMidObject: the stock aws_s3 input in
// listing mode (no SQS) with the braze_currents scanner, a fifth of the
// object bodies reset part-way. That input cannot read an object again, so
// the promise is kept the other way: each object cut off is counted as
// unreadable (not as a decode error: a blip is not corruption), named in
// the log, and the run exits with the code that says objects failed; every
// other event is delivered.
func TestStockS3InputConnectionResetMidObject(t *testing.T) {
	exp := newExport(t, gen.Config{Events: 2000, Users: 300, Hours: 2, BlockEvents: 50, Seed: 317})
	s3 := startS3(t, "currents-bucket", exp.objectBodies(t), time.Now().Add(-time.Hour))
	faults := startS3Faults(t, s3.srv, 11)
	faults.reset = 0.2
	emu := startEmulator(t, -1, emulator.Faults{})
	cfg := fmt.Sprintf(`
input:
  aws_s3:
    bucket: currents-bucket
    prefix: currents/
    region: us-east-1
    endpoint: %s
    force_path_style_urls: true
    scanner:
      braze_currents: {}
`, faults.srv.URL) + mapToEmulator(emu.URL) + infoLogs
	logs, code := runToEnd(t, cfg, awsTestEnv(t), 3*time.Minute)
	if faults.spoiledBodies() == 0 {
		t.Fatal("no body was reset: the fault was not injected")
	}
	if code != runstatus.ExitObjectsFailed {
		t.Fatalf("exit code %d, want %d (objects failed):\n%s", code, runstatus.ExitObjectsFailed, tail(logs, 4000))
	}
	if strings.Contains(logs, "could not be decoded") {
		t.Fatalf("a connection reset was taken for a corrupt file:\n%s", tail(logs, 4000))
	}
	lost := map[string]bool{}
	named := 0
	for _, o := range exp.manifest.Objects {
		if !strings.Contains(logs, o.Key+" could not be read to its end (unreadable)") {
			continue
		}
		named++
		for _, r := range o.Records {
			lost[r["id"].(string)] = true
		}
	}
	if named == 0 {
		t.Fatalf("no object was named as cut off:\n%s", tail(logs, 4000))
	}
	o := collect(t, emu, logs)
	read := exp.decodable()
	skip := anonymous(read)
	for id := range lost {
		if _, ok := o.delivered[id]; !ok {
			skip[id] = true // in an object named as cut off, after the reset
		}
	}
	reconcile(t, read, skip, o)
	t.Logf("%d bodies reset; %d objects named as cut off (exit %d); every other event delivered", faults.spoiledBodies(), named, code)
}

// TestRefusesAnHTTPAddressInUse: a run whose HTTP server cannot listen
// (another instance holds the port) refuses to start with an error naming
// the address, instead of running on without /metrics and /ready.
func TestRefusesAnHTTPAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	emu := startEmulator(t, -1, emulator.Faults{})
	env := append(emulatorEnv(emu), "HTTP_ADDRESS="+ln.Addr().String())
	logs, code := runToEnd(t, mustReadString(t, shippedConfig(t, "emulator.yaml")), env, time.Minute)
	if code != 1 || !strings.Contains(logs, "http.address "+ln.Addr().String()) || !strings.Contains(logs, "address already in use") {
		t.Fatalf("exit %d, want 1 with an error naming the address:\n%s", code, tail(logs, 2000))
	}
	if emu.Stats().Requests != 0 {
		t.Fatal("the run went on")
	}
}

func mustReadString(t *testing.T, path string) string { return string(mustRead(t, path)) }
