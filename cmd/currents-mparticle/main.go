// Command currents-mparticle is a Benthos distribution with the Braze
// Currents and mParticle plugins of this project and the stock components a
// Currents user needs (files, AWS, GCP, Azure, Kafka, Redis, Prometheus,
// OpenTelemetry). It takes Benthos's CLI: -c, lint, test, list, blobl, echo.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/internal/runstatus"

	// Every component of the distribution.
	_ "github.com/currents-mparticle/currents-mparticle/internal/distribution"
)

// Set at build time: -ldflags "-X main.version=v1.2.3 -X main.dateBuilt=2026-11-28T10:00:00Z".
var (
	version   = ""
	dateBuilt = ""
)

func main() {
	// Benthos's own --version reports Benthos's module version; ours says
	// which build of this distribution runs, and on which Benthos.
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-v") {
		fmt.Print(versionText())
		return
	}
	setMemoryLimit()
	service.RunCLI(context.Background())
	// Benthos returns here when a stream ended by itself or was stopped
	// cleanly; what it could not deliver is ours to say.
	if n := runstatus.FailedObjects(); n > 0 {
		fmt.Fprintf(os.Stderr, "currents-mparticle: %d objects failed in this run and were not delivered whole (exit code %d)\n", n, runstatus.ExitObjectsFailed)
		os.Exit(runstatus.ExitObjectsFailed)
	}
}

// memoryLimitShare is the share of the container's memory the Go runtime
// aims to stay under when GOMEMLIMIT is not set: the rest is left to the
// binary's own pages, stacks and what the kernel counts beside the heap.
const memoryLimitShare = 0.75

// setMemoryLimit gives the Go runtime a soft memory limit when GOMEMLIMIT
// is not set and the process runs under a cgroup memory limit (a container,
// a systemd unit): the garbage collector then works harder as the heap
// nears the limit instead of letting the container be killed. Outside a
// memory-limited cgroup nothing changes.
func setMemoryLimit() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return
	}
	if limit := cgroupMemoryLimit(); limit > 0 {
		debug.SetMemoryLimit(int64(float64(limit) * memoryLimitShare))
	}
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup (v2
// memory.max, else v1 memory.limit_in_bytes), or 0 when there is none.
func cgroupMemoryLimit() int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		// "max", or v1's "no limit" (a number near 2^63), mean none.
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0
		}
		return n
	}
	return 0
}

func versionText() string {
	v, built, benthos := version, dateBuilt, "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, d := range info.Deps {
			if d.Path == "github.com/benthosdev/benthos/v4" {
				benthos = d.Version
			}
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && v == "" {
				v = "dev-" + s.Value
			}
			if s.Key == "vcs.time" && built == "" {
				built = s.Value
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if built == "" {
		built = "unknown"
	}
	return fmt.Sprintf("currents-mparticle %s\nBuilt: %s\nBenthos: %s\n", v, built, benthos)
}
