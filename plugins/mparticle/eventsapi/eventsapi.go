// Package eventsapi holds the facts of mParticle's Events API that the
// mapping (plugins/mparticle), the client (plugins/mparticle/client), the
// Benthos components (plugins/components/mparticle) and the emulator
// (plugins/mparticle/emulator) must agree on: the feed inputs of mParticle's
// Braze integration and the ages that decide the historical endpoint. It
// imports nothing of this project, so each of them can import it.
package eventsapi

import (
	"slices"
	"time"
)

// The feed inputs of mParticle's Braze integration, each with its own
// server-to-server key and secret.
const (
	FeedIOS     = "ios"
	FeedAndroid = "android"
	FeedWeb     = "web"
	FeedUnbound = "unbound"
)

var feeds = []string{FeedIOS, FeedAndroid, FeedWeb, FeedUnbound}

// Feeds returns the feed names in the order the docs list them.
func Feeds() []string { return slices.Clone(feeds) }

// IsFeed reports whether name is one of Feeds.
func IsFeed(name string) bool { return slices.Contains(feeds, name) }

// HistoricalAge is the age past which an event is historical: mParticle's
// real-time endpoints are not meant for events older than 30 days, which
// go to /v2/bulkevents/historical instead.
const HistoricalAge = 30 * 24 * time.Hour

// HistoricalMinAge is the age under which /v2/bulkevents/historical refuses
// an event.
const HistoricalMinAge = 72 * time.Hour
