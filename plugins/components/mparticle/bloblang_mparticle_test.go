package mparticle

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/benthosdev/benthos/v4/public/bloblang"
	"github.com/benthosdev/benthos/v4/public/service"
)

// bloblMPMethods are the methods this file registers.
var bloblMPMethods = []string{"currents_to_mparticle", "mparticle_feed", "currents_event_name"}

// TestBloblangExamples runs every example of every method spec, as Benthos
// runs its own in its repository: the mapping on a message of the input,
// the output compared byte for byte.
func TestBloblangExamples(t *testing.T) {
	found := map[string]bool{}
	bloblang.GlobalEnvironment().WalkMethods(func(name string, view *bloblang.MethodView) {
		for _, want := range bloblMPMethods {
			if name != want {
				continue
			}
			found[name] = true
			raw, err := view.FormatJSON()
			if err != nil {
				t.Fatal(err)
			}
			type example struct {
				Mapping     string      `json:"mapping"`
				Results     [][2]string `json:"results"`
				SkipTesting bool        `json:"skip_testing"`
			}
			var spec struct {
				Description string    `json:"description"`
				Examples    []example `json:"examples"`
				// A method's examples sit in its category.
				Categories []struct {
					Examples []example `json:"examples"`
				} `json:"categories"`
			}
			if err := json.Unmarshal(raw, &spec); err != nil {
				t.Fatal(err)
			}
			examples := spec.Examples
			for _, c := range spec.Categories {
				examples = append(examples, c.Examples...)
			}
			if spec.Description == "" || len(examples) == 0 {
				t.Errorf("%s: no description or no example", name)
			}
			for i, ex := range examples {
				if ex.SkipTesting || len(ex.Results) == 0 {
					t.Errorf("%s example %d is not tested", name, i)
					continue
				}
				exec, err := bloblang.Parse(ex.Mapping)
				if err != nil {
					t.Errorf("%s example %d: %v", name, i, err)
					continue
				}
				for j, io := range ex.Results {
					out, err := service.NewMessage([]byte(io[0])).BloblangQuery(exec)
					if err != nil {
						t.Errorf("%s example %d/%d: %v", name, i, j, err)
						continue
					}
					got, err := out.AsBytes()
					if err != nil {
						t.Fatal(err)
					}
					if string(got) != io[1] {
						t.Errorf("%s example %d/%d\n got %s\nwant %s", name, i, j, got, io[1])
					}
				}
			}
		}
	})
	for _, name := range bloblMPMethods {
		if !found[name] {
			t.Errorf("method %s is not registered", name)
		}
	}
}

func TestBloblangMethods(t *testing.T) {
	for _, c := range []struct {
		name, mapping, input string
		want                 string // exact output, or the error text it must contain
		err                  bool
	}{
		{"uninstall", `root = this.currents_to_mparticle(event_type: "users.behaviors.Uninstall", app_platforms: {"app-1": "android"}).events.index(0).event_type`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","user_id":"u","external_user_id":"x","time":1793527200,"app_id":"app-1"}`, `uninstall`, false},
		{"identity option", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry", identity: "other_id_2").user_identities`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","user_id":"u","external_user_id":"x","time":1793527200}`, `{"other_id_2":"x"}`, false},
		{"user_id fallback", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry", missing_identity: "user_id:other").user_identities`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","user_id":"u","time":1793527200}`, `{"other":"u"}`, false},
		{"integers stay exact", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry").events.index(0).data.timestamp_unixtime_ms`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","user_id":"u","external_user_id":"x","time":1793527200}`, `1793527200000`, false},
		{"excluded type is null", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry", exclude_event_types: ["users.canvas.*"])`,
			`{"id":"x","external_user_id":"x","time":1}`, `null`, false},
		{"missing time is an error", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry")`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","external_user_id":"x"}`, `field time: is missing`, true},
		{"zero time is an error", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry")`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","external_user_id":"x","time":0}`, `(reason invalid_time)`, true},
		// JSON decoding would already replace the bad byte: the event is built
		// in the mapping, "Yf9i" being "a\xffb".
		{"identity not UTF-8 is an error", `root = this.merge({"external_user_id": "Yf9i".decode("base64").string()}).currents_to_mparticle(event_type: "users.canvas.Entry")`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","time":1793527200}`, `field external_user_id: is not valid UTF-8 (byte 1 of 3): it cannot be sent as Braze has it (reason invalid_identity)`, true},
		{"unmappable drop is null", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry", unmappable: "drop")`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","external_user_id":"x"}`, `null`, false},
		{"bad unmappable option", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry", unmappable: "skip")`,
			`{}`, `unmappable: "skip" is not drop or fail`, true},
		{"fail policy", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry", missing_identity: "fail")`,
			`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","time":1}`, `field external_user_id: is missing and missing_identity is fail`, true},
		{"bad option", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry", identity: "customerid")`,
			`{}`, `identity: "customerid" is not an mParticle identity type`, true},
		{"bad attributes option", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry", attributes: {"drop": ["x"]})`,
			`{}`, `unknown key "drop"`, true},
		{"not an object", `root = this.currents_to_mparticle(event_type: "users.canvas.Entry")`,
			`"text"`, `expected object value`, true},
		{"feed by app option", `root = this.mparticle_feed(event_type: "users.campaigns.Conversion", app_platforms: {"a": "web"}, app_id_feed_types: ["users.campaigns.*"])`,
			`{"app_id":"a"}`, `web`, false},
		{"feed platform feeds option", `root = this.mparticle_feed(event_type: "users.messages.pushnotification.Send", platform_feeds: {"roku": "android"})`,
			`{"platform":"roku"}`, `android`, false},
		{"feed wrong kind", `root = this.mparticle_feed(event_type: "users.messages.pushnotification.Send")`,
			`{"platform":3}`, `field platform: is int, want string`, true},
		{"event name", `root = "users.behaviors.app.FirstSession".currents_event_name()`, `{}`, `First Sessions`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			exec, err := bloblang.Parse(c.mapping)
			if err == nil {
				var out *service.Message
				out, err = service.NewMessage([]byte(c.input)).BloblangQuery(exec)
				if err == nil {
					got, _ := out.AsBytes()
					if c.err {
						t.Fatalf("no error, got %s", got)
					}
					if string(got) != c.want {
						t.Fatalf("got %s, want %s", got, c.want)
					}
					return
				}
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}
