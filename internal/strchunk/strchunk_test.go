package strchunk

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"
	"weak"
)

func TestCloneCopiesIntoSharedChunks(t *testing.T) {
	c := Chunks{Size: 16}
	src := []byte("event-1event-2 a longer string than one chunk")
	in := []string{unsafe.String(&src[0], 7), unsafe.String(&src[7], 7), string(src[15:]), ""}
	var out []string
	for _, s := range in {
		out = append(out, c.Clone(s))
	}
	// The copies keep their values when the source changes.
	copy(src, strings.Repeat("x", len(src)))
	want := []string{"event-1", "event-2", "a longer string than one chunk", ""}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("copy %d: %q, want %q", i, out[i], want[i])
		}
	}
	// The first two share a chunk; the long one has its own.
	if unsafe.StringData(out[1]) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(out[0])), 7)) {
		t.Error("two short copies do not share a chunk")
	}
}

// A copy does not keep its source alive: that is what the package is for.
func TestCloneDoesNotPinTheSource(t *testing.T) {
	block := make([]byte, 1<<20)
	copy(block, "event-1")
	alive := weak.Make(&block[0])
	var c Chunks
	id := c.Clone(unsafe.String(&block[0], 7))
	block = nil
	runtime.GC()
	if alive.Value() != nil {
		t.Fatal("the copy keeps its source alive")
	}
	if id != "event-1" {
		t.Fatalf("copy %q", id)
	}
}

func BenchmarkClone(b *testing.B) {
	var c Chunks
	s := "0d2f378f-a910-4ca9-b77e-82348f9b1000"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = c.Clone(s)
	}
}
