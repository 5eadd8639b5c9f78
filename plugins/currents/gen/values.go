package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

// user is one Braze user; the same user's events carry the same ids.
type user struct {
	userID     string // Braze's 24-hex id
	externalID string // "" for anonymous users
	email      string
	phone      string
	deviceID   string
	platform   string
	appID      string
	timezone   string
	adID       string
	adIDType   string
	// The device as the realistic profile fixes it per user ("" and nil:
	// drawn per event, as the default profile does).
	deviceModel string
	osVersion   string
	adTracking  *bool
}

// population draws users with a Zipf-like repeat distribution: a few users
// produce many events, most produce one or two, as in a real export.
type population struct {
	users []user
	zipf  *rand.Zipf
}

var (
	platforms = []string{"ios", "ios", "android", "android", "web", "tvos", "kindle", "roku"}
	timezones = []string{"America/New_York", "Europe/London", "Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles", "Australia/Sydney"}
	appIDs    = map[string]string{
		"ios": "3f1a2b4c-0d5e-4f60-8a71-92b3c4d5e6f7", "android": "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
		"web": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "tvos": "d4c3b2a1-f6e5-4d8c-9b0a-1f2e3d4c5b6a",
		"kindle": "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b", "roku": "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0",
	}
)

func newPopulation(rng *rand.Rand, n int, anonShare float64) *population {
	p := &population{users: make([]user, n)}
	for i := range p.users {
		u := &p.users[i]
		u.userID = hexID(rng, 24)
		if rng.Float64() >= anonShare {
			u.externalID = fmt.Sprintf("user-%06d", i+1)
		}
		u.email = fmt.Sprintf("user%d@example.com", i+1)
		u.phone = fmt.Sprintf("+1555%07d", rng.IntN(10_000_000))
		u.deviceID = uuid(rng)
		u.platform = platforms[rng.IntN(len(platforms))]
		u.appID = appIDs[u.platform]
		u.timezone = timezones[rng.IntN(len(timezones))]
		switch u.platform {
		case "ios", "tvos":
			u.adID, u.adIDType = uuid(rng), "ios_idfa"
		case "android", "kindle":
			u.adID, u.adIDType = uuid(rng), "google_ad_id"
		case "roku":
			u.adID, u.adIDType = uuid(rng), "roku_ad_id"
		}
	}
	if n > 1 {
		p.zipf = rand.NewZipf(rng, 1.1, 1, uint64(n-1))
	}
	return p
}

func (p *population) pick() *user {
	if p.zipf == nil {
		return &p.users[0]
	}
	return &p.users[p.zipf.Uint64()]
}

func hexID(rng *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rng.IntN(16)]
	}
	return string(b)
}

// uuid returns a random (version 4) UUID drawn from rng, so output stays deterministic.
func uuid(rng *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var words = []string{"spring", "sale", "welcome", "winback", "onboarding", "vip", "cart", "reminder", "weekly", "digest", "launch", "promo"}

func phrase(rng *rand.Rand, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[rng.IntN(len(words))]
	}
	return strings.Join(parts, " ")
}

// record makes one event of type t queued in the hour starting at hourStart.
// Values follow each field's meaning where the name tells it; optional
// fields are null about a quarter of the time.
func (g *generator) record(t schemas.EventType, hourStart time.Time) map[string]any {
	rng := g.rng
	u := g.users.pick()
	// Queued within the hour; the event itself may be older (SDK queues):
	// mostly seconds, sometimes hours or days late.
	queued := hourStart.Add(time.Duration(rng.IntN(3600)) * time.Second)
	late := time.Duration(rng.ExpFloat64()*120) * time.Second
	if rng.IntN(50) == 0 {
		late += time.Duration(rng.IntN(72)) * time.Hour
	}
	eventTime := queued.Add(-late).Unix()
	return g.fill(t, rng, u, eventTime, nil)
}

// fill makes the record of one event of type t by user u at eventTime,
// drawing the other values from rng. With a story (the realistic profile),
// the story's fields are taken as they are and the user's identity fields
// are never null, so that every event of one user and one chain agrees.
func (g *generator) fill(t schemas.EventType, rng *rand.Rand, u *user, eventTime int64, st *story) map[string]any {
	rec := make(map[string]any, len(t.Fields))
	for _, f := range t.Fields {
		if st != nil {
			if v, ok := st.fields[f.Name]; ok {
				if v == nil && !f.Optional {
					v = g.byType(f, rng)
				}
				rec[f.Name] = convert(f.Type, v)
				continue
			}
		}
		if f.Optional && f.Name != "external_user_id" && (st == nil || !identityFields[f.Name]) && rng.IntN(4) == 0 {
			rec[f.Name] = nil
			continue
		}
		var v any
		switch f.Name {
		case "id":
			v = uuid(rng)
		case "user_id":
			v = u.userID
		case "external_user_id":
			if u.externalID != "" {
				v = u.externalID
			}
		case "time":
			v = eventTime
		case "timezone":
			v = u.timezone
		case "email_address":
			v = u.email
		case "to_phone_number", "user_phone_number":
			v = u.phone
		case "device_id":
			v = u.deviceID
		case "platform":
			v = u.platform
		case "app_id":
			v = u.appID
		case "ad_id":
			v = u.adID
			if st != nil && u.adID == "" {
				v = nil // no advertising id on this platform
			}
		case "ad_id_type":
			v = u.adIDType
			if st != nil && u.adIDType == "" {
				v = nil
			}
		case "ad_tracking_enabled":
			if st != nil && u.adTracking != nil {
				v = *u.adTracking
				break
			}
			v = g.byType(f, rng)
		case "properties":
			props := fmt.Sprintf(`{"plan":"%s","amount":%d,"first":%t`, words[rng.IntN(len(words))], rng.IntN(500), rng.IntN(2) == 0)
			if pad := g.cfg.PropertyBytes - len(props) - len(`,"note":""}`); pad > 0 {
				props += `,"note":"` + strings.Repeat(words[rng.IntN(len(words))][:1], pad) + `"`
			}
			v = props + "}"
		case "currency":
			v = []string{"USD", "EUR", "GBP", "JPY"}[rng.IntN(4)]
		case "os_version":
			if st != nil && u.osVersion != "" {
				v = u.osVersion
				break
			}
			v = fmt.Sprintf("%d.%d", 10+rng.IntN(8), rng.IntN(5))
		case "device_model":
			if st != nil && u.deviceModel != "" {
				v = u.deviceModel
				break
			}
			v = []string{"iPhone15,2", "Pixel 8", "SM-S911B", "iPad13,4", "AFTMM"}[rng.IntN(5)]
		case "url", "link_url":
			v = "https://example.com/" + strings.ReplaceAll(phrase(rng, 2), " ", "/")
		case "name":
			v = strings.ReplaceAll(phrase(rng, 2), " ", "_")
		default:
			v = g.byType(f, rng)
		}
		if v == nil && !f.Optional {
			v = g.byType(f, rng)
		}
		rec[f.Name] = convert(f.Type, v)
	}
	return rec
}

func (g *generator) byType(f schemas.Field, rng *rand.Rand) any {
	switch f.Type {
	case schemas.Boolean:
		return rng.IntN(2) == 0
	case schemas.Int, schemas.Long:
		return int64(rng.IntN(10_000))
	case schemas.Float:
		return math.Round(rng.Float64()*10000) / 100
	case schemas.StringArray, schemas.NullableStringArray:
		n := rng.IntN(3)
		out := make([]any, n)
		for i := range out {
			out[i] = "https://cdn.example.com/" + hexID(rng, 8) + ".png"
		}
		return out
	}
	switch {
	case strings.HasSuffix(f.Name, "_id"):
		return uuid(rng)
	case strings.HasSuffix(f.Name, "_name"):
		return strings.ToUpper(phrase(rng, 1)[:1]) + phrase(rng, 2)[1:]
	case strings.HasPrefix(f.Name, "is_"):
		return []string{"true", "false"}[rng.IntN(2)]
	}
	return phrase(rng, 1+rng.IntN(3))
}

// convert gives hamba/avro's generic encoder the Go type each Avro type wants.
func convert(t schemas.FieldType, v any) any {
	if v == nil {
		return nil
	}
	switch t {
	case schemas.Int:
		return int(toInt(v))
	case schemas.Long:
		return toInt(v)
	case schemas.Float:
		if f, ok := v.(float64); ok {
			return float32(f)
		}
	case schemas.StringArray:
		if a, ok := v.([]any); ok {
			out := make([]string, len(a))
			for i, x := range a {
				out[i], _ = x.(string)
			}
			return out
		}
	}
	return v
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	}
	return 0
}
