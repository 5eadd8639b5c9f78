package gen

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

// Profiles: how Generate draws events (Config.Profile).
const (
	// ProfileDefault draws every event on its own: a type from a skewed mix,
	// a user from a Zipf-like population, a time in its hour. "" means the same.
	ProfileDefault = "default"
	// ProfileRealistic draws stories (see the package documentation): message
	// chains of campaigns and canvases, sessions of active users, and Braze's
	// duplicate deliveries.
	ProfileRealistic = "realistic"
)

// Parameters of the realistic profile (documented in the package doc and
// docs/generator.md; change them together).
const (
	realMessageShare = 0.60 // share of events from campaign and canvas chains
	realFillerShare  = 0.03 // share of events of types no story produces (the rest: sessions)
	realCanvasShare  = 0.40 // share of blasts that are canvas steps rather than campaigns
	realDupShare     = 0.01 // default DuplicateShare
	realDupNextHour  = 0.50 // share of duplicates written into the next hour's files
	realActiveShare  = 0.10 // the most active users, who engage more with messages
	realZipfS        = 1.2  // exponent of the users' activity (Zipf, offset users/100)
)

// realChannels are the message channels of the realistic profile, with the
// share of blasts each gets.
var realChannels = []struct {
	name   string
	weight float64
	types  []string // every type the chain can produce
}{
	{"email", 0.45, []string{"users.messages.email.Send", "users.messages.email.Delivery", "users.messages.email.Bounce", "users.messages.email.SoftBounce", "users.messages.email.Open", "users.messages.email.Click", "users.messages.email.Unsubscribe", "users.messages.email.MarkAsSpam"}},
	{"push", 0.30, []string{"users.messages.pushnotification.Send", "users.messages.pushnotification.Open", "users.messages.pushnotification.Bounce"}},
	{"sms", 0.08, []string{"users.messages.sms.Send", "users.messages.sms.CarrierSend", "users.messages.sms.Delivery", "users.messages.sms.DeliveryFailure", "users.messages.sms.Rejection", "users.messages.sms.ShortLinkClick"}},
	{"contentcard", 0.07, []string{"users.messages.contentcard.Send", "users.messages.contentcard.Impression", "users.messages.contentcard.Click", "users.messages.contentcard.Dismiss"}},
	{"inappmessage", 0.05, []string{"users.messages.inappmessage.Impression", "users.messages.inappmessage.Click"}},
	{"webhook", 0.03, []string{"users.messages.webhook.Send"}},
	{"whatsapp", 0.02, []string{"users.messages.whatsapp.Send", "users.messages.whatsapp.Delivery", "users.messages.whatsapp.Read", "users.messages.whatsapp.Failure"}},
}

// Types that chains and sessions add around the channel's own.
var (
	realChainExtra   = []string{"users.canvas.Entry", "users.campaigns.Conversion", "users.canvas.Conversion"}
	realSessionTypes = []string{"users.behaviors.app.SessionStart", "users.behaviors.app.SessionEnd", "users.behaviors.app.FirstSession", "users.behaviors.CustomEvent", "users.behaviors.Purchase"}
	customEventNames = []string{"viewed_product", "added_to_cart", "search", "viewed_screen", "shared", "started_checkout", "rated_item", "played_video"}
)

// identityFields are never null in the realistic profile: a user's events
// agree on who and where they are from, as Braze writes them.
var identityFields = map[string]bool{
	"user_id": true, "external_user_id": true, "platform": true, "app_id": true, "device_id": true,
	"timezone": true, "email_address": true, "to_phone_number": true, "user_phone_number": true,
	"device_model": true, "os_version": true, "ad_id": true, "ad_id_type": true, "ad_tracking_enabled": true,
}

// deviceModels are the models of each platform's devices.
var deviceModels = map[string][]string{
	"ios": {"iPhone15,2", "iPhone16,1", "iPad13,4"}, "android": {"Pixel 8", "SM-S911B", "SM-A546B"},
	"web": {"Chrome", "Safari", "Firefox"}, "tvos": {"AppleTV11,1"}, "kindle": {"KFTRWI"}, "roku": {"AFTMM", "3941X"},
}

// equipUsers gives each user one device (model, OS version, ad tracking),
// so all of a user's events agree on it, as one person's phone does.
func equipUsers(rng *rand.Rand, users []user) {
	for i := range users {
		u := &users[i]
		models := deviceModels[u.platform]
		u.deviceModel = models[rng.IntN(len(models))]
		u.osVersion = fmt.Sprintf("%d.%d", 10+rng.IntN(8), rng.IntN(5))
		tracking := rng.IntN(5) != 0
		u.adTracking = &tracking
	}
}

// story holds the fields every event of one chain or session shares
// (campaign or canvas ids, send and dispatch ids, the session id); a nil
// value writes null.
type story struct {
	fields map[string]any
}

// planned is one event of the realistic profile, placed before it is written.
type planned struct {
	eventType string
	user      int32
	at        int64  // event time, Unix seconds
	queued    int64  // when Braze queued it: its date= hour and its place in the file
	seed      uint64 // seeds its other values, so a duplicate is the same record
	story     *story
	seq       int32 // creation order, to keep sorting stable and deterministic
}

type realPlanner struct {
	cfg      Config
	rng      *rand.Rand
	users    *population
	activity *rand.Zipf // draws active users: index 0 the most active
	selected map[string]bool
	from, to int64 // the export's first second and the end of its last hour
	events   []planned
	written  int // distinct events planned (within the range, of a selected type)
	seenUser map[int32]bool
}

// add plans an event when its type is selected and Braze would have queued
// it within the exported hours; it reports whether it did.
func (p *realPlanner) add(eventType string, u int32, at, queued int64, st *story) bool {
	if !p.selected[eventType] || queued < p.from || queued >= p.to || p.written >= p.cfg.Events {
		return false
	}
	p.events = append(p.events, planned{eventType: eventType, user: u, at: at, queued: queued,
		seed: p.rng.Uint64(), story: st, seq: int32(len(p.events))})
	p.written++
	return true
}

func (p *realPlanner) anySelected(types []string) bool {
	for _, t := range types {
		if p.selected[t] {
			return true
		}
	}
	return false
}

// after returns a time an exponentially distributed delay (mean mean
// seconds, at least min) after t.
func (p *realPlanner) after(t int64, mean float64, min int64) int64 {
	return t + min + int64(p.rng.ExpFloat64()*mean)
}

// serverQueued is when Braze queues a server-side (message) event: seconds
// after it happened.
func (p *realPlanner) serverQueued(at int64) int64 { return at + int64(p.rng.IntN(30)) }

// sdkQueued is when Braze queues an SDK (behaviour) event: usually within a
// couple of minutes, one in fifty hours later (a device that was offline).
func (p *realPlanner) sdkQueued(at int64) int64 {
	q := at + int64(p.rng.ExpFloat64()*60)
	if p.rng.IntN(50) == 0 {
		q += int64(1+p.rng.IntN(6)) * 3600
	}
	return q
}

func (p *realPlanner) active(u int32) bool {
	return float64(u) < realActiveShare*float64(len(p.users.users))
}

func (p *realPlanner) id(prefix string) string { return prefix + "-" + hexID(p.rng, 12) }

// blast is one campaign send or canvas step reaching an audience of users
// within a few minutes, each user's chain unfolding minutes apart.
func (p *realPlanner) blast(channels []int) {
	ch := realChannels[channels[0]]
	total := 0.0
	for _, i := range channels {
		total += realChannels[i].weight
	}
	r := p.rng.Float64() * total
	for _, i := range channels {
		if r -= realChannels[i].weight; r < 0 {
			ch = realChannels[i]
			break
		}
	}
	canvas := p.rng.Float64() < realCanvasShare
	name := phrase(p.rng, 2)
	base := map[string]any{
		"campaign_id": nil, "campaign_name": nil, "message_variation_id": nil, "message_variation_name": nil,
		"canvas_id": nil, "canvas_name": nil, "canvas_variation_id": nil, "canvas_variation_name": nil,
		"canvas_step_id": nil, "canvas_step_name": nil, "canvas_step_message_variation_id": nil,
		"dispatch_id": p.id("dispatch"), "send_id": p.id("send"),
		"content_card_id": p.id("card"), "subscription_group_id": p.id("subgroup"),
	}
	if canvas {
		base["canvas_id"], base["canvas_name"] = p.id("canvas"), "Canvas "+name
		base["canvas_variation_id"], base["canvas_variation_name"] = p.id("cvar"), "Variant A"
		base["canvas_step_id"], base["canvas_step_name"] = p.id("step"), "Step "+fmt.Sprint(1+p.rng.IntN(5))
		base["canvas_step_message_variation_id"] = p.id("smv")
	} else {
		base["campaign_id"], base["campaign_name"] = p.id("campaign"), "Campaign "+name
		base["message_variation_id"], base["message_variation_name"] = p.id("mvar"), "Variant A"
	}
	st := &story{fields: base}
	n := len(p.users.users)
	audience := 1 + p.rng.IntN(max(1, min(n/20, 200)))
	start := p.from + p.rng.Int64N(p.to-p.from)
	reached := make(map[int32]bool, audience)
	for range audience {
		u := int32(p.rng.IntN(n))
		if reached[u] {
			continue // one message per user and send
		}
		reached[u] = true
		p.chain(ch.name, canvas, u, p.after(start, 60, 0), st)
	}
}

// chain plans one user's events of one message: Send → Delivery → Open →
// Click and their variants, minutes apart.
func (p *realPlanner) chain(channel string, canvas bool, u int32, at int64, st *story) {
	engage := 1.0
	if p.active(u) {
		engage = 2.5
	}
	ev := func(t string, at int64) { p.add(t, u, at, p.serverQueued(at), st) }
	sdk := func(t string, at int64) { p.add(t, u, at, p.sdkQueued(at), st) }
	if canvas {
		ev("users.canvas.Entry", at-1-int64(p.rng.IntN(60)))
	}
	converted := func(at int64) {
		if p.rng.Float64() < 0.05*engage {
			t := "users.campaigns.Conversion"
			if canvas {
				t = "users.canvas.Conversion"
			}
			ev(t, p.after(at, 600, 30))
		}
	}
	switch channel {
	case "email":
		ev("users.messages.email.Send", at)
		switch r := p.rng.Float64(); {
		case r < 0.02:
			ev("users.messages.email.Bounce", p.after(at, 20, 1))
			return
		case r < 0.03:
			ev("users.messages.email.SoftBounce", p.after(at, 20, 1))
			return
		}
		d := p.after(at, 20, 1)
		ev("users.messages.email.Delivery", d)
		if p.rng.Float64() < 0.2*engage {
			o := p.after(d, 480, 30)
			ev("users.messages.email.Open", o)
			switch r := p.rng.Float64(); {
			case r < 0.3:
				c := p.after(o, 90, 5)
				ev("users.messages.email.Click", c)
				converted(c)
			case r < 0.31:
				ev("users.messages.email.Unsubscribe", p.after(o, 60, 5))
			case r < 0.312:
				ev("users.messages.email.MarkAsSpam", p.after(o, 60, 5))
			}
		}
	case "push":
		ev("users.messages.pushnotification.Send", at)
		if p.rng.Float64() < 0.03 {
			ev("users.messages.pushnotification.Bounce", p.after(at, 5, 1))
			return
		}
		if p.rng.Float64() < 0.08*engage {
			o := p.after(at, 300, 5)
			sdk("users.messages.pushnotification.Open", o)
			converted(o)
		}
	case "sms":
		ev("users.messages.sms.Send", at)
		if p.rng.Float64() < 0.02 {
			ev("users.messages.sms.Rejection", p.after(at, 2, 1))
			return
		}
		c := p.after(at, 3, 1)
		ev("users.messages.sms.CarrierSend", c)
		if p.rng.Float64() < 0.04 {
			ev("users.messages.sms.DeliveryFailure", p.after(c, 20, 1))
			return
		}
		d := p.after(c, 20, 1)
		ev("users.messages.sms.Delivery", d)
		if p.rng.Float64() < 0.06*engage {
			k := p.after(d, 300, 10)
			ev("users.messages.sms.ShortLinkClick", k)
			converted(k)
		}
	case "contentcard":
		ev("users.messages.contentcard.Send", at)
		if p.rng.Float64() < 0.25*engage {
			i := p.after(at, 900, 30)
			sdk("users.messages.contentcard.Impression", i)
			switch r := p.rng.Float64(); {
			case r < 0.15:
				c := p.after(i, 30, 2)
				sdk("users.messages.contentcard.Click", c)
				converted(c)
			case r < 0.25:
				sdk("users.messages.contentcard.Dismiss", p.after(i, 30, 2))
			}
		}
	case "inappmessage":
		sdk("users.messages.inappmessage.Impression", at)
		if p.rng.Float64() < 0.2 {
			c := p.after(at, 10, 1)
			sdk("users.messages.inappmessage.Click", c)
			converted(c)
		}
	case "webhook":
		ev("users.messages.webhook.Send", at)
	case "whatsapp":
		ev("users.messages.whatsapp.Send", at)
		if p.rng.Float64() < 0.03 {
			ev("users.messages.whatsapp.Failure", p.after(at, 5, 1))
			return
		}
		d := p.after(at, 10, 1)
		ev("users.messages.whatsapp.Delivery", d)
		if p.rng.Float64() < 0.5*engage {
			ev("users.messages.whatsapp.Read", p.after(d, 600, 10))
		}
	}
}

// session plans one app session of a user drawn from the Zipf-like
// population (active users have many): SessionStart, custom events and
// sometimes a purchase, SessionEnd, seconds to minutes apart.
func (p *realPlanner) session() {
	u := p.user()
	st := &story{fields: map[string]any{"session_id": uuid(p.rng)}}
	start := p.from + p.rng.Int64N(p.to-p.from)
	sdk := func(t string, at int64, s *story) { p.add(t, u, at, p.sdkQueued(at), s) }
	if !p.seenUser[u] {
		p.seenUser[u] = true
		if p.rng.IntN(20) == 0 {
			sdk("users.behaviors.app.FirstSession", start, st)
		}
	}
	sdk("users.behaviors.app.SessionStart", start, st)
	t := start
	for n := 1 + int(p.rng.ExpFloat64()*2.5); n > 0; n-- {
		t = p.after(t, 45, 2)
		name := customEventNames[p.rng.IntN(len(customEventNames))]
		sdk("users.behaviors.CustomEvent", t, &story{fields: map[string]any{"name": name}})
	}
	if p.rng.Float64() < 0.12 {
		t = p.after(t, 60, 5)
		sdk("users.behaviors.Purchase", t, &story{fields: map[string]any{}})
	}
	end := p.after(t, 30, 1)
	sdk("users.behaviors.app.SessionEnd", end, &story{fields: map[string]any{"session_id": st.fields["session_id"], "duration": float64(end - start)}})
}

// filler plans one event of a type no story produces (uninstalls,
// subscription changes, aborts, …), for a user of the population.
func (p *realPlanner) filler(types []string) {
	at := p.from + p.rng.Int64N(p.to-p.from)
	p.add(types[p.rng.IntN(len(types))], p.user(), at, p.serverQueued(at), &story{fields: map[string]any{}})
}

// generateRealistic is Generate for ProfileRealistic: it plans every event,
// then writes each (type, hour) cell's events in queue order, and each
// cell's duplicates in another object.
func (g *generator) generateRealistic(sink Sink) (Manifest, error) {
	cfg := g.cfg
	p := &realPlanner{cfg: cfg, rng: g.rng, users: g.users, selected: map[string]bool{}, seenUser: map[int32]bool{}}
	equipUsers(g.rng, g.users.users)
	if n := len(g.users.users); n > 1 {
		// Milder at the head than the default profile's population: the most
		// active of 2,000 users has about 1.5 % of the sessions, the top 10 %
		// about 60 %.
		p.activity = rand.NewZipf(g.rng, realZipfS, max(1, float64(n)/100), uint64(n-1))
	}
	for _, t := range cfg.EventTypes {
		p.selected[t] = true
	}
	p.from = cfg.Start.Unix()
	p.to = cfg.Start.Add(time.Duration(cfg.Hours) * time.Hour).Unix()

	storyTypes := map[string]bool{}
	var channels []int
	for i, ch := range realChannels {
		for _, t := range ch.types {
			storyTypes[t] = true
		}
		if p.anySelected(ch.types) {
			channels = append(channels, i)
		}
	}
	for _, t := range append(append([]string(nil), realChainExtra...), realSessionTypes...) {
		storyTypes[t] = true
	}
	sessions := p.anySelected(realSessionTypes)
	var others []string // selected types no story produces
	for _, t := range cfg.EventTypes {
		if !storyTypes[t] {
			others = append(others, t)
		}
	}
	sort.Strings(others)
	fillers := others
	if len(fillers) == 0 {
		fillers = append([]string(nil), cfg.EventTypes...)
		sort.Strings(fillers)
	}
	// Every selected type at least once when there are enough events.
	if cfg.Events >= len(cfg.EventTypes) {
		all := append([]string(nil), cfg.EventTypes...)
		sort.Strings(all)
		for _, t := range all {
			at := p.from + p.rng.Int64N(p.to-p.from)
			p.add(t, p.user(), at, at, &story{fields: map[string]any{}})
		}
	}
	msgEvents, fillEvents := 0, 0
	for stall := 0; p.written < cfg.Events; {
		before := p.written
		total := float64(max(before, 1))
		switch {
		case float64(fillEvents)/total < realFillerShare || (len(channels) == 0 && !sessions):
			p.filler(fillers)
			fillEvents += p.written - before
		case len(channels) > 0 && (!sessions || float64(msgEvents)/total < realMessageShare):
			p.blast(channels)
			msgEvents += p.written - before
		default:
			p.session()
		}
		// Stories of types mostly not selected may plan nothing for a while;
		// fall back to fillers rather than loop for ever.
		if p.written == before {
			if stall++; stall > 1000 {
				p.filler(fillers)
				fillEvents += p.written - before
			}
		} else {
			stall = 0
		}
	}

	// Braze's duplicates: the same event written again into another object
	// of the same hour or the next one.
	dupShare := cfg.DuplicateShare
	if dupShare == 0 {
		dupShare = realDupShare
	}
	var dups []planned
	if dupShare > 0 {
		for _, e := range p.events {
			if p.rng.Float64() >= dupShare {
				continue
			}
			d := e
			hour := (e.queued - p.from) / 3600
			if hour+1 < int64(cfg.Hours) && p.rng.Float64() < realDupNextHour {
				hour++
			}
			lo := max(p.from+hour*3600, e.queued)
			d.queued = lo + p.rng.Int64N(p.from+(hour+1)*3600-lo)
			d.seq = int32(len(p.events) + len(dups))
			dups = append(dups, d)
		}
	}

	// Group into (type, hour) cells, in write order: hour, then type.
	byCell := map[cell][]planned{}
	dupCell := map[cell][]planned{}
	var cells []cell
	place := func(m map[cell][]planned, e planned) {
		c := cell{e.eventType, int((e.queued - p.from) / 3600)}
		if _, ok := byCell[c]; !ok {
			if _, ok := dupCell[c]; !ok {
				cells = append(cells, c)
			}
		}
		m[c] = append(m[c], e)
	}
	for _, e := range p.events {
		place(byCell, e)
	}
	for _, e := range dups {
		place(dupCell, e)
	}
	sort.Slice(cells, func(i, j int) bool {
		if cells[i].hour != cells[j].hour {
			return cells[i].hour < cells[j].hour
		}
		return cells[i].eventType < cells[j].eventType
	})
	byQueue := func(es []planned) {
		sort.Slice(es, func(i, j int) bool {
			if es[i].queued != es[j].queued {
				return es[i].queued < es[j].queued
			}
			return es[i].seq < es[j].seq
		})
	}
	var m Manifest
	for _, c := range cells {
		for _, group := range [][]planned{byCell[c], dupCell[c]} {
			byQueue(group)
			for len(group) > 0 {
				k := min(len(group), cfg.FileEvents)
				obj, err := g.writePlanned(c, group[:k], group[0].seq >= int32(len(p.events)), sink)
				if err != nil {
					return m, err
				}
				m.Objects = append(m.Objects, obj)
				group = group[k:]
			}
		}
	}
	if cfg.CorruptFiles > 0 && len(cells) == 0 {
		cells = append(cells, cell{cfg.EventTypes[0], 0})
	}
	damages := []string{"truncated", "bad_sync", "not_avro", "corrupt_block"}
	for i := 0; i < cfg.CorruptFiles; i++ {
		c := cells[g.rng.IntN(len(cells))]
		obj, err := g.writeObject(c, cfg.BlockEvents*2+7, damages[i%len(damages)], sink)
		if err != nil {
			return m, err
		}
		m.Objects = append(m.Objects, obj)
	}
	return m, nil
}

// writePlanned writes one object of planned events (of one cell, in order).
// dup marks an object of duplicates: every event in it was written before.
func (g *generator) writePlanned(c cell, es []planned, dup bool, sink Sink) (Object, error) {
	i := 0
	obj, err := g.encodeObject(c, len(es), "", sink, func(t schemas.EventType, _ time.Time) map[string]any {
		e := &es[i]
		i++
		rng := rand.New(rand.NewPCG(e.seed, e.seed^0x6a09e667f3bcc909))
		return g.fill(t, rng, &g.users.users[e.user], e.at, e.story)
	})
	if dup {
		obj.Duplicates = len(es)
	}
	return obj, err
}

// user draws a user index from the Zipf-like activity distribution.
func (p *realPlanner) user() int32 {
	if p.activity == nil {
		return 0
	}
	return int32(p.activity.Uint64())
}
