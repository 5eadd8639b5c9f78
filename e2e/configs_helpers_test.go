package e2e

// Helpers of the tests that run the shipped configs/*.yaml, by path, with
// environment variables only, against real protocol servers on loopback.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// shippedConfig is the absolute path of a config of configs/.
func shippedConfig(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// underCI tells whether the tests run under CI, where every server must be
// there: a missing one is a failure, never a skip.
func underCI() bool { return os.Getenv("CI") != "" }

// allowSkipEnv names the variable that lets a test skip when a server it
// needs is missing, outside CI: `go test ./...` must not print `ok` over
// tests it did not run.
const allowSkipEnv = "CURRENTS_ALLOW_SKIP"

// needTool returns the path of a server's command. A missing one fails the
// test, naming what to install, unless CURRENTS_ALLOW_SKIP=1 is set outside
// CI, which skips it (go test -v lists the skips).
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if underCI() || os.Getenv(allowSkipEnv) == "" {
		t.Fatalf("%s is not on PATH (%s): this test cannot run without it. .ci/run installs every server the tests need; %s=1 skips the tests that need a missing one", name, install, allowSkipEnv)
	}
	t.Skipf("%s is not on PATH (%s; .ci/run installs it): skipped, as %s asks", name, install, allowSkipEnv)
	return ""
}

// freeAddr returns a free 127.0.0.1 port as host:port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// baseEnv is the test process's environment without anything a shipped
// config or a cloud SDK reads, so the variables a test sets are all there is.
func baseEnv() []string {
	drop := []string{"MPARTICLE_", "CURRENTS_", "AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR_HOST", "CHECKPOINT_",
		"DEAD_LETTER_", "REPLAY_", "SHARD_", "HTTP_ADDRESS", "CLOUDSDK_"}
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range drop {
			if strings.HasPrefix(kv, p) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// emulatorEnv points a shipped config's mparticle output at the emulator,
// with each feed's own key and secret.
func emulatorEnv(emu *emulator.Server) []string {
	env := []string{"MPARTICLE_URL=" + emu.URL}
	for _, f := range []string{"ios", "android", "web", "unbound"} {
		up := strings.ToUpper(f)
		env = append(env, "MPARTICLE_"+up+"_KEY="+feedCreds[f].Key, "MPARTICLE_"+up+"_SECRET="+feedCreds[f].Secret)
	}
	return env
}

// awsTestEnv gives the AWS SDKs static credentials and keeps shared config
// files and the instance metadata service out.
func awsTestEnv(t *testing.T) []string {
	dir := t.TempDir()
	return []string{"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret-test", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true"}
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// binProc is one running instance of the binary on a shipped config.
type binProc struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// runShipped starts the binary on the config at path, in dir (its working
// directory: relative paths of the config resolve there) with env on top
// of baseEnv.
func runShipped(t *testing.T, name, path, dir string, env []string) *binProc {
	t.Helper()
	cmd := exec.Command(binary, "-c", path)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	p := &binProc{name: name, cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to end by itself within d and fails the test
// unless it exits 0.
func (p *binProc) wait(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not end within %v:\n%s", p.name, d, tail(p.logs.String(), 4000))
	}
	if p.err != nil {
		t.Fatalf("%s: %v\n%s", p.name, p.err, tail(p.logs.String(), 4000))
	}
	return p.logs.String()
}

// terminate sends SIGTERM and expects a clean exit (status 0) within 30 s.
func (p *binProc) terminate(t *testing.T) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: SIGTERM: %v", p.name, err)
	}
	return p.wait(t, 30*time.Second)
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *binProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: SIGKILL: %v", p.name, err)
	}
	<-p.done
}

func (p *binProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// poll calls cond every 20 ms until it holds or d has passed; it fails the
// test with what() when the deadline passes, or when one of procs exits.
func poll(t *testing.T, d time.Duration, what func() string, cond func() bool, procs ...*binProc) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("%s exited (%v) while waiting for: %s\n%s", p.name, p.err, what(), tail(p.logs.String(), 4000))
			}
		}
		if time.Now().After(deadline) {
			var logs string
			for _, p := range procs {
				logs += "\n--- " + p.name + "\n" + tail(p.logs.String(), 3000)
			}
			t.Fatalf("not reached within %v: %s%s", d, what(), logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric sums the values of a Prometheus metric (all label sets) served at
// addr/metrics; -1 when the endpoint does not answer yet.
func metric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	sum := 0.0
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// readDLQDir reads every dead-letter file (*.jsonl) of a folder.
func (o *outcome) readDLQDir(t *testing.T, dir string) (files []string) {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m {
		o.readDLQFile(t, f)
	}
	return m
}

// dlqLines counts the lines of the dead-letter files of a folder.
func dlqLines(t *testing.T, dir string) int {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	n := 0
	for _, f := range m {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += bytes.Count(b, []byte("\n"))
	}
	return n
}

// startRedis starts a redis-server of its own on a free loopback port, with
// a temporary folder and no persistence, and returns its redis:// url.
func startRedis(t *testing.T) string {
	t.Helper()
	path := needTool(t, "redis-server", "Debian package redis-server")
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", port, "--dir", dir, "--save", "", "--appendonly", "no",
		"--protected-mode", "yes", "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if reply, err := redisCommand(addr, "PING"); err == nil && reply == "+PONG" {
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server does not answer PING")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://" + addr
}

// redisCommand sends one inline command and returns the first reply line.
func redisCommand(addr, command string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", command); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// redisKeys counts the keys of a redis:// url's database 0.
func redisKeys(t *testing.T, url string) int {
	t.Helper()
	reply, err := redisCommand(strings.TrimPrefix(url, "redis://"), "DBSIZE")
	if err != nil || !strings.HasPrefix(reply, ":") {
		t.Fatalf("DBSIZE: %q %v", reply, err)
	}
	n, _ := strconv.Atoi(reply[1:])
	return n
}

// objectBodies reads every object of an export from disk, by key.
func (e export) objectBodies(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, o := range e.manifest.Objects {
		b, err := os.ReadFile(filepath.Join(e.dir, filepath.FromSlash(o.Key)))
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = b
	}
	return out
}

// countDelivered counts the distinct events delivered, and the recordings
// beyond the first of each.
func countDelivered(o outcome) (events, duplicates int) {
	for _, n := range o.delivered {
		events++
		duplicates += n - 1
	}
	return events, duplicates
}

// watchedTwice runs a shipped watch-mode config (braze_currents input with
// checkpoints in Redis and the s3.yaml dead letter) over exp: until every
// object is completed or failed, then SIGTERM (clean exit); it reconciles
// every event exactly, then runs the config again, which must skip every
// object from its checkpoints and send nothing.
func watchedTwice(t *testing.T, cfgName, server string, env []string, exp export, emu *emulator.Server, dlqDir, httpAddr, redis string) {
	t.Helper()
	cfg := shippedConfig(t, cfgName)
	work := t.TempDir()
	objects := len(exp.manifest.Objects)
	first := runShipped(t, cfgName, cfg, work, env)
	poll(t, 3*time.Minute, func() string { return "every object completed or failed" }, func() bool {
		return metric(httpAddr, "currents_objects_completed")+metric(httpAddr, "currents_objects_failed") >= float64(objects)
	}, first)
	logs := first.terminate(t)
	o := collect(t, emu, logs)
	o.readDLQDir(t, dlqDir)
	read := exp.decodable()
	anon := anonymous(read)
	reconcile(t, read, anon, o)
	for id, reason := range o.deadLettered {
		if !strings.HasPrefix(reason, "mparticle rejected") {
			t.Fatalf("event %s dead-lettered with %q, want the emulator's rejection", id, reason)
		}
	}
	keys := redisKeys(t, redis)
	if keys != objects+1 {
		t.Errorf("redis holds %d keys, want a checkpoint per object (%d) and the probe", keys, objects)
	}
	delivered, dupes := countDelivered(o)
	t.Logf("configs/%s against %s, redis-server and the emulator: %d objects, read %d = delivered %d + dropped %d + dead-lettered %d, duplicates %d; stopped by SIGTERM, exit 0",
		cfgName, server, objects, len(read), delivered, len(anon), len(o.deadLettered), dupes)

	before := emu.Stats()
	dlqBefore := dlqLines(t, dlqDir)
	second := runShipped(t, cfgName+" (again)", cfg, work, env)
	poll(t, 2*time.Minute, func() string { return "every object skipped as checkpointed" }, func() bool {
		return metric(httpAddr, "currents_objects_skipped") >= float64(objects)
	}, second)
	readAgain := metric(httpAddr, "currents_objects_read")
	second.terminate(t)
	after := emu.Stats()
	if after.Requests != before.Requests || readAgain != 0 || dlqLines(t, dlqDir) != dlqBefore {
		t.Fatalf("the second run read %v objects and sent %d requests (%d events); want nothing", readAgain, after.Requests-before.Requests, after.Events-before.Events)
	}
	t.Logf("configs/%s second run: %d objects skipped from the redis checkpoints, 0 objects read, 0 requests", cfgName, objects)
}

// deliveredNow counts the distinct events the emulator holds.
func deliveredNow(t *testing.T, emu *emulator.Server) int {
	return len(collect(t, emu, "").delivered)
}
