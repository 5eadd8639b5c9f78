package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// deadLetterClaim is how a config's comments say that events go to its
// dead letter.
var deadLetterClaim = regexp.MustCompile(`(?i)\bto (the|a|your) dead[- ]letter\b|\bdead letter\)|, dead letter\b`)

// TestShippedConfigsKeepTheirPromises reads every shipped pipeline (configs/
// and the Kubernetes overlays) and checks what its comments and guides
// promise against what it configures: a config that says events go to a
// dead letter has a fallback output to hold them; an SQS consumer bounds
// its retries and its pause below the visibility timeout, as
// docs/guides/scale-out-sqs.md requires; a config reading a bucket says
// which app is which (app_platforms), so that uninstalls reach the iOS and
// Android feeds.
func TestShippedConfigsKeepTheirPromises(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	overlays, _ := filepath.Glob(filepath.Join("..", "deploy", "kubernetes", "overlays", "*", "pipeline.yaml"))
	paths = append(paths, overlays...)
	checked := 0
	for _, p := range paths {
		if strings.HasSuffix(p, "_benthos_test.yaml") {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var conf map[string]any
		if err := yaml.Unmarshal(raw, &conf); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		checked++
		var comments strings.Builder
		for _, l := range strings.Split(string(raw), "\n") {
			if i := strings.Index(l, "#"); i >= 0 && (i == 0 || l[i-1] == ' ') {
				comments.WriteString(l[i:] + "\n")
			}
		}
		name := filepath.ToSlash(strings.TrimPrefix(p, ".."+string(filepath.Separator)))
		mp := find(conf["output"], "mparticle")
		if m := deadLetterClaim.FindString(comments.String()); m != "" && find(conf["output"], "fallback") == nil {
			t.Errorf("%s: its comments promise a dead letter (%q) but its output has no fallback", name, m)
		}
		if sqs := find(find(conf["input"], "aws_s3"), "sqs"); sqs != nil {
			mpm, _ := mp.(map[string]any)
			backoff, _ := mpm["backoff"].(map[string]any)
			if v, _ := backoff["max_elapsed_time"].(string); v == "" || strings.HasPrefix(v, "0") {
				t.Errorf("%s: an SQS consumer must bound backoff.max_elapsed_time below the visibility timeout; it has %q", name, v)
			}
			if v, _ := mpm["auth_failure_window"].(string); v == "" {
				t.Errorf("%s: an SQS consumer must bound auth_failure_window below the visibility timeout", name)
			}
		}
		if readsBucket(conf["input"]) && find(conf["pipeline"], "currents_to_mparticle") != nil {
			if ctm, _ := find(conf["pipeline"], "currents_to_mparticle").(map[string]any); ctm == nil || ctm["app_platforms"] == nil {
				t.Errorf("%s: reads a bucket but says no app_platforms (uninstalls would all go to unbound)", name)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d configs: the globs found too few", checked)
	}
}

// find returns the first value under key, searching v depth first.
func find(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		if got, ok := x[key]; ok {
			return got
		}
		for _, c := range x {
			if got := find(c, key); got != nil {
				return got
			}
		}
	case []any:
		for _, c := range x {
			if got := find(c, key); got != nil {
				return got
			}
		}
	}
	return nil
}

// readsBucket reports an input that reads a cloud bucket.
func readsBucket(input any) bool {
	if bc, ok := find(input, "braze_currents").(map[string]any); ok {
		u, _ := bc["url"].(string)
		return !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "${CURRENTS_URL")
	}
	for _, k := range []string{"aws_s3", "gcp_cloud_storage", "azure_blob_storage"} {
		if find(input, k) != nil {
			return true
		}
	}
	return false
}
