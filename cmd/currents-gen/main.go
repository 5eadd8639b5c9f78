// Command currents-gen writes a realistic Braze Currents export tree, in
// Braze's exact key layout, for tests, benchmarks and demos.
//
//	currents-gen -out ./export -events 100000 -users 5000 -hours 24 -codec snappy
//	currents-gen -out ./export -profile realistic -events 100000 -hours 2   # message chains, sessions, duplicates
//
// See docs/generator.md for the profiles.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "currents-gen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("currents-gen", flag.ContinueOnError)
	var (
		out       = fs.String("out", "", "folder to write the export tree into (required)")
		types     = fs.String("types", "*", "comma-separated event types or globs (users.messages.email.*); * = all 55 built-in types")
		events    = fs.Int("events", 1000, "total events")
		users     = fs.Int("users", 0, "distinct users (default events/10)")
		start     = fs.String("start", "2026-11-01-00", "first date= hour, YYYY-MM-DD-HH (UTC), or a duration back from now such as 48h")
		hours     = fs.Int("hours", 1, "hours spanned")
		codec     = fs.String("codec", "null", "null, deflate, snappy or zstandard")
		layout    = fs.String("layout", "schema_id", "key layout: schema_id, version or 2017")
		older     = fs.String("older", "", "comma-separated event types written with their older schema version; * = all")
		corrupt   = fs.Int("corrupt", 0, "extra corrupt objects (truncated, bad sync, not Avro, corrupt block)")
		seed      = fs.Uint64("seed", 1, "random seed; the same seed writes the same tree")
		blockEvts = fs.Int("block-events", 500, "events per Avro block")
		fileEvts  = fs.Int("file-events", 15000, "most events per file")
		prefix    = fs.String("prefix", "currents", "key prefix")
		anon      = fs.Float64("anonymous", 0.1, "share of users without external_user_id (negative: none)")
		manifest  = fs.String("manifest", "", "also write a JSON manifest of the objects to this file")
		profile   = fs.String("profile", "default", "default (independent events) or realistic (campaign and canvas chains, sessions of active users, Braze's duplicates; see docs/generator.md)")
		dups      = fs.Float64("duplicates", 0.01, "realistic profile: share of events Braze writes twice, same id, in another file (negative: none)")
		propBytes = fs.Int("property-bytes", 0, "pad the properties of CustomEvents to about this many bytes of JSON (Braze allows about 50 KB)")
		list      = fs.Bool("list-types", false, "print the built-in event types and exit")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: currents-gen -out DIR [flags]\n\nWrites a Braze Currents export tree (Avro files in Braze's key layout).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list {
		fmt.Println(strings.Join(schemas.Names(), "\n"))
		return nil
	}
	if *out == "" {
		fs.Usage()
		return fmt.Errorf("-out is required")
	}
	selected, err := selectTypes(*types)
	if err != nil {
		return err
	}
	startTime, err := parseStart(*start)
	if err != nil {
		return err
	}
	cfg := gen.Config{
		Prefix: *prefix, EventTypes: selected, Events: *events, Users: *users, Start: startTime, Hours: *hours,
		Codec: *codec, Layout: gen.Layout(*layout), CorruptFiles: *corrupt, Seed: *seed,
		BlockEvents: *blockEvts, FileEvents: *fileEvts, NoExternalIDShare: *anon,
		Profile: *profile, DuplicateShare: *dups, PropertyBytes: *propBytes,
	}
	if *older != "" {
		cfg.OlderSchema = strings.Split(*older, ",")
	}
	switch cfg.Layout {
	case gen.LayoutSchemaID, gen.LayoutVersion, gen.Layout2017:
	default:
		return fmt.Errorf("-layout %q: want schema_id, version or 2017", *layout)
	}
	m, err := gen.Generate(cfg, gen.DirSink(*out))
	if err != nil {
		return err
	}
	if *manifest != "" {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*manifest, b, 0o644); err != nil {
			return err
		}
	}
	bad := 0
	for _, o := range m.Objects {
		if o.Corrupt != "" {
			bad++
		}
	}
	fmt.Fprintf(os.Stderr, "currents-gen: wrote %d objects (%d corrupt), %d events (%d decodable, %d duplicates) of %d types under %s\n",
		len(m.Objects), bad, m.Events(), m.GoodEvents(), m.Duplicates(), len(selected), *out)
	return nil
}

func selectTypes(spec string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, pat := range strings.Split(spec, ",") {
		pat = strings.TrimSpace(pat)
		matched := false
		for _, n := range schemas.Names() {
			if ok, err := path.Match(pat, n); err != nil {
				return nil, fmt.Errorf("-types %q: %w", pat, err)
			} else if ok || pat == "*" {
				matched = true
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
		if !matched {
			return nil, fmt.Errorf("-types %q matches no built-in event type (see -list-types)", pat)
		}
	}
	return out, nil
}

func parseStart(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().UTC().Add(-d).Truncate(time.Hour), nil
	}
	t, err := time.Parse("2006-01-02-15", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-start %q: want YYYY-MM-DD-HH or a duration such as 48h", s)
	}
	return t, nil
}
