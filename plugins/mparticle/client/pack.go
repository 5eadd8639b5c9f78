package client

import (
	"bytes"
	"slices"
	"strconv"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/internal/ids"
)

// Packing turns many one-user items into few bulk requests, because
// mParticle limits throughput in batches per second, not events: items of the
// same feed, endpoint and envelope (every top-level member except events and
// source_request_id, compared byte for byte with keys sorted) share a batch.
// Same envelope means same user, since identities live in the envelope.

// Wire fragments of a packed batch.
const (
	sridPrefix   = `"source_request_id":"`
	sridSuffix   = `",`
	eventsPrefix = `"events":[`
	uuidLen      = 36
	// batchOverhead is a packed batch's size beyond its envelope members
	// and event bytes: braces, the source_request_id member, the events
	// key and brackets.
	batchOverhead = 1 + len(sridPrefix) + uuidLen + len(sridSuffix) + len(eventsPrefix) + 2
)

// sourceRequestNamespace is the UUIDv5 namespace of this project's
// source_request_ids; a fixed random value, so ids never collide with other
// name-based UUIDs built from the same event ids.
var sourceRequestNamespace = [16]byte{
	0x46, 0xa4, 0xe8, 0xc5, 0xd1, 0xe6, 0x40, 0xfb,
	0x8a, 0xe9, 0xcb, 0x4d, 0x31, 0x0e, 0x94, 0xe7,
}

// itemInfo is what the packer learnt about one item.
type itemInfo struct {
	feed     *feedState
	hist     bool
	envStart int // canonical envelope: "k":v, members in key order, in packer.env
	envEnd   int
	evStart  int // events in packer.events
	evEnd    int
	evBytes  int // sum of the events' raw lengths
	next     int // next item of the same group, -1 at the end
}

// eventRef is one event of an item: its raw JSON and its raw
// source_message_id (quotes included), nil when it has none.
type eventRef struct {
	raw []byte
	id  []byte
}

// memberSpan is one top-level member of an item being parsed.
type memberSpan struct {
	key, val []byte
}

// group is the items sharing a feed, an endpoint and an envelope.
type group struct {
	feed        *feedState
	hist        bool
	first, last int
}

// batchRef is one packed batch inside a request body.
type batchRef struct {
	start, end int   // the batch's bytes in request.body
	srid       int   // where its source_request_id starts in request.body
	items      []int // indices of the items it carries
	events     int
	keys       []string // the Keys of its items, once told to Config.BeforeSend
}

// request is one bulk request: a JSON array of packed batches.
type request struct {
	hist    bool
	body    []byte
	batches []batchRef
}

// sourceRequestID returns the source_request_id of batch b of r.
func (r *request) sourceRequestID(b *batchRef) string {
	return string(r.body[b.srid : b.srid+uuidLen])
}

// feedPlan is every request one Send call makes on one feed.
type feedPlan struct {
	feed     *feedState
	requests []*request
}

// plannedBatch is a batch chosen but not yet written.
type plannedBatch struct {
	group  int
	items  []int
	events int
	size   int
}

// packer holds the scratch space of one Send call; the client pools them.
type packer struct {
	items    []itemInfo
	events   []eventRef
	members  []memberSpan
	env      []byte
	groups   []group
	groupIdx map[string]int
	key      []byte
	order    []int
	batches  []plannedBatch
	ids      [][]byte
	name     []byte
}

// pack parses items, fails those that can never be sent (setting errs) and
// returns the requests to make, per feed, in order of first appearance.
func (p *packer) pack(c *Client, items []Item, errs []error) []*feedPlan {
	p.reset(len(items))
	now := c.cfg.Now()
	lim := &c.cfg.Limits

	for i := range items {
		info, derr := p.parse(c, items[i], now)
		if derr != nil {
			errs[i] = derr
			c.metrics.EventsFailed(items[i].Feed, derr.Reason, max(1, info.evEnd-info.evStart))
			p.items = append(p.items, itemInfo{next: -1})
			continue
		}
		n := info.evEnd - info.evStart
		size := batchOverhead + (info.envEnd - info.envStart) + info.evBytes + n - 1
		if n > lim.MaxEventsPerBatch || size > lim.MaxBatchBytes {
			derr := &DeliveryError{
				Reason: ReasonTooLarge,
				Feed:   items[i].Feed,
				Message: "the item alone has " + strconv.Itoa(n) + " events and " + strconv.Itoa(size) +
					" bytes as a batch; a batch allows " + strconv.Itoa(lim.MaxEventsPerBatch) +
					" events and " + strconv.Itoa(lim.MaxBatchBytes) + " bytes",
			}
			errs[i] = derr
			c.metrics.EventsFailed(items[i].Feed, derr.Reason, n)
			p.items = append(p.items, itemInfo{next: -1})
			continue
		}
		p.items = append(p.items, info)
		p.addToGroup(i)
	}
	return p.plan(c)
}

func (p *packer) reset(n int) {
	p.items = p.items[:0]
	p.events = p.events[:0]
	p.env = p.env[:0]
	p.groups = p.groups[:0]
	if p.groupIdx == nil {
		p.groupIdx = make(map[string]int)
	}
	clear(p.groupIdx)
	p.order = slices.Grow(p.order[:0], n)
	p.batches = p.batches[:0]
	if cap(p.items) < n {
		p.items = make([]itemInfo, 0, n)
	}
}

// release drops the packer's references into the items it packed, before it
// goes back to the pool: an item's bytes are most often a slice of a buffer
// shared by a whole batch of messages (the currents_to_mparticle processor
// writes a batch's output into one), so one stale reference would keep that
// buffer alive for as long as the packer sits in the pool.
func (p *packer) release() {
	// Whole capacities: a parse that failed may have cut a slice back.
	clear(p.events[:cap(p.events)])
	clear(p.members[:cap(p.members)])
	clear(p.ids[:cap(p.ids)])
}

// parse reads one item: its feed, canonical envelope and events.
func (p *packer) parse(c *Client, it Item, now time.Time) (itemInfo, *DeliveryError) {
	info := itemInfo{next: -1, evStart: len(p.events), evEnd: len(p.events)}
	invalid := func(msg string) (itemInfo, *DeliveryError) {
		return info, &DeliveryError{Reason: ReasonInvalidBatch, Feed: it.Feed, Message: msg}
	}
	fs, ok := c.feeds[it.Feed]
	if !ok {
		return info, &DeliveryError{Reason: ReasonFeedNotConfigured, Feed: it.Feed,
			Message: "no credentials configured for this feed"}
	}
	info.feed = fs

	b := trimSpace(it.Batch)
	if len(b) == 0 || b[0] != '{' {
		return invalid("the batch is not a JSON object")
	}
	if !validJSON(b) {
		return invalid("the batch is not valid JSON")
	}

	p.members = p.members[:0]
	var evs []byte
	hasEnv := false
	obj := newObjectIter(b)
	for {
		k, v, more := obj.next()
		if !more {
			break
		}
		switch {
		case keyIs(k, "events"):
			if evs != nil {
				return invalid(`the batch repeats the top-level key "events"`)
			}
			evs = v
		case keyIs(k, "source_request_id"):
			// Replaced by the packed batch's own id.
		case c.environment != nil && keyIs(k, "environment"):
			hasEnv = true
			p.members = append(p.members, memberSpan{key: k, val: c.environment})
		default:
			p.members = append(p.members, memberSpan{key: k, val: v})
		}
	}
	if c.environment != nil && !hasEnv {
		p.members = append(p.members, memberSpan{key: []byte(`"environment"`), val: c.environment})
	}
	if len(evs) == 0 || evs[0] != '[' {
		return invalid(`the batch has no "events" array`)
	}
	slices.SortFunc(p.members, func(a, b memberSpan) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(p.members); i++ {
		if bytes.Equal(p.members[i-1].key, p.members[i].key) {
			return invalid("the batch repeats the top-level key " + string(p.members[i].key))
		}
	}
	info.envStart = len(p.env)
	for _, m := range p.members {
		p.env = append(p.env, m.key...)
		p.env = append(p.env, ':')
		p.env = append(p.env, m.val...)
		p.env = append(p.env, ',')
	}
	info.envEnd = len(p.env)

	nowMS := now.UnixMilli()
	ageMS := c.cfg.HistoricalAge.Milliseconds()
	allOld := c.cfg.Historical
	arr := newArrayIter(evs)
	for {
		ev, more := arr.next()
		if !more {
			break
		}
		if ev[0] != '{' {
			info.evEnd = len(p.events)
			return invalid("event " + strconv.Itoa(info.evEnd-info.evStart) + " is not a JSON object")
		}
		ref := eventRef{raw: ev}
		data, _ := member(ev, "data")
		old := false
		if len(data) > 0 && data[0] == '{' {
			if id, ok := member(data, "source_message_id"); ok && len(id) > 2 && id[0] == '"' {
				ref.id = id
			}
			if ts, ok := member(data, "timestamp_unixtime_ms"); ok {
				if ms, ok := parseMillis(ts); ok {
					old = nowMS-ms > ageMS
				}
			}
		}
		allOld = allOld && old
		p.events = append(p.events, ref)
		info.evBytes += len(ev)
	}
	info.evEnd = len(p.events)
	if info.evEnd == info.evStart {
		return invalid(`the batch's "events" array is empty`)
	}
	info.hist = allOld
	return info, nil
}

// parseMillis reads a JSON number of milliseconds without allocating in the
// common integer case.
func parseMillis(raw []byte) (int64, bool) {
	var n int64
	neg := false
	i := 0
	if len(raw) > 0 && raw[0] == '-' {
		neg, i = true, 1
	}
	if i == len(raw) {
		return 0, false
	}
	for ; i < len(raw); i++ {
		c := raw[i]
		if c < '0' || c > '9' || n > (1<<62)/10 {
			f, err := strconv.ParseFloat(string(raw), 64)
			return int64(f), err == nil
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// addToGroup files item i under its feed, endpoint and envelope.
func (p *packer) addToGroup(i int) {
	info := &p.items[i]
	p.key = append(p.key[:0], info.feed.name...)
	p.key = append(p.key, 0)
	if info.hist {
		p.key = append(p.key, 'h')
	} else {
		p.key = append(p.key, 'r')
	}
	p.key = append(p.key, p.env[info.envStart:info.envEnd]...)
	if g, ok := p.groupIdx[string(p.key)]; ok {
		p.items[p.groups[g].last].next = i
		p.groups[g].last = i
		return
	}
	p.groupIdx[string(p.key)] = len(p.groups)
	p.groups = append(p.groups, group{feed: info.feed, hist: info.hist, first: i, last: i})
}

// plan cuts every group into batches within the limits, then lays the
// batches of each feed and endpoint into requests and writes them.
func (p *packer) plan(c *Client) []*feedPlan {
	lim := &c.cfg.Limits
	for g := range p.groups {
		grp := &p.groups[g]
		envLen := p.items[grp.first].envEnd - p.items[grp.first].envStart
		cur := plannedBatch{group: g}
		start := len(p.order)
		for i := grp.first; i >= 0; i = p.items[i].next {
			info := &p.items[i]
			n := info.evEnd - info.evStart
			// Every event after the first costs a comma.
			add := info.evBytes + n
			if cur.events > 0 && (cur.events+n > lim.MaxEventsPerBatch || cur.size+add > lim.MaxBatchBytes) {
				cur.items = p.order[start:len(p.order):len(p.order)]
				p.batches = append(p.batches, cur)
				cur = plannedBatch{group: g}
				start = len(p.order)
			}
			if cur.events == 0 {
				cur.size = batchOverhead + envLen - 1
			}
			cur.size += add
			cur.events += n
			p.order = append(p.order, i)
		}
		cur.items = p.order[start:len(p.order):len(p.order)]
		p.batches = append(p.batches, cur)
	}

	var plans []*feedPlan
	planOf := func(fs *feedState) *feedPlan {
		for _, fp := range plans {
			if fp.feed == fs {
				return fp
			}
		}
		fp := &feedPlan{feed: fs}
		plans = append(plans, fp)
		return fp
	}
	// Requests are filled per feed and endpoint in batch order; two open
	// requests per feed at most (real-time and historical).
	type open struct {
		fp      *feedPlan
		hist    bool
		batches []int // indices into p.batches
		size    int
	}
	var opens []*open
	flush := func(o *open) {
		if len(o.batches) > 0 {
			o.fp.requests = append(o.fp.requests, p.write(o.hist, o.batches, o.size))
		}
		o.batches, o.size = nil, 0
	}
	for bi := range p.batches {
		grp := &p.groups[p.batches[bi].group]
		var o *open
		for _, x := range opens {
			if x.fp.feed == grp.feed && x.hist == grp.hist {
				o = x
				break
			}
		}
		if o == nil {
			o = &open{fp: planOf(grp.feed), hist: grp.hist}
			opens = append(opens, o)
		}
		size := p.batches[bi].size
		if len(o.batches) > 0 && (len(o.batches)+1 > lim.MaxBatchesPerRequest || o.size+1+size > lim.MaxRequestBytes) {
			flush(o)
		}
		if len(o.batches) == 0 {
			o.size = 2 + size // the array's brackets
		} else {
			o.size += 1 + size
		}
		o.batches = append(o.batches, bi)
	}
	for _, o := range opens {
		flush(o)
	}
	return plans
}

// write renders the planned batches as one request body.
func (p *packer) write(hist bool, batches []int, size int) *request {
	r := &request{hist: hist, body: make([]byte, 0, size), batches: make([]batchRef, 0, len(batches))}
	r.body = append(r.body, '[')
	for n, bi := range batches {
		pb := &p.batches[bi]
		if n > 0 {
			r.body = append(r.body, ',')
		}
		start := len(r.body)
		first := &p.items[pb.items[0]]
		r.body = append(r.body, '{')
		r.body = append(r.body, p.env[first.envStart:first.envEnd]...)
		r.body = append(r.body, sridPrefix...)
		srid := len(r.body)
		r.body = p.appendSourceRequestID(r.body, pb.items)
		r.body = append(r.body, sridSuffix...)
		r.body = append(r.body, eventsPrefix...)
		k := 0
		for _, i := range pb.items {
			info := &p.items[i]
			for _, ev := range p.events[info.evStart:info.evEnd] {
				if k > 0 {
					r.body = append(r.body, ',')
				}
				r.body = append(r.body, ev.raw...)
				k++
			}
		}
		r.body = append(r.body, ']', '}')
		r.batches = append(r.batches, batchRef{start: start, end: len(r.body), srid: srid, items: pb.items, events: pb.events})
	}
	r.body = append(r.body, ']')
	return r
}

// appendSourceRequestID appends the batch's deterministic id: a UUIDv5 over
// its events' source_message_ids, sorted and joined by newlines (the raw
// event for an event without one). The same events always get the same id,
// so a retried or replayed batch is deduplicated by mParticle.
func (p *packer) appendSourceRequestID(dst []byte, items []int) []byte {
	p.ids = p.ids[:0]
	for _, i := range items {
		info := &p.items[i]
		for _, ev := range p.events[info.evStart:info.evEnd] {
			if ev.id != nil {
				p.ids = append(p.ids, ev.id)
			} else {
				p.ids = append(p.ids, ev.raw)
			}
		}
	}
	slices.SortFunc(p.ids, bytes.Compare)
	p.name = append(p.name[:0], sourceRequestNamespace[:]...)
	for n, id := range p.ids {
		if n > 0 {
			p.name = append(p.name, '\n')
		}
		p.name = append(p.name, id...)
	}
	return ids.AppendV5(dst, p.name)
}
