// Package redelivery marks the messages of an input that, by itself, reads
// again exactly the events an output refused for now: the braze_currents
// input re-reads an object for its undelivered events once they are
// nacked, however its run ends. The mparticle output hands such messages
// back at once when their feed is paused (403), so that the other feeds
// keep flowing; it holds any other message until its feed is back or the
// auth window ends, because a stock input's one-pass run can end before a
// nacked message comes round again, and its events would be lost.
//
// The mark rides in the message's context, which Benthos keeps through
// processors and copies.
package redelivery

import "context"

type key struct{}

// Mark returns parent marked: messages built on it come from an input that
// reads refused events again.
func Mark(parent context.Context) context.Context {
	return context.WithValue(parent, key{}, true)
}

// Marked reports whether ctx (a message's context) carries the mark.
func Marked(ctx context.Context) bool {
	v, _ := ctx.Value(key{}).(bool)
	return v
}
