// Command currents-docs renders the reference documentation of this
// project's Benthos components from their config specs (the specs are the
// documentation) into docs/. CI checks the committed docs for drift:
//
//	go run ./cmd/currents-docs -out docs          # regenerate
//	go run ./cmd/currents-docs -out docs -check   # fail when docs/ is stale
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/benthosdev/benthos/v4/public/bloblang"
	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle"

	_ "github.com/currents-mparticle/currents-mparticle/plugins/components/currents"
	_ "github.com/currents-mparticle/currents-mparticle/plugins/components/mparticle"
)

// ourComponents are this project's components, by kind: the pages are
// rendered for these only, as the global environment of a test binary also
// holds Benthos's stock components. Running the tool fails when this project
// registers a component missing here.
var ourComponents = map[string][]string{
	"inputs":     {"braze_currents"},
	"scanners":   {"braze_currents"},
	"processors": {"currents_to_mparticle"},
	"outputs":    {"mparticle", "dead_letter_file"},
	"caches":     {"currents_state"},
}

// guides are the hand-written pages of docs/guides/, listed in the index
// (the generator does not write them; the drift check leaves them alone).
var guides = [][2]string{
	{"braze.md", "Braze side: the Current, what lands in the bucket, least-privilege access per cloud, app ids"},
	{"mparticle.md", "mParticle side: one Braze feed per platform, keys and secrets, pods"},
	{"cutover.md", "Cutover from Braze's hosted connector without double counting"},
	{"scale-out-sqs.md", "Scale-out on S3 notifications through SQS"},
	{"operating.md", "Operating it: metrics, replays, dead letter, resuming, sharding, upgrading"},
	{"generator.md", "The test-export generator and its realistic profile"},
}

// handWritten are the pages at the top of docs/ written by hand, listed in
// the index under the guides; like the guides, the generator leaves them
// alone.
var handWritten = [][2]string{
	{"design.md", "Design: how an event travels through the code, the packages, and where a change goes"},
}

// bloblangMethods are this project's Bloblang methods; the global Bloblang
// environment also holds Benthos's own, which are documented upstream.
var bloblangMethods = []string{"currents_to_mparticle", "currents_event_name", "mparticle_feed"}

func main() {
	out := flag.String("out", "docs", "folder to write the docs into")
	check := flag.Bool("check", false, "do not write: exit 1 when a file in -out differs from what would be written")
	flag.Parse()
	files, unlisted, err := render()
	if err == nil && len(unlisted) > 0 {
		err = fmt.Errorf("components registered by this project but not in ourComponents: %s", strings.Join(unlisted, ", "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "currents-docs:", err)
		os.Exit(1)
	}
	if *check {
		stale := stale(*out, files)
		if len(stale) > 0 {
			fmt.Fprintf(os.Stderr, "currents-docs: %s is stale (%s); run: go run ./cmd/currents-docs -out %s\n", *out, strings.Join(stale, ", "), *out)
			os.Exit(1)
		}
		return
	}
	for name, body := range files {
		p := filepath.Join(*out, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "currents-docs:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "currents-docs:", err)
			os.Exit(1)
		}
	}
}

// render returns every doc file by its path relative to the docs folder,
// and the components registered in the global environment that are not in
// ourComponents (in this tool's binary, which imports only this project's
// plugins, that list must be empty).
func render() (files map[string][]byte, unlisted []string, err error) {
	env := service.GlobalEnvironment()
	files = map[string][]byte{}
	var index []string
	var firstErr error
	// First the names of our components, so that links between their pages
	// can be made relative.
	own := ownComponents{}
	for kind, names := range ourComponents {
		own[kind] = map[string]bool{}
		for _, n := range names {
			own[kind][n] = true
		}
	}

	add := func(kind string) func(string, *service.ConfigView) {
		return func(name string, view *service.ConfigView) {
			if !own.has(kind, name) {
				unlisted = append(unlisted, kind+"/"+name)
				return
			}
			specJSON, err := view.FormatJSON()
			var body []byte
			if err == nil {
				body, err = renderComponent(kind, specJSON, own)
			}
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s %s: %w", kind, name, err)
			}
			path := filepath.ToSlash(filepath.Join("components", kind, name+".md"))
			files[path] = body
			index = append(index, fmt.Sprintf("| [`%s`](%s) | %s | %s |", name, path, kind[:len(kind)-1], oneLine(view.Summary())))
		}
	}
	env.WalkInputs(add("inputs"))
	env.WalkScanners(add("scanners"))
	env.WalkProcessors(add("processors"))
	env.WalkOutputs(add("outputs"))
	env.WalkCaches(add("caches"))
	if firstErr != nil {
		return nil, nil, firstErr
	}
	rendered := len(files)
	want := 0
	for _, names := range ourComponents {
		want += len(names)
	}
	if rendered != want {
		return nil, nil, fmt.Errorf("rendered %d components, want %d: is a component of ourComponents no longer registered?", rendered, want)
	}

	var blobl bytes.Buffer
	blobl.WriteString("# Bloblang methods\n\nThis project's Bloblang methods, usable in any `mapping`, `bloblang` or `branch` processor and in `blobl server`.\n")
	found := 0
	bloblang.GlobalEnvironment().WalkMethods(func(name string, view *bloblang.MethodView) {
		for _, m := range bloblangMethods {
			if m == name {
				found++
				js, _ := view.FormatJSON()
				blobl.WriteString(methodDoc(name, js))
			}
		}
	})
	if found > 0 {
		files["bloblang.md"] = blobl.Bytes()
		index = append(index, "| [Bloblang methods](bloblang.md) | bloblang | "+strings.Join(bloblangMethods, ", ")+" |")
	}
	files["mapping.md"] = mappingDoc()
	index = append(index, "| [Mapping table](mapping.md) | mapping | how each Currents event type becomes an mParticle event |")
	sort.Strings(index)
	var guideList strings.Builder
	for _, g := range guides {
		fmt.Fprintf(&guideList, "* [%s](guides/%s): %s\n", strings.TrimSuffix(g[0], ".md"), g[0], g[1])
	}
	for _, g := range handWritten {
		fmt.Fprintf(&guideList, "* [%s](%s): %s\n", strings.TrimSuffix(g[0], ".md"), g[0], g[1])
	}
	files["README.md"] = []byte("# Documentation\n\nGenerated by `go run ./cmd/currents-docs -out docs` from the components' config specs and the list of guides; do not edit by hand.\n\n" +
		"## Guides\n\n" + guideList.String() +
		"\n## Component reference\n\n| component | kind | summary |\n|---|---|---|\n" + strings.Join(index, "\n") + "\n")
	return files, unlisted, nil
}

func isHandWritten(rel string) bool {
	for _, g := range handWritten {
		if g[0] == rel {
			return true
		}
	}
	return false
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func stale(dir string, files map[string][]byte) []string {
	var out []string
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			out = append(out, name)
		}
	}
	// A doc for a component that no longer exists is stale too.
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".md") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(filepath.ToSlash(rel), "guides/") || isHandWritten(filepath.ToSlash(rel)) {
			return nil // written by hand
		}
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			out = append(out, rel+" (no longer generated)")
		}
		return nil
	})
	sort.Strings(out)
	return out
}

type methodExample struct {
	Mapping string     `json:"mapping"`
	Summary string     `json:"summary"`
	Results [][]string `json:"results"`
}

// methodDoc renders one Bloblang method from its spec JSON.
func methodDoc(name string, specJSON []byte) string {
	var spec struct {
		Description string `json:"description"`
		Params      struct {
			Named []struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				Type        string `json:"type"`
				Default     any    `json:"default"`
				Optional    bool   `json:"is_optional"`
			} `json:"named"`
		} `json:"params"`
		Examples   []methodExample `json:"examples"`
		Categories []struct {
			Examples []methodExample `json:"Examples"`
		} `json:"categories"`
	}
	_ = json.Unmarshal(specJSON, &spec)
	// Examples live at the top level or, for methods in a category, under it.
	for _, c := range spec.Categories {
		spec.Examples = append(spec.Examples, c.Examples...)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## `%s`\n\n%s\n", name, strings.TrimSpace(spec.Description))
	if len(spec.Params.Named) > 0 {
		b.WriteString("\n### Parameters\n\n| name | type | default | description |\n|---|---|---|---|\n")
		for _, p := range spec.Params.Named {
			def := ""
			if p.Default != nil {
				d, _ := json.Marshal(p.Default)
				def = "`" + string(d) + "`"
			} else if !p.Optional {
				def = "required"
			}
			typ := p.Type
			if typ == "unknown" {
				typ = "any"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.Name, typ, def, oneLine(p.Description))
		}
	}
	for _, ex := range spec.Examples {
		b.WriteString("\n### Example\n\n")
		if ex.Summary != "" {
			b.WriteString(strings.TrimSpace(ex.Summary) + "\n\n")
		}
		b.WriteString("```coffee\n" + strings.TrimSpace(ex.Mapping) + "\n")
		for _, r := range ex.Results {
			if len(r) == 2 {
				fmt.Fprintf(&b, "\n# In:  %s\n# Out: %s\n", r[0], r[1])
			}
		}
		b.WriteString("```\n")
	}
	return b.String()
}

// mappingDoc renders the mapping catalog as a table.
func mappingDoc() []byte {
	var b strings.Builder
	b.WriteString(`# Mapping table

How each Braze Currents event type becomes an mParticle event with the default options
(those of Braze's hosted connector). Every event also carries: the user's external_user_id as
the ` + "`customer_id`" + ` identity (option ` + "`identity`" + `), its time × 1000 as
` + "`timestamp_unixtime_ms`" + `, its id as ` + "`source_message_id`" + ` (a derived UUID when the
id is not one) and as the ` + "`source_request_id`" + ` custom attribute, ` + "`device_id`" + ` as
` + "`device_info.ios_idfv`" + ` (option ` + "`device_id_mapping`" + `), and every other scalar
field as a custom attribute except id, user_id, external_user_id, time, timezone, platform,
os_version, device_model, ad_id, ad_id_type, ad_tracking_enabled, email_address,
to_phone_number and user_phone_number. Types not listed become custom events named from the type
(option ` + "`unknown_event_types`" + `). Feed "platform field": the event's platform (ios,
android, web; tvos → ios, kindle → android, roku → unbound by default).

| Currents event type | mParticle event_type | event_name | feed | email identity | $mobile from | renamed |
|---|---|---|---|---|---|---|
`)
	for _, m := range mparticle.Catalog() {
		email := ""
		if m.Email {
			email = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n", m.EventType, m.Kind, m.EventName, m.Feed, email, m.Mobile, m.Renames)
	}
	return []byte(b.String())
}
