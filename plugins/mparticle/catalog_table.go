package mparticle

import "strings"

// TypeMapping describes how one catalog type is mapped, for documentation
// and tooling; the Mapper itself reads the unexported catalog.
type TypeMapping struct {
	EventType string // Currents event type
	EventName string // mParticle event_name, "" when the event has none or names itself
	Kind      string // mParticle event_type: custom_event, uninstall, commerce_event, session_start, session_end
	Feed      string // the default feed rule
	Email     bool   // email_address becomes the email identity
	Mobile    string // the field that becomes the $mobile user attribute, "" for none
	Renames   string // renamed attributes, "from→to", comma-separated
}

// HostedTypes is how many types Braze's hosted connector maps: the first
// HostedTypes entries of Catalog.
func HostedTypes() int { return len(hostedRows) }

// Catalog lists the mapping of every type of the catalog, in catalog order:
// the HostedTypes types of Braze's hosted connector, then the richer
// mappings.
func Catalog() []TypeMapping {
	out := make([]TypeMapping, 0, len(catalogRows))
	for _, e := range catalogRows {
		m := TypeMapping{EventType: e.eventType, EventName: e.name, Email: e.email}
		switch e.kind {
		case kindUninstall:
			m.Kind = "uninstall"
		case kindPurchase:
			m.Kind = "commerce_event"
		case kindSessionStart:
			m.Kind = "session_start"
		case kindSessionEnd:
			m.Kind = "session_end"
		case kindNamedCustom:
			m.Kind, m.EventName = "custom_event", "(the event's name)"
		default:
			m.Kind = "custom_event"
		}
		switch e.feed {
		case byPlatform:
			m.Feed = "platform field"
		case byAppID:
			m.Feed = "app_id map, else unbound"
		default:
			m.Feed = "unbound"
		}
		var mobile []string
		for _, r := range e.mobile {
			mobile = append(mobile, r.field())
		}
		m.Mobile = strings.Join(mobile, ", ")
		var renames []string
		for _, r := range e.renames {
			renames = append(renames, r.from+"→"+r.to)
		}
		m.Renames = strings.Join(renames, ", ")
		out = append(out, m)
	}
	return out
}
