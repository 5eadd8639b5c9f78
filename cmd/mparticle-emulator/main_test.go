package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the emulator command built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mparticle-emulator-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mparticle-emulator")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var urlLine = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+/v2)`)

const validBatch = `{"schema_version":2,"environment":"production","source_request_id":"r-1",` +
	`"user_identities":{"customer_id":"u-1"},"events":[{"event_type":"custom_event",` +
	`"data":{"event_name":"Email Opens","custom_event_type":"other","timestamp_unixtime_ms":1719500000000,` +
	`"source_message_id":"3f1c9a52-7d4b-4e8a-b6c1-2a9d8e7f6b50"}}]}`

// startBinary runs the built command with args and returns its base URL, a
// function that stops it with SIGTERM and returns its exit code, and its stderr.
func startBinary(t *testing.T, args ...string) (baseURL string, stop func() int, stderr *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if m := urlLine.FindStringSubmatch(lines.Text()); m != nil {
			baseURL = m[1]
			break
		}
	}
	if baseURL == "" {
		_ = cmd.Wait()
		t.Fatalf("no URL printed; stderr:\n%s", stderr)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	stop = func() int {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	return baseURL, stop, stderr
}

func post(t *testing.T, url, key, secret, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(key, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestBinaryServesAndShutsDown(t *testing.T) {
	base, stop, stderr := startBinary(t, "-addr", "127.0.0.1:0",
		"-feed", "ios=IOSKEY:IOSSECRET", "-feed", "unbound=UBKEY:UBSECRET:WITH:COLONS",
		"-fault-403-next", "1", "-fault-403-feeds", "ios", "-seed", "5")

	if resp := post(t, base+"/events", "IOSKEY", "IOSSECRET", validBatch); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("first ios request: %d, want 403 from -fault-403-next", resp.StatusCode)
	}
	if resp := post(t, base+"/events", "IOSKEY", "IOSSECRET", validBatch); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("second ios request: %d, want 202", resp.StatusCode)
	}
	if resp := post(t, base+"/bulkevents", "UBKEY", "UBSECRET:WITH:COLONS", "["+validBatch+"]"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("unbound bulk: %d, want 202", resp.StatusCode)
	}
	if resp := post(t, base+"/events", "UBKEY", "wrong", validBatch); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong secret: %d, want 403", resp.StatusCode)
	}

	resp, err := http.Get(strings.TrimSuffix(base, "/v2") + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Requests int `json:"requests"`
		Batches  int `json:"batches"`
		Feeds    map[string]struct {
			Batches int `json:"batches"`
		} `json:"feeds"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Requests != 4 || st.Batches != 2 || st.Feeds["ios"].Batches != 1 || st.Feeds["unbound"].Batches != 1 {
		t.Fatalf("stats = %+v (%v)", st, err)
	}

	if code := stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, stderr)
	}
	logs := stderr.String()
	for _, secret := range []string{"IOSSECRET", "UBSECRET", "IOSKEY", "UBKEY", "u-1"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
	if strings.Count(logs, "msg=request") != 4 || !strings.Contains(logs, "msg=stopped") {
		t.Errorf("want 4 request lines and a stop line, got:\n%s", logs)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	cases := map[string][]string{
		"no feed":         {"-addr", "127.0.0.1:0"},
		"feed without =":  {"-feed", "ios"},
		"feed no secret":  {"-feed", "ios=KEY"},
		"feed twice":      {"-feed", "ios=A:B", "-feed", "ios=C:D"},
		"zero rate":       {"-feed", "ios=A:B", "-rate", "0"},
		"extra arguments": {"-feed", "ios=A:B", "extra"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), args, &out, &errOut); code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, errOut.String())
			}
			if strings.Contains(errOut.String(), "A:B") || strings.Contains(errOut.String(), "C:D") {
				t.Errorf("stderr shows credentials: %s", errOut.String())
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-feed", "ios=A:B", "-fault-5xx", "2"}, &out, &errOut); code != 1 {
		t.Fatalf("invalid fault rate: exit code %d, want 1; stderr:\n%s", code, errOut.String())
	}
}

func TestRunInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	var errOut bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-feed", "web=K:S", "-rate", "-1", "-fault-5xx", "1"}, pw, &errOut)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	m := urlLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no URL in %q", line)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if resp := post(t, m[1]+"/events", "K", "S", validBatch); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 from -fault-5xx 1", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(time.Minute): // a hang guard, not a timing assertion
		t.Fatal("run did not return after cancel")
	}
}
