package e2e

import (
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// TestConfigEmulatorWithAPausedFeed runs configs/emulator.yaml (the stock
// file input with the braze_currents scanner, one pass) while mParticle
// refuses android's credentials for 10 s: the feed pauses, the output holds
// its events (a stock input's run could end before a handed-back message
// came round again: 57 android events were lost that way), and they are
// delivered once the feed is back, before the run ends.
func TestConfigEmulatorWithAPausedFeed(t *testing.T) {
	runEmulatorConfig(t, emulator.Faults{ForbiddenFeeds: []string{"android"}, ForbiddenUntil: time.Now().Add(10 * time.Second)})
}
