// Package configlint warns of what Benthos's lint cannot see in a config:
// how this project's components combine with stock ones. A scanner's lint
// rules see only the scanner's own fields, not the input it sits in, so the
// distribution (cmd/currents-mparticle) runs these checks itself, on `lint`
// and when a run starts.
package configlint

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Warning is one finding, at a line of the config (1-based, 0 unknown).
type Warning struct {
	Line    int
	Message string
}

func (w Warning) String() string {
	if w.Line == 0 {
		return w.Message
	}
	return fmt.Sprintf("line %d: %s", w.Line, w.Message)
}

// rereadless are the stock inputs that hand the braze_currents scanner an
// object once: a connection lost mid-object loses the rest of it (the
// scanner names the object, counts it unreadable, and the run exits 3).
// aws_s3 with sqs.url is not among them: its message becomes visible again.
var rereadless = map[string]string{
	"aws_s3":             "aws_s3 in listing mode (no sqs.url)",
	"gcp_cloud_storage":  "gcp_cloud_storage",
	"azure_blob_storage": "azure_blob_storage",
}

// Check parses a Benthos config and returns its warnings, in document
// order. Environment variables are not resolved: an `sqs.url` of
// `${QUEUE_URL}` counts as set.
func Check(config []byte) ([]Warning, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return nil, err
	}
	var out []Warning
	walk(&doc, func(key, value *yaml.Node) {
		what, ok := rereadless[key.Value]
		if !ok || value.Kind != yaml.MappingNode || get(get(value, "scanner"), "braze_currents") == nil {
			return
		}
		if key.Value == "aws_s3" {
			if u := get(get(value, "sqs"), "url"); u != nil && u.Value != "" {
				return
			}
		}
		out = append(out, Warning{Line: key.Line, Message: what + " with the braze_currents scanner reads each object once: " +
			"a connection lost mid-object loses its later events (the object is named in the log, counted in " +
			"currents_objects_failed{class=\"unreadable\"}, and the run exits 3). The braze_currents input reads such an " +
			"object again, and so does aws_s3 with sqs (once the message is visible again)."})
	})
	return out, nil
}

// walk calls fn for every key and value of every mapping under n.
func walk(n *yaml.Node, fn func(key, value *yaml.Node)) {
	if n == nil {
		return
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			fn(n.Content[i], n.Content[i+1])
		}
	}
	for _, c := range n.Content {
		walk(c, fn)
	}
}

// get is the value of key in mapping n, nil when n is not a mapping or
// lacks it.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
