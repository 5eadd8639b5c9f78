package main

import (
	"strings"
	"testing"
)

// The committed docs/ must be what the component specs render today.
func TestDocsAreUpToDate(t *testing.T) {
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"components/inputs/braze_currents.md", "components/scanners/braze_currents.md",
		"components/processors/currents_to_mparticle.md", "components/outputs/mparticle.md", "bloblang.md"} {
		if len(files[want]) == 0 {
			t.Errorf("%s was not rendered", want)
		}
	}
	if s := stale("../../docs", files); len(s) > 0 {
		t.Fatalf("docs/ is stale: %s\nrun: go run ./cmd/currents-docs -out docs", strings.Join(s, ", "))
	}
}
