// Command currents-mparticle is a Benthos distribution with the Braze
// Currents and mParticle plugins of this project and the stock components a
// Currents user needs (files, AWS, GCP, Azure, Kafka, Redis, Prometheus,
// OpenTelemetry). It takes Benthos's CLI: -c, lint, test, list, blobl, echo.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/benthosdev/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	"github.com/currents-mparticle/currents-mparticle/internal/configlint"
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
	if err := checkConfigs(parseInvocation(os.Args[1:])); err != nil {
		fmt.Fprintf(os.Stderr, "currents-mparticle: %v\n", err)
		os.Exit(1)
	}
	setMemoryLimit()
	// Benthos stops on these signals as well; told too, main knows the
	// run did not end by itself.
	stopped := make(chan os.Signal, 1)
	signal.Notify(stopped, os.Interrupt, syscall.SIGTERM)
	service.RunCLI(context.Background())
	// Benthos returns here when a stream ended by itself or was stopped
	// cleanly; what it could not deliver is ours to say. A follower stopped
	// by a signal exits 0: its failures are in the log, metrics and report.
	if n := runstatus.FailedObjects(); n > 0 && len(stopped) == 0 {
		fmt.Fprintf(os.Stderr, "currents-mparticle: %d objects failed in this run and were not delivered whole (exit code %d)\n", n, runstatus.ExitObjectsFailed)
		os.Exit(runstatus.ExitObjectsFailed)
	}
}

// invocation is what the distribution reads of its command line before
// Benthos does: the Benthos subcommand, if any, and the config files named
// (`-c`/`--config`, and the paths of `lint`).
type invocation struct {
	command string
	configs []string
}

// benthosCommands are the subcommands of Benthos's CLI: with one of them
// no stream of the -c config runs here.
var benthosCommands = map[string]bool{"lint": true, "echo": true, "test": true, "list": true, "blobl": true,
	"create": true, "studio": true, "template": true, "streams": true}

func parseInvocation(args []string) invocation {
	var inv invocation
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case inv.command == "" && benthosCommands[a]:
			inv.command = a
		case (a == "-c" || a == "--config") && i+1 < len(args):
			inv.configs = append(inv.configs, args[i+1])
			i++
		case strings.HasPrefix(a, "-c=") || strings.HasPrefix(a, "--config="):
			inv.configs = append(inv.configs, a[strings.Index(a, "=")+1:])
		case inv.command == "lint" && !strings.HasPrefix(a, "-"):
			inv.configs = append(inv.configs, a)
		}
	}
	return inv
}

// checkConfigs reads each config of the command line once, prints
// internal/configlint's warnings for it (what Benthos's lint cannot see),
// and, for a run of a stream, refuses an HTTP address that cannot be
// listened on (checkHTTPAddress). A file it cannot read or parse is left to
// Benthos to report.
func checkConfigs(inv invocation) error {
	for _, p := range inv.configs {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if warnings, err := configlint.Check(raw); err == nil {
			for _, w := range warnings {
				fmt.Fprintf(os.Stderr, "%s: warning: %s\n", p, w)
			}
		}
		if inv.command == "" {
			if err := checkHTTPAddress(raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkHTTPAddress refuses a run whose HTTP server cannot listen: Benthos
// logs a failed bind and runs on without /metrics and /ready, so a
// pipeline would be up but unwatched, and a probe would kill it later.
// The address is the config's http.address (environment variables
// resolved as Benthos does), or Benthos's default.
func checkHTTPAddress(config []byte) error {
	var conf struct {
		HTTP struct {
			Enabled *bool  `yaml:"enabled"`
			Address string `yaml:"address"`
		} `yaml:"http"`
	}
	if yaml.Unmarshal(config, &conf) != nil {
		return nil
	}
	if conf.HTTP.Enabled != nil && !*conf.HTTP.Enabled {
		return nil
	}
	addr := benthosDefaultHTTPAddress
	if conf.HTTP.Address != "" {
		addr = interpolate(conf.HTTP.Address)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http.address %s: %w: /metrics and /ready could not be served; give this instance an address of its own (HTTP_ADDRESS in the shipped configs) or set http.enabled: false", addr, err)
	}
	return ln.Close()
}

// benthosDefaultHTTPAddress is Benthos's http.address default.
const benthosDefaultHTTPAddress = "0.0.0.0:4195"

// envRef is Benthos's environment variable reference: ${NAME} or
// ${NAME:default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::([^}]*))?\}`)

// interpolate resolves environment variable references as Benthos does.
func interpolate(s string) string {
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := os.LookupEnv(m[1]); ok && v != "" {
			return v
		}
		return m[2]
	})
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
