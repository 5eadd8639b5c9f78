package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The committed docs/ must be what the component specs render today.
func TestDocsAreUpToDate(t *testing.T) {
	files, _, err := render()
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

// Every page of docs/guides/ is in the index, and every guide listed exists.
func TestGuidesAreListed(t *testing.T) {
	onDisk, err := filepath.Glob("../../docs/guides/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var have, listed []string
	for _, p := range onDisk {
		have = append(have, filepath.Base(p))
	}
	for _, g := range guides {
		listed = append(listed, g[0])
	}
	sort.Strings(have)
	sort.Strings(listed)
	if strings.Join(have, ",") != strings.Join(listed, ",") {
		t.Fatalf("docs/guides/ holds %v, the guides list of main.go %v", have, listed)
	}
	if _, err := os.Stat("../../docs/guides"); err != nil {
		t.Fatal(err)
	}
}
