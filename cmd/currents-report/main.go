// Command currents-report says how far the braze_currents input of a
// pipeline got through its export: per `date=` hour and event type, how many
// objects exist, are completed, failed, quarantined or pending, and the
// oldest pending hour. It re-queues failed or quarantined objects. It reads
// the pipeline's own config, so it lists the same objects (url, event types,
// since/until, shard) and reads the same checkpoint cache and quarantine.
//
//	currents-report -c pipeline.yaml [-r resources.yaml] [-label L] [-all-shards] [-json]
//	currents-report -c pipeline.yaml requeue [-force] <object key>...
//
// See docs/guides/operating.md, "Progress and re-queueing".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	// The components of the distribution, so that any pipeline it runs
	// parses here too.
	_ "github.com/currents-mparticle/currents-mparticle/internal/distribution"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// run is the command; it returns the exit code: 0, 1 on an error, 2 on a
// usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("currents-report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("c", "", "the pipeline's config `file` (required)")
	var resources listFlag
	fs.Var(&resources, "r", "a resources `file` the pipeline is run with, as Benthos's -r (repeatable)")
	label := fs.String("label", "", "the `label` of the braze_currents input, when the config has several")
	allShards := fs.Bool("all-shards", false, "count every shard's objects, not only those of the config's shard.index")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  currents-report -c pipeline.yaml [-r resources.yaml] [-label L] [-all-shards] [-json]
      per date= hour and event type: objects, completed, failed, quarantined, pending
  currents-report -c pipeline.yaml requeue [-force] <object key>...
      delete the objects' quarantine records and checkpoints so the input reads them again

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "currents-report: -c <pipeline config> is required")
		fs.Usage()
		return 2
	}
	rest := fs.Args()
	requeueing := len(rest) > 0 && rest[0] == "requeue"
	force := false
	var objects []string
	switch {
	case requeueing:
		rq := flag.NewFlagSet("currents-report requeue", flag.ContinueOnError)
		rq.SetOutput(stderr)
		rq.BoolVar(&force, "force", false, "re-queue completed objects too (their events are sent again)")
		if err := rq.Parse(rest[1:]); err != nil {
			return 2
		}
		if objects = rq.Args(); len(objects) == 0 {
			fmt.Fprintln(stderr, "currents-report requeue: give the full key of at least one object, as the report prints it")
			return 2
		}
	case len(rest) > 0:
		fmt.Fprintf(stderr, "currents-report: unknown command %q\n", rest[0])
		fs.Usage()
		return 2
	}

	s, err := loadSettings(*configPath, resources, *label, time.Now())
	if err == nil {
		if requeueing {
			err = requeue(ctx, stdout, s, objects, force)
		} else {
			var r report
			if r, err = survey(ctx, s, *allShards); err == nil {
				if *asJSON {
					err = r.writeJSON(stdout)
				} else {
					err = r.writeText(stdout, *configPath)
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "currents-report:", err)
		return 1
	}
	return 0
}
