// Command inprocess decodes Currents files and maps every event to an
// mParticle batch in one goroutine, with the plain-Go library only (no
// Benthos), and prints the CPU time per event: the work itself, against
// which bench/ratio.sh sets the CPU per event through the binary.
//
//	go run ./bench/inprocess FILE...
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	runtime.GOMAXPROCS(1)
	m, err := mparticle.New(mparticle.Options{})
	if err != nil {
		fail(err)
	}
	buf := make([]byte, 0, 256<<10)
	var events, mapped int
	start, wall := cpu(), time.Now()
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fail(err)
		}
		r, err := currents.NewReader(f, currents.ReaderOptions{Object: path})
		if err != nil {
			fail(err)
		}
		for {
			evs, err := r.NextBlock()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fail(err)
			}
			// In sessions of up to 500 events, as the processor maps the
			// scanner's message batches.
			for len(evs) > 0 {
				n := min(len(evs), 500)
				se := m.Session()
				for _, ev := range evs[:n] {
					var res mparticle.Result
					buf, res, err = se.AppendBatch(buf[:0], ev)
					if err == nil && res.Dropped == "" {
						mapped++
					}
				}
				se.Close()
				events += n
				evs = evs[n:]
			}
		}
		r.Close()
		f.Close()
	}
	used := cpu() - start
	fmt.Printf("inprocess events %d mapped %d cpu_s %.3f wall_s %.3f cpu_ns_per_event %.0f\n",
		events, mapped, used.Seconds(), time.Since(wall).Seconds(), float64(used.Nanoseconds())/float64(max(events, 1)))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "inprocess:", err)
	os.Exit(1)
}
