package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/benthosdev/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	// The components of the distribution: a snippet that lints here lints
	// with the binary.
	_ "github.com/currents-mparticle/currents-mparticle/internal/distribution"
)

const repoRoot = "../.."

// docFiles are the Markdown files users read: README.md and docs/**/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{filepath.Join(repoRoot, "README.md")}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

type codeBlock struct {
	file string
	line int // of the opening fence
	info string
	text string
}

var fence = regexp.MustCompile("^(\\s*)(```+|~~~+)\\s*([^\\s`]*)")

// codeBlocks returns the fenced code blocks of a Markdown file.
func codeBlocks(file string, src string) []codeBlock {
	var out []codeBlock
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, marker, info := m[1], m[2], strings.ToLower(m[3])
		var body []string
		j := i + 1
		for ; j < len(lines); j++ {
			if strings.HasPrefix(strings.TrimSpace(lines[j]), marker) && strings.TrimSpace(strings.Trim(strings.TrimSpace(lines[j]), marker[:1])) == "" {
				break
			}
			body = append(body, strings.TrimPrefix(lines[j], indent))
		}
		out = append(out, codeBlock{file: file, line: i + 1, info: info, text: strings.Join(body, "\n") + "\n"})
		i = j
	}
	return out
}

// placeholderEnv gives every ${VAR} of a snippet a value of the right kind.
func placeholderEnv(name string) (string, bool) {
	switch {
	case name == "MPARTICLE_POD":
		return "eu1", true
	case name == "MPARTICLE_URL":
		return "http://127.0.0.1:8080/v2", true
	case strings.HasSuffix(name, "_INDEX"):
		return "0", true
	case strings.HasSuffix(name, "_COUNT"):
		return "2", true
	case name == "REPLAY_SINCE":
		return "2026-11-01-00", true
	case name == "REPLAY_UNTIL":
		return "2026-11-02-00", true
	case strings.HasSuffix(name, "_URL"):
		return "s3://placeholder-bucket/currents?region=us-east-1", true
	}
	return "placeholder-" + strings.ToLower(name), true
}

// configKeys are the top-level sections of a Benthos config.
var configKeys = map[string]bool{
	"input": true, "output": true, "pipeline": true, "buffer": true, "http": true,
	"input_resources": true, "output_resources": true, "processor_resources": true,
	"cache_resources": true, "rate_limit_resources": true, "metrics": true, "logger": true,
	"tracer": true, "shutdown_delay": true, "shutdown_timeout": true, "tests": true,
}

// asConfig turns a YAML block into a full config to lint: a config as it
// is; a `scanner:` block inside a file input; a `processors:` list or a
// processor inside the pipeline; an input or output component under its
// section. ok is false for a block that is neither (a plain YAML example,
// to be marked "# fragment").
func asConfig(text string) (conf string, ok bool, err error) {
	var root map[string]any
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		return "", false, err
	}
	var keys []string
	for k := range root {
		if k == "label" {
			continue
		}
		if configKeys[k] {
			return text, true, nil
		}
		keys = append(keys, k)
	}
	if len(keys) != 1 {
		return "", false, nil
	}
	indent := func(s string, n int) string {
		pad := strings.Repeat(" ", n)
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		for i, l := range lines {
			if l != "" {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "\n") + "\n"
	}
	listItem := func(s string, n int) string {
		b := indent(s, n+2)
		return strings.Repeat(" ", n) + "- " + b[n+2:]
	}
	env := service.GlobalEnvironment()
	var isProc, isOut, isIn, isCache bool
	env.WalkCaches(func(n string, _ *service.ConfigView) { isCache = isCache || n == keys[0] })
	env.WalkProcessors(func(n string, _ *service.ConfigView) { isProc = isProc || n == keys[0] })
	env.WalkOutputs(func(n string, _ *service.ConfigView) { isOut = isOut || n == keys[0] })
	env.WalkInputs(func(n string, _ *service.ConfigView) { isIn = isIn || n == keys[0] })
	switch {
	case keys[0] == "scanner":
		return "input:\n  file:\n    paths: [ ./placeholder.avro ]\n" + indent(text, 4), true, nil
	case isCache:
		return "cache_resources:\n  - label: snippet\n" + indent(text, 4), true, nil
	case keys[0] == "cache_resources":
		return text, true, nil
	case keys[0] == "processors":
		return "pipeline:\n" + indent(text, 2), true, nil
	case isProc:
		return "pipeline:\n  processors:\n" + listItem(text, 4), true, nil
	case isOut:
		return "output:\n" + indent(text, 2), true, nil
	case isIn:
		return "input:\n" + indent(text, 2), true, nil
	}
	return "", false, nil
}

// TestDocSnippets lints every YAML block of README.md and docs/ with the
// distribution's components, and builds the outputs, processors and
// resources of each, which catches what only a constructor refuses (an
// output with both url and pod, Benthos batching on the mparticle output).
// A block whose first line starts with "# fragment" is only parsed.
func TestDocSnippets(t *testing.T) {
	var blocks []codeBlock
	for _, f := range docFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range codeBlocks(f, string(src)) {
			if b.info == "yaml" || b.info == "yml" {
				blocks = append(blocks, b)
			}
		}
	}
	if len(blocks) < 10 {
		t.Fatalf("found only %d YAML blocks: is the fence parser broken?", len(blocks))
	}
	t.Chdir(t.TempDir()) // relative paths in snippets (files, folders) land here
	linted := 0
	for _, b := range blocks {
		where := fmt.Sprintf("%s:%d", strings.TrimPrefix(b.file, repoRoot+"/"), b.line)
		if strings.HasPrefix(strings.TrimSpace(b.text), "# fragment") {
			var v any
			if err := yaml.Unmarshal([]byte(b.text), &v); err != nil {
				t.Errorf("%s: fragment is not valid YAML: %v", where, err)
			}
			continue
		}
		conf, ok, err := asConfig(b.text)
		if err != nil {
			t.Errorf("%s: not valid YAML: %v", where, err)
			continue
		}
		if !ok {
			t.Errorf("%s: neither a config nor a component; mark it \"# fragment\" on its first line if it is meant to be partial", where)
			continue
		}
		linted++
		if err := lintConfig(conf); err != nil {
			t.Errorf("%s: does not lint:\n%v\n--- config:\n%s", where, err, conf)
			continue
		}
		if err := buildConfig(conf); err != nil {
			t.Errorf("%s: lints but is refused when built: %v\n--- config:\n%s", where, err, conf)
		}
	}
	t.Logf("%d YAML blocks, %d linted and built as configs", len(blocks), linted)
}

func lintConfig(conf string) error {
	sb := service.NewStreamBuilder()
	sb.SetEnvVarLookupFunc(placeholderEnv)
	return sb.SetYAML(conf)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::([^}]*))?\}`)

// buildConfig constructs the processors, outputs and resources of a config
// (not its input, which would reach for the bucket: it is replaced by one
// that never produces a message), so nothing is sent anywhere.
func buildConfig(conf string) error {
	conf = envRef.ReplaceAllStringFunc(conf, func(m string) string {
		p := envRef.FindStringSubmatch(m)
		if p[2] != "" {
			return p[2]
		}
		v, _ := placeholderEnv(p[1])
		return v
	})
	var root map[string]any
	if err := yaml.Unmarshal([]byte(conf), &root); err != nil {
		return err
	}
	if _, ok := root["output"]; !ok {
		root["output"] = map[string]any{"drop": map[string]any{}}
	}
	root["input"] = map[string]any{"inproc": "docs-test-never-produces"}
	root["http"] = map[string]any{"enabled": false}
	root["metrics"] = map[string]any{"none": map[string]any{}}
	root["logger"] = map[string]any{"level": "NONE"}
	delete(root, "tests")
	// Resources refer to folders the user creates first (a file cache).
	if caches, ok := root["cache_resources"].([]any); ok {
		for _, c := range caches {
			if m, ok := c.(map[string]any); ok {
				if f, ok := m["file"].(map[string]any); ok {
					if dir, ok := f["directory"].(string); ok {
						_ = os.MkdirAll(dir, 0o755)
					}
				}
			}
		}
	}
	out, err := yaml.Marshal(root)
	if err != nil {
		return err
	}
	sb := service.NewStreamBuilder()
	sb.DisableLinting()
	if err := sb.SetYAML(string(out)); err != nil {
		return err
	}
	strm, err := sb.Build()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = strm.Run(ctx)
	_ = strm.StopWithin(5 * time.Second)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // built and running: the constructors accepted it
	}
	if err == nil {
		return errors.New("the stream ended at once")
	}
	return err
}

var mdLinkRef = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// TestDocLinks checks that every relative link of README.md and docs/
// reaches a file, and a heading of it when it has an anchor; and that no
// link is left in the layout of Benthos's website (/docs/...).
func TestDocLinks(t *testing.T) {
	anchors := map[string]map[string]bool{}
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		src, _ := os.ReadFile(file)
		a := headingSlugs(string(src))
		anchors[file] = a
		return a
	}
	checked := 0
	for _, f := range docFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := stripCode(string(src))
		for _, m := range mdLinkRef.FindAllStringSubmatch(text, -1) {
			target := m[1]
			where := strings.TrimPrefix(f, repoRoot+"/")
			if strings.HasPrefix(target, "/") {
				t.Errorf("%s: link %s is absolute to a website layout; link the file relatively or give a full URL", where, target)
				continue
			}
			if u, err := url.Parse(target); err == nil && u.Scheme != "" {
				continue // http(s), mailto: not checked here
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := f
			if path != "" {
				file = filepath.Join(filepath.Dir(f), path)
				info, err := os.Stat(file)
				if err != nil {
					t.Errorf("%s: link %s: no such file", where, target)
					continue
				}
				if info.IsDir() || !strings.HasSuffix(file, ".md") {
					checked++
					continue
				}
			}
			checked++
			if anchor != "" && !anchorsOf(file)[anchor] {
				t.Errorf("%s: link %s: no heading with anchor #%s in %s", where, target, anchor, strings.TrimPrefix(file, repoRoot+"/"))
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d links: is the link parser broken?", checked)
	}
}

// stripCode blanks fenced code blocks and code spans, where a ](...) is not
// a link.
func stripCode(src string) string {
	var out []string
	in := ""
	for _, l := range strings.Split(src, "\n") {
		m := fence.FindStringSubmatch(l)
		switch {
		case in == "" && m != nil:
			in = m[2]
			out = append(out, "")
		case in != "" && strings.HasPrefix(strings.TrimSpace(l), in):
			in = ""
			out = append(out, "")
		case in != "":
			out = append(out, "")
		default:
			out = append(out, regexp.MustCompile("`[^`]*`").ReplaceAllString(l, "``"))
		}
	}
	return strings.Join(out, "\n")
}

// headingSlugs returns the anchors GitHub gives the headings of a file:
// lower case, punctuation removed except - and _, spaces to -, and -1, -2
// for repeats.
func headingSlugs(src string) map[string]bool {
	slugs := map[string]bool{}
	seen := map[string]int{}
	for _, l := range strings.Split(stripFencesOnly(src), "\n") {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimLeft(l, "#")
		if len(h) == len(l) || len(l)-len(h) > 6 || (h != "" && h[0] != ' ') {
			continue
		}
		slug := githubSlug(strings.TrimSpace(h))
		if n := seen[slug]; n > 0 {
			slugs[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			slugs[slug] = true
		}
		seen[slug]++
	}
	return slugs
}

func githubSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func stripFencesOnly(src string) string {
	var out []string
	in := ""
	for _, l := range strings.Split(src, "\n") {
		m := fence.FindStringSubmatch(l)
		switch {
		case in == "" && m != nil:
			in = m[2]
		case in != "" && strings.HasPrefix(strings.TrimSpace(l), in):
			in = ""
		case in == "":
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestGithubSlug(t *testing.T) {
	for h, want := range map[string]string{
		"A five-minute tour":                            "a-five-minute-tour",
		"What it does better than the hosted connector": "what-it-does-better-than-the-hosted-connector",
		"`feeds.ios.key`":                               "feedsioskey",
		"Credentials and their rotation":                "credentials-and-their-rotation",
		"`currents_to_mparticle` processor":             "currents_to_mparticle-processor",
	} {
		if got := githubSlug(h); got != want {
			t.Errorf("githubSlug(%q) = %q, want %q", h, got, want)
		}
	}
}

// Both lint and the build step catch what the output refuses.
func TestBuildConfigCatchesRefusedOutputs(t *testing.T) {
	t.Chdir(t.TempDir())
	base := "output:\n  mparticle:\n    feeds: { unbound: { key: k, secret: s } }\n    dry_run: true\n"
	if err := buildConfig(base + "    pod: eu1\n"); err != nil {
		t.Fatalf("a valid output was refused: %v", err)
	}
	for name, extra := range map[string]string{
		"url and pod": "    pod: eu1\n    url: https://s2s.eu1.mparticle.com/v2\n",
		"batching":    "    pod: eu1\n    batching: { count: 100, period: 1s }\n",
	} {
		conf := base + extra
		// The output's lint rules catch these now; the build step must
		// refuse them on its own as well, for refusals no rule can see.
		if err := lintConfig(conf); err == nil {
			t.Errorf("%s: linted without error, want the output's lint rule to refuse it", name)
		}
		if err := buildConfig(conf); err == nil {
			t.Errorf("%s: built without error, want the output to refuse it", name)
		}
	}
}
