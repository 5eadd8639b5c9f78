package client_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/client"
)

// A dry-run client packs two events of one user into one batch and writes
// the request instead of sending it.
func ExampleClient_Send() {
	var requests bytes.Buffer
	cfg := client.DefaultConfig()
	cfg.URL = "https://s2s.us1.mparticle.com/v2"
	cfg.Credentials = map[string]client.Credentials{"unbound": {Key: "key", Secret: "secret"}}
	cfg.DryRun = &requests
	c, err := client.New(cfg)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	now := time.Now().UnixMilli()
	batch := func(id string) []byte {
		return []byte(fmt.Sprintf(`{"schema_version":2,"environment":"production",`+
			`"user_identities":{"customer_id":"user-1"},"events":[{"event_type":"custom_event",`+
			`"data":{"event_name":"Email Opens","custom_event_type":"other",`+
			`"timestamp_unixtime_ms":%d,"source_message_id":%q}}]}`, now, id))
	}
	errs := c.Send(context.Background(), []client.Item{
		{Feed: "unbound", Batch: batch("3f1c2a52-6a38-4a4e-9d39-3c4f1a3e9b01")},
		{Feed: "unbound", Batch: batch("3f1c2a52-6a38-4a4e-9d39-3c4f1a3e9b02")},
		{Feed: "tvos", Batch: batch("3f1c2a52-6a38-4a4e-9d39-3c4f1a3e9b03")},
	})
	for i, err := range errs {
		if err == nil {
			fmt.Printf("item %d: delivered\n", i)
			continue
		}
		fmt.Printf("item %d: failed: %s\n", i, client.Reason(err))
	}
	fmt.Printf("%+v\n", c.DryRunSummary()["unbound"])
	// Output:
	// item 0: delivered
	// item 1: delivered
	// item 2: failed: feed_not_configured
	// {Requests:1 Batches:1 Events:2}
}
