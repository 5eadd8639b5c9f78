// Command mparticle-emulator serves an emulation of mParticle's server-to-server
// Events API for local runs and end-to-end tests of the Currents → mParticle
// pipeline. It prints the base URL to configure clients with, logs one line per
// request (never credentials or batch content) and stops gracefully on SIGINT or
// SIGTERM.
//
//	mparticle-emulator -addr 127.0.0.1:8080 \
//	    -feed ios=IOS_KEY:IOS_SECRET -feed unbound=UB_KEY:UB_SECRET \
//	    -rate 270 -fault-5xx 0.1 -fault-reset 0.05 -latency 50ms \
//	    -fault-403-for 10m -fault-202-errors 0.1 -seed 42
//
// Accepted batches and counters are at /_emulator/batches and /_emulator/stats;
// faults can be changed at runtime with PUT /_emulator/faults (see package
// emulator for every endpoint and rule).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// feedFlags collects repeated -feed name=KEY:SECRET flags. Set never fails:
// the flag package would echo the rejected value, secret included, so problems
// are kept and reported by name after parsing.
type feedFlags struct {
	creds map[string]emulator.Credentials
	errs  []error
}

func (f *feedFlags) String() string {
	if f == nil {
		return ""
	}
	names := make([]string, 0, len(f.creds))
	for name := range f.creds {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

func (f *feedFlags) Set(v string) error {
	name, creds, ok := strings.Cut(v, "=")
	key, secret, hasSecret := strings.Cut(creds, ":")
	switch {
	case !ok || name == "":
		f.errs = append(f.errs, errors.New("-feed: want name=KEY:SECRET"))
	case !hasSecret || key == "" || secret == "":
		f.errs = append(f.errs, fmt.Errorf("-feed %s: want name=KEY:SECRET", name))
	default:
		if _, dup := f.creds[name]; dup {
			f.errs = append(f.errs, fmt.Errorf("-feed %s: given twice", name))
			return nil
		}
		f.creds[name] = emulator.Credentials{Key: key, Secret: secret}
	}
	return nil
}

// run is main without the process: it returns the exit code, so tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mparticle-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	feeds := &feedFlags{creds: map[string]emulator.Credentials{}}
	var (
		addr          = fs.String("addr", "127.0.0.1:8080", "listen address (host:port; port 0 picks a free port)")
		rate          = fs.Float64("rate", emulator.DefaultBatchesPerSecond, "batches per second before 429 (negative: unlimited)")
		fault5xx      = fs.Float64("fault-5xx", 0, "share (0..1) of requests answered 503")
		faultReset    = fs.Float64("fault-reset", 0, "share (0..1) of requests whose connection is reset before processing")
		faultResetAck = fs.Float64("fault-reset-after-accept", 0, "share (0..1) of accepted requests whose connection is reset instead of answering 202")
		latency       = fs.Duration("latency", 0, "delay added to every API response")
		forbidFor     = fs.Duration("fault-403-for", 0, "answer 403 to every authenticated request for this long after start")
		forbidNext    = fs.Int("fault-403-next", 0, "answer 403 to the next N authenticated requests")
		forbidFeeds   = fs.String("fault-403-feeds", "", "comma-separated feeds the 403 faults apply to (default: all)")
		fault202      = fs.Float64("fault-202-errors", 0, "share (0..1) of bulk batches failed inside a 202 answer")
		seed          = fs.Int64("seed", 1, "seed of the fault sequence")
		keep          = fs.Int("keep", 0, "accepted batches kept for /_emulator/batches: 0 all, N the latest N, -1 none (for long soaks; counters and deduplication cover every batch)")
	)
	fs.Var(feeds, "feed", "feed credentials as name=KEY:SECRET (repeatable; names: ios, android, web, unbound)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return 2
	}
	if len(feeds.errs) > 0 {
		fmt.Fprintln(stderr, errors.Join(feeds.errs...))
		return 2
	}
	if len(feeds.creds) == 0 {
		fmt.Fprintln(stderr, "at least one -feed name=KEY:SECRET is required")
		return 2
	}
	if *rate == 0 {
		fmt.Fprintln(stderr, "-rate 0 would refuse everything; use a negative rate for unlimited")
		return 2
	}

	faults := emulator.Faults{
		Seed:                 *seed,
		ServerErrorRate:      *fault5xx,
		ResetRate:            *faultReset,
		ResetAfterAcceptRate: *faultResetAck,
		Latency:              *latency,
		ForbiddenNext:        *forbidNext,
		BatchErrorRate:       *fault202,
	}
	if *forbidFor > 0 {
		faults.ForbiddenFrom = time.Now()
		faults.ForbiddenUntil = faults.ForbiddenFrom.Add(*forbidFor)
	}
	if *forbidFeeds != "" {
		faults.ForbiddenFeeds = strings.Split(*forbidFeeds, ",")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := emulator.Start(*addr, emulator.Config{
		Feeds:            feeds.creds,
		BatchesPerSecond: *rate,
		Faults:           faults,
		Logger:           logger,
		KeepBatches:      *keep,
	})
	if err != nil {
		fmt.Fprintf(stderr, "mparticle-emulator: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "mparticle-emulator listening on %s\n", srv.URL)
	logger.Info("started", "url", srv.URL, "feeds", feeds.String(), "rate", *rate)

	<-ctx.Done()
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Error("shutdown", "error", err)
		return 1
	}
	st := srv.Stats()
	logger.Info("stopped", "requests", st.Requests, "batches", st.Batches, "events", st.Events,
		"duplicates", st.Duplicates, "failed_batches", st.FailedBatches, "resets", st.Resets)
	return 0
}
