package linefile

import (
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
)

// A write that runs out of room part-way (the file size limit stands in
// for a full disk: the kernel writes what fits, then refuses) returns its
// error and leaves only whole lines; the same line written again once there
// is room follows them, not half of itself.
func TestWriteOutOfRoomKeepsWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	f, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	limit := old
	limit.Cur = 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	werr := f.Write([]byte("a line longer than the room left\n"))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if werr == nil {
		t.Fatal("a write past the file size limit succeeded")
	}
	if got, _ := os.ReadFile(path); string(got) != "one\n" {
		t.Fatalf("after the failed write the file holds %q", got)
	}
	if err := f.Write([]byte("a line longer than the room left\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "one\na line longer than the room left\n" {
		t.Fatalf("after the retry the file holds %q", got)
	}
}
