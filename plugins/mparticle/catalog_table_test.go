package mparticle

import "testing"

func TestCatalogTableCoversEveryRow(t *testing.T) {
	rows := Catalog()
	if len(rows) != len(catalogRows) {
		t.Fatalf("%d rows, catalog has %d", len(rows), len(catalogRows))
	}
	byType := map[string]TypeMapping{}
	for _, r := range rows {
		if r.Kind == "" || r.Feed == "" {
			t.Fatalf("%s: incomplete row %+v", r.EventType, r)
		}
		byType[r.EventType] = r
	}
	checks := []struct {
		typ, name, kind, feed, mobile string
		email                         bool
	}{
		{"users.messages.email.Open", "Email Opens", "custom_event", "unbound", "", true},
		{"users.behaviors.Uninstall", "", "uninstall", "app_id map, else unbound", "", false},
		{"users.messages.pushnotification.Send", "Push Notification Sends", "custom_event", "platform field", "", false},
		{"users.messages.sms.InboundReceive", "SMS Inbound Received", "custom_event", "unbound", "user_phone_number", false},
		{"users.behaviors.Purchase", "", "commerce_event", "platform field", "", false},
	}
	for _, c := range checks {
		r := byType[c.typ]
		if r.EventName != c.name || r.Kind != c.kind || r.Feed != c.feed || r.Mobile != c.mobile || r.Email != c.email {
			t.Errorf("%s: %+v", c.typ, r)
		}
		if c.name != "" && EventName(c.typ) != c.name {
			t.Errorf("%s: EventName %q disagrees with the table", c.typ, EventName(c.typ))
		}
	}
	if byType["users.messages.contentcard.Click"].Renames != "content_card_id→card_id" {
		t.Errorf("content card rename missing: %+v", byType["users.messages.contentcard.Click"])
	}
}
