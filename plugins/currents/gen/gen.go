// Package gen writes realistic Braze Currents export trees: Avro container
// files in Braze's exact key layout, for any set of event types, with users
// that come back again and again, late events, an older schema version for
// some types and, on request, corrupt files. Output is deterministic for a
// seed. Tests, benchmarks and the demo's sample tree use it.
//
// # Profiles
//
// The default profile (Config.Profile "" or ProfileDefault) draws every
// event on its own: a type from a skewed mix (email and push dominate), a
// user from a Zipf-like population, a time within a random hour. One user's
// events are scattered over hours and files at random.
//
// The realistic profile (ProfileRealistic, `currents-gen -profile
// realistic`) draws stories, the way users and Braze produce events, so that
// one user's events sit in several `event_type=` files of the same `date=`
// hour, minutes apart — what the mparticle output's grouping window packs
// into one batch:
//
//   - Users: the population of the default profile (Config.Users, default
//     Events/10; NoExternalIDShare anonymous), each with one device (model,
//     OS version, ad tracking) that all of the user's events agree on, and
//     with identity fields (external_user_id, platform, app_id, device_id,
//     email, phone, …) never null. Activity is Zipf-like (exponent 1.2,
//     offset users/100): with 2,000 users the most active has about 1.5 % of
//     the sessions and the top 10 % about 60 %; the top 10 % also open and
//     click 2.5 times as often.
//   - Messages (about 60 % of the events): campaign sends and canvas steps
//     (40 % canvases, which add a canvas Entry) reach an audience of 1 to
//     min(users/20, 200) distinct users, drawn uniformly, within a minute or
//     so of a random moment. Per channel (email 45 %, push 30 %, SMS 8 %,
//     content card 7 %, in-app 5 %, webhook 3 %, WhatsApp 2 % of blasts),
//     each user's chain unfolds: e.g. email Send → Delivery (seconds; 2 %
//     Bounce, 1 % SoftBounce instead) → Open (20 %, 50 % for active users;
//     about 8 minutes later) → Click (30 % of opens, a minute or two later)
//     → a campaign or canvas Conversion (5 %); push Send → Open (8 %, about
//     5 minutes); SMS Send → CarrierSend → Delivery → ShortLinkClick. The
//     events of one chain share campaign or canvas ids, send_id and
//     dispatch_id.
//   - Sessions (about 37 %): a user drawn by activity starts a session
//     (SessionStart; FirstSession for one new user in twenty), sends custom
//     events (mean 2.5, tens of seconds apart), sometimes a Purchase (12 %),
//     and ends it (SessionEnd with its duration); start and end share the
//     session_id.
//   - Other types (about 3 %, and every selected type at least once):
//     uninstalls, subscription changes, aborts… at random moments.
//   - Queueing: Braze queues server-side events within 30 seconds and SDK
//     events within about a minute, one in fifty hours later; an event goes
//     into the `date=` hour it was queued in, and files are written in queue
//     order. Events that would be queued outside [Start, Start+Hours) are
//     not written (the chain continues in hours not exported).
//   - Duplicates (DuplicateShare, default 1 %; negative: none): Braze's
//     at-least-once delivery. The same event — same record, same id — is
//     written again into another object of the same type, in the same hour
//     (half of them) or the next one, never the object of the original.
//     Object.Duplicates and Manifest.Duplicates count the copies.
//
// Config.Events counts distinct events; duplicates come on top. Only the
// selected EventTypes are written; stories whose types are not selected
// produce nothing, and the budget is filled by the others.
// docs/generator.md describes both profiles for users of cmd/currents-gen.
package gen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/hamba/avro/v2/ocf"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

// Layout selects one of the key layouts Braze has used.
type Layout string

// Key layouts (the layouts Braze has used, as the lister reads them: plugins/currents/objectkey.go).
const (
	LayoutSchemaID Layout = "schema_id" // .../date=<hour>/<schema_id>/<zone>/<file>
	LayoutVersion  Layout = "version"   // .../date=<hour>/version=<N>/<environment>/<file>
	Layout2017     Layout = "2017"      // no cluster id in the names
)

// Config says what to generate. Zero values take the documented defaults.
type Config struct {
	Prefix        string    // key prefix, default "currents"
	Cluster       string    // default "prod-03"
	Connection    string    // S3 (default), GCS or AzureBlob
	IntegrationID string    // default a fixed 24-hex id
	EventTypes    []string  // default every type of package schemas
	Events        int       // total events, default 1000
	Users         int       // distinct users, default Events/10 (at least 1)
	Start         time.Time // first date= hour (UTC), default 2026-11-01T00
	Hours         int       // hours spanned, default 1
	Codec         string    // null (default), deflate, snappy, zstandard
	BlockEvents   int       // events per Avro block, default 500
	FileEvents    int       // max events per file, default 15000 (Braze's)
	Layout        Layout    // default LayoutSchemaID
	// OlderSchema lists types written with their older writer schema
	// (schemas.EventType.Older); "*" means every type that has one.
	OlderSchema []string
	// NoExternalIDShare is the share of users without external_user_id
	// (anonymous users), default 0.1; negative means none.
	NoExternalIDShare float64
	// CorruptFiles adds that many extra corrupt objects (truncated, bad sync,
	// not Avro), named like real ones, each with its own events.
	CorruptFiles int
	Seed         uint64
	// KeepRecords keeps every generated record in the Manifest, so a test can
	// compare decoded values field by field. Costly for large runs.
	KeepRecords bool
	// Profile is how events are drawn: ProfileDefault ("" or "default":
	// independent events) or ProfileRealistic (stories of users: message
	// chains, sessions, Braze's duplicates; see the package documentation).
	Profile string
	// DuplicateShare (ProfileRealistic only) is the share of events Braze
	// writes twice: the same record, same id, in another object of the same
	// or the next hour. Default 0.01; negative means none.
	DuplicateShare float64
	// PropertyBytes pads the properties of every CustomEvent (and the other
	// types with a properties field) to about this many bytes of JSON, as
	// large exports do (Braze allows about 50 KB); 0 keeps them small.
	PropertyBytes int
}

// Object is one written object.
type Object struct {
	Key       string
	EventType string
	Events    int // events written into the object
	// Corrupt describes the damage ("" for a good object); GoodEvents is how
	// many events a reader can still decode before the damage.
	Corrupt    string
	GoodEvents int
	Older      bool // written with the older writer schema
	Size       int
	Records    []map[string]any // when Config.KeepRecords
	// Duplicates is how many events of the object were already written in
	// another object (the same id): Braze's re-deliveries (ProfileRealistic).
	Duplicates int `json:",omitempty"`
}

// Manifest lists what was written, in write order.
type Manifest struct {
	Objects []Object
}

// Events is the total number of events written, good or not.
func (m Manifest) Events() int {
	n := 0
	for _, o := range m.Objects {
		n += o.Events
	}
	return n
}

// Duplicates is the number of events written a second time (Object.Duplicates):
// Events() - Duplicates() events are distinct.
func (m Manifest) Duplicates() int {
	n := 0
	for _, o := range m.Objects {
		n += o.Duplicates
	}
	return n
}

// GoodEvents is the number of events a reader can decode.
func (m Manifest) GoodEvents() int {
	n := 0
	for _, o := range m.Objects {
		if o.Corrupt == "" {
			n += o.Events
		} else {
			n += o.GoodEvents
		}
	}
	return n
}

// Sink receives each object; e.g. a function writing files under a folder.
type Sink func(key string, body []byte) error

func (c *Config) defaults() error {
	if c.Prefix == "" {
		c.Prefix = "currents"
	}
	if c.Cluster == "" {
		c.Cluster = "prod-03"
	}
	if c.Connection == "" {
		c.Connection = "S3"
	}
	if c.IntegrationID == "" {
		c.IntegrationID = "5e1e4d2c9b8a7f6e5d4c3b2a"
	}
	if len(c.EventTypes) == 0 {
		c.EventTypes = schemas.Names()
	}
	if c.Events <= 0 {
		c.Events = 1000
	}
	if c.Users <= 0 {
		c.Users = max(c.Events/10, 1)
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	c.Start = c.Start.UTC().Truncate(time.Hour)
	if c.Hours <= 0 {
		c.Hours = 1
	}
	if c.Codec == "" {
		c.Codec = "null"
	}
	switch c.Codec {
	case "null", "deflate", "snappy", "zstandard":
	default:
		return fmt.Errorf("gen: codec %q: want null, deflate, snappy or zstandard", c.Codec)
	}
	if c.BlockEvents <= 0 {
		c.BlockEvents = 500
	}
	if c.FileEvents <= 0 {
		c.FileEvents = 15000
	}
	if c.Layout == "" {
		c.Layout = LayoutSchemaID
	}
	if c.NoExternalIDShare == 0 {
		c.NoExternalIDShare = 0.1
	}
	switch c.Profile {
	case "", ProfileDefault, ProfileRealistic:
	default:
		return fmt.Errorf("gen: profile %q: want %s or %s", c.Profile, ProfileDefault, ProfileRealistic)
	}
	for _, t := range c.EventTypes {
		if _, ok := schemas.Lookup(t); !ok {
			return fmt.Errorf("gen: unknown event type %q (see schemas.Names)", t)
		}
	}
	return nil
}

// Generate writes the export described by cfg to sink.
func Generate(cfg Config, sink Sink) (Manifest, error) {
	if err := cfg.defaults(); err != nil {
		return Manifest{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &generator{cfg: cfg, rng: rng, users: newPopulation(rng, cfg.Users, cfg.NoExternalIDShare)}
	if cfg.Profile == ProfileRealistic {
		return g.generateRealistic(sink)
	}

	// Spread events over (type, hour) cells; every type gets at least one
	// event when there are enough, the rest follow a skewed mix (email and
	// push dominate real exports).
	types := append([]string(nil), cfg.EventTypes...)
	sort.Strings(types)
	counts := make(map[cell]int)
	for i := 0; i < cfg.Events; i++ {
		var t string
		if i < len(types) {
			t = types[i]
		} else {
			t = types[int(float64(len(types))*rng.Float64()*rng.Float64())]
		}
		counts[cell{t, rng.IntN(cfg.Hours)}]++
	}
	cells := make([]cell, 0, len(counts))
	for c := range counts {
		cells = append(cells, c)
	}
	sort.Slice(cells, func(i, j int) bool {
		if cells[i].hour != cells[j].hour {
			return cells[i].hour < cells[j].hour
		}
		return cells[i].eventType < cells[j].eventType
	})

	var m Manifest
	for _, c := range cells {
		n := counts[c]
		for n > 0 {
			k := min(n, cfg.FileEvents)
			obj, err := g.writeObject(c, k, "", sink)
			if err != nil {
				return m, err
			}
			m.Objects = append(m.Objects, obj)
			n -= k
		}
	}
	damages := []string{"truncated", "bad_sync", "not_avro", "corrupt_block"}
	for i := 0; i < cfg.CorruptFiles; i++ {
		c := cells[rng.IntN(len(cells))]
		obj, err := g.writeObject(c, cfg.BlockEvents*2+7, damages[i%len(damages)], sink)
		if err != nil {
			return m, err
		}
		m.Objects = append(m.Objects, obj)
	}
	return m, nil
}

type cell struct {
	eventType string
	hour      int
}

type generator struct {
	cfg    Config
	rng    *rand.Rand
	users  *population
	offset int64
}

func (g *generator) older(t string) bool {
	for _, o := range g.cfg.OlderSchema {
		if o == "*" || o == t {
			return true
		}
	}
	return false
}

func (g *generator) key(c cell, partition int, offset int64) string {
	hour := g.cfg.Start.Add(time.Duration(c.hour) * time.Hour).Format("2006-01-02-15")
	name := fmt.Sprintf("dataexport.%s.%s.integration.%s", g.cfg.Cluster, g.cfg.Connection, g.cfg.IntegrationID)
	file := fmt.Sprintf("%s+%d+%d.avro", name, partition, offset)
	var tail string
	switch g.cfg.Layout {
	case LayoutVersion:
		tail = path.Join("version=6", "us-03")
	case Layout2017:
		name = fmt.Sprintf("dataexport.%s.integration.%s", g.cfg.Connection, g.cfg.IntegrationID)
		file = fmt.Sprintf("%s+%d+%010d.avro", name, partition, offset)
	default:
		tail = path.Join(fmt.Sprint(schemaID(c.eventType)), "us-03")
	}
	return path.Join(g.cfg.Prefix, name, "event_type="+c.eventType, "date="+hour, tail, file)
}

// schemaID is a stable small number per type, like the ids Braze writes.
func schemaID(t string) int {
	h := 0
	for _, r := range t {
		h = h*31 + int(r)
	}
	return 100 + (h&0x7fffffff)%900
}

func (g *generator) writeObject(c cell, n int, damage string, sink Sink) (Object, error) {
	return g.encodeObject(c, n, damage, sink, g.record)
}

// encodeObject writes one object of n events of cell c, each made by record.
func (g *generator) encodeObject(c cell, n int, damage string, sink Sink, record func(schemas.EventType, time.Time) map[string]any) (Object, error) {
	t, _ := schemas.Lookup(c.eventType)
	obj := Object{EventType: c.eventType, Events: n, Corrupt: damage}
	if g.older(c.eventType) {
		if o, ok := t.Older(); ok {
			t, obj.Older = o, true
		}
	}
	partition := g.rng.IntN(6)
	g.offset += int64(n)
	obj.Key = g.key(c, partition, g.offset)

	var sync [16]byte
	for i := range sync {
		sync[i] = byte(g.rng.UintN(256))
	}
	var buf bytes.Buffer
	enc, err := ocf.NewEncoder(t.WriterSchema(g.cfg.Connection), &buf,
		ocf.WithCodec(ocf.CodecName(g.cfg.Codec)), ocf.WithBlockLength(g.cfg.BlockEvents), ocf.WithSyncBlock(sync))
	if err != nil {
		return obj, fmt.Errorf("gen: %s: encoder: %w", c.eventType, err)
	}
	hourStart := g.cfg.Start.Add(time.Duration(c.hour) * time.Hour)
	var blockEnds []int // byte offset after each block, for damage
	for i := 0; i < n; i++ {
		rec := record(t, hourStart)
		if err := enc.Encode(rec); err != nil {
			return obj, fmt.Errorf("gen: %s: encode: %w", c.eventType, err)
		}
		if g.cfg.KeepRecords {
			obj.Records = append(obj.Records, rec)
		}
		if (i+1)%g.cfg.BlockEvents == 0 {
			if err := enc.Flush(); err != nil {
				return obj, err
			}
			blockEnds = append(blockEnds, buf.Len())
		}
	}
	if err := enc.Close(); err != nil {
		return obj, fmt.Errorf("gen: %s: close: %w", c.eventType, err)
	}
	body := buf.Bytes()
	if damage != "" {
		body, obj.GoodEvents = g.damage(body, damage, blockEnds)
	}
	obj.Size = len(body)
	if err := sink(obj.Key, body); err != nil {
		return obj, fmt.Errorf("gen: write %s: %w", obj.Key, err)
	}
	return obj, nil
}

// damage spoils an object after its first two blocks (when it has them), the
// way a failed upload or a bad disk would, and says how many events before
// the damage still decode.
func (g *generator) damage(body []byte, kind string, blockEnds []int) ([]byte, int) {
	good := 2 * g.cfg.BlockEvents
	cut := blockEnds[1]
	switch kind {
	case "truncated":
		return body[:cut+(len(body)-cut)/2], good
	case "bad_sync":
		// The sync marker closing the last (third) block.
		out := bytes.Clone(body)
		copy(out[len(out)-16:], bytes.Repeat([]byte{0xEE}, 16))
		return out, good
	case "corrupt_block":
		out := bytes.Clone(body)
		// A count far larger than the block can hold, in the third block.
		out[cut] = 0xFE
		out[cut+1] = 0xFF
		out[cut+2] = 0x7F
		return out, good
	}
	return append([]byte("PK\x03\x04 not an avro file\n"), body[:64]...), 0
}

// DirSink writes each object as a file under dir, at its key, creating the
// folders: an export tree on disk, as a `file://` url or the `file` input reads it.
func DirSink(dir string) Sink {
	return func(key string, body []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, body, 0o644)
	}
}
