package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The child of TestKillLosesNothingWritten: write until killed.
	if dir := os.Getenv("STORE_TEST_CHILD_DIR"); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		w := bufio.NewWriter(os.Stdout)
		for i := 0; ; i++ {
			k := []byte("checkpoint/" + strconv.Itoa(i))
			if err := s.Set(k, []byte(`{"status":"completed","object":"`+strconv.Itoa(i)+`"}`), 0); err != nil {
				fmt.Println("set:", err)
				os.Exit(1)
			}
			// Acknowledged: the parent may count on it.
			fmt.Fprintln(w, i)
			w.Flush()
		}
	}
	os.Exit(m.Run())
}

func TestValuesTTLAndAdd(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	s, err := Open(dir, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("a"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("b"), []byte("2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMany([]Entry{{Key: []byte("c"), Value: []byte("3")}, {Key: []byte("d"), Value: nil}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add([]byte("a"), []byte("x"), 0); !errors.Is(err, ErrExists) {
		t.Fatalf("Add over a value: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened: everything is there; b expires with the clock.
	if s, err = Open(dir, Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, want := range map[string]string{"a": "1", "b": "2", "c": "3", "d": ""} {
		if v, found, err := s.Get([]byte(k)); err != nil || !found || string(v) != want {
			t.Fatalf("%s after reopening: %q %v %v, want %q", k, v, found, err, want)
		}
	}
	now = now.Add(time.Hour)
	if _, found, _ := s.Get([]byte("b")); found {
		t.Fatal("b outlived its TTL")
	}
	if n, err := s.Sweep(); err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v), want the expired one", n, err)
	}
	if err := s.Add([]byte("b"), []byte("again"), 0); err != nil {
		t.Fatalf("Add over an expired value: %v", err)
	}
	if err := s.Delete([]byte("zzz")); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
}

// A process killed (SIGKILL) while it writes loses none of the writes it
// was told had been made. Run 5 times, killed at different points. (With
// Pebble's unsynced writes it failed: the last writes acknowledged were
// still in its log writer's buffer.)
func TestKillLosesNothingWritten(t *testing.T) {
	for run := range 5 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "STORE_TEST_CHILD_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		acked := -1
		for sc.Scan() && acked < 500*(run+1) {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("child: %s", sc.Text())
			}
			acked = n
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() { // what it acknowledged before the kill landed
			if n, err := strconv.Atoi(sc.Text()); err == nil {
				acked = n
			}
		}
		_ = cmd.Wait()
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i <= acked; i++ {
			v, found, err := s.Get([]byte("checkpoint/" + strconv.Itoa(i)))
			if err != nil || !found || string(v) != `{"status":"completed","object":"`+strconv.Itoa(i)+`"}` {
				t.Fatalf("run %d: write %d of %d acknowledged before the kill: %q %v %v", run, i, acked, v, found, err)
			}
		}
		s.Close()
		t.Logf("run %d: %d acknowledged writes, all there after the kill", run, acked+1)
	}
}

// A folder another process holds, or one that is not a store, is a clear
// error naming it.
func TestOpenRefusesWithItsFolder(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("opening a store in use: %v, want an error naming %s", err, dir)
	}
}
