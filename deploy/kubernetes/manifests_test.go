// Package kubernetes holds the Kubernetes manifests of the two scale-out
// modes (kustomize base and overlays) and their test: every manifest decodes
// strictly into the Kubernetes API types, the workloads carry what operating
// them needs, and the pipeline each one mounts lints with the distribution.
package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's Kustomization these manifests
// use; decoding it strictly makes any other field a failure to look at.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"configMapGenerator"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// tree is one kustomization and everything it pulls in.
type tree struct {
	dir        string
	objects    []any
	configMaps map[string]string // generated ConfigMap name → pipeline file
	secrets    map[string]*corev1.Secret
}

func decodeStrict(t *testing.T, path string, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// load decodes the kustomization in dir and its resources, recursively.
func load(t *testing.T, dir string, tr *tree) {
	t.Helper()
	path := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	decodeStrict(t, path, b, &k)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("%s: apiVersion/kind %s/%s", path, k.APIVersion, k.Kind)
	}
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: resource %s: %v", path, r, err)
		}
		if st.IsDir() {
			load(t, p, tr)
			continue
		}
		loadManifests(t, p, tr)
	}
	for _, g := range k.ConfigMapGenerator {
		if len(g.Files) != 1 {
			t.Fatalf("%s: generator %s: want one pipeline file", path, g.Name)
		}
		tr.configMaps[g.Name] = filepath.Join(dir, g.Files[0])
	}
	for _, img := range k.Images {
		if img.Name == "" || img.NewName == "" {
			t.Fatalf("%s: image override without name/newName", path)
		}
	}
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests decodes every document of a file into its typed object.
func loadManifests(t *testing.T, path string, tr *tree) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, doc := range docSeparator.Split(string(b), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s #%d: %v", path, i, err)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "apps/v1 StatefulSet":
			obj = &appsv1.StatefulSet{}
		default:
			t.Fatalf("%s #%d: no decoder for %s %s: add it to the test", path, i, meta.APIVersion, meta.Kind)
		}
		decodeStrict(t, fmt.Sprintf("%s #%d", path, i), []byte(doc), obj)
		if s, ok := obj.(*corev1.Secret); ok {
			tr.secrets[s.Name] = s
		}
		tr.objects = append(tr.objects, obj)
	}
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestStrictDecodingRefusesUnknownFields shows the decoder is strict.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	var d appsv1.Deployment
	err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 3\n"), &d)
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

// distribution builds cmd/currents-mparticle once.
func distribution(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "currents-mparticle")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/currents-mparticle")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the distribution: %v\n%s", err, out)
	}
	return bin
}

// requiredVars are the ${VAR} of a config without a default.
var requiredVars = regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`)

// shipped maps an overlay's pipeline.yaml to the shipped config it copies.
var shipped = map[string]string{"sqs-consumers": "s3-sqs.yaml", "sharded": "s3.yaml"}

// readmePeakRSSMB is the highest peak RSS the README measured: the whole
// pipeline while the output waits on mParticle's rate limit, its readers
// holding max_in_flight_bytes (bench/memory.sh, throttled). A memory request
// under it would be evicted or OOM-killed in a normal production run.
const readmePeakRSSMB = 356

func TestOverlays(t *testing.T) {
	bin := distribution(t)
	overlays, err := filepath.Glob(filepath.Join("overlays", "*"))
	if err != nil || len(overlays) != 2 {
		t.Fatalf("want the two overlays, got %v (%v)", overlays, err)
	}
	for _, dir := range overlays {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			tr := &tree{dir: dir, configMaps: map[string]string{}, secrets: map[string]*corev1.Secret{}}
			load(t, dir, tr)
			var pod *corev1.PodTemplateSpec
			var kind string
			var replicas int32
			var claims []corev1.PersistentVolumeClaim
			for _, o := range tr.objects {
				switch w := o.(type) {
				case *appsv1.Deployment:
					if w.Name == "currents-mparticle" {
						pod, replicas, kind = &w.Spec.Template, *w.Spec.Replicas, "Deployment"
					}
				case *appsv1.StatefulSet:
					if w.Name == "currents-mparticle" {
						pod, replicas, claims, kind = &w.Spec.Template, *w.Spec.Replicas, w.Spec.VolumeClaimTemplates, "StatefulSet"
					}
				}
			}
			if pod == nil {
				t.Fatal("no currents-mparticle workload")
			}
			if len(pod.Spec.Containers) != 1 {
				t.Fatal("want one container")
			}
			c := pod.Spec.Containers[0]

			// Probes on Benthos's endpoints, resources from the measured memory.
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/ping" {
				t.Error("liveness probe is not GET /ping")
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/ready" {
				t.Error("readiness probe is not GET /ready")
			}
			for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
				if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.String() != "http" {
					t.Errorf("probe on port %s, want the named port http", p.HTTPGet.Port.String())
				}
			}
			if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 4195 {
				t.Errorf("ports %v, want http 4195", c.Ports)
			}
			mem := c.Resources.Requests.Memory()
			if mem.Value() < readmePeakRSSMB*1000*1000 {
				t.Errorf("memory request %s is under the measured peak RSS of %d MB", mem, readmePeakRSSMB)
			}
			if lim := c.Resources.Limits.Memory(); lim.Cmp(*mem) <= 0 {
				t.Errorf("memory limit %s not above the request %s", lim, mem)
			}
			if c.Resources.Requests.Cpu().IsZero() {
				t.Error("no CPU request")
			}

			// The pipeline: a ConfigMap generated from a copy of the shipped config.
			var cmName, mountPath string
			for _, v := range pod.Spec.Volumes {
				if v.ConfigMap != nil {
					cmName = v.ConfigMap.Name
					for _, m := range c.VolumeMounts {
						if m.Name == v.Name {
							mountPath = m.MountPath
						}
					}
				}
			}
			file, ok := tr.configMaps[cmName]
			if !ok {
				t.Fatalf("the pod mounts ConfigMap %q, which no configMapGenerator makes (%v)", cmName, tr.configMaps)
			}
			if got := strings.Join(c.Args, " "); got != "-c "+mountPath+"/"+filepath.Base(file) {
				t.Errorf("args %q do not run the mounted pipeline %s/%s", got, mountPath, filepath.Base(file))
			}
			conf, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			orig, err := os.ReadFile(filepath.Join("..", "..", "configs", shipped[name]))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(conf, orig) {
				t.Errorf("%s differs from configs/%s: copy it again", file, shipped[name])
			}

			// The pod's environment: literal values, the downward API, the Secret.
			env := map[string]string{}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom == nil:
					env[e.Name] = e.Value
				case e.ValueFrom.FieldRef != nil:
					env[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
				default:
					t.Errorf("env %s: unexpected source", e.Name)
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef == nil {
					t.Fatal("envFrom other than a Secret")
				}
				s, ok := tr.secrets[ef.SecretRef.Name]
				if !ok {
					t.Fatalf("envFrom Secret %q is not among the manifests", ef.SecretRef.Name)
				}
				for k := range s.StringData {
					env[k] = "secret"
				}
				if len(s.Data) > 0 {
					t.Errorf("Secret %s: use stringData placeholders", s.Name)
				}
			}
			for _, m := range requiredVars.FindAllStringSubmatch(string(conf), -1) {
				if _, ok := env[m[1]]; !ok {
					t.Errorf("the pipeline requires ${%s}, which the pod does not set", m[1])
				}
			}
			for _, k := range []string{"MPARTICLE_IOS_KEY", "MPARTICLE_IOS_SECRET", "MPARTICLE_ANDROID_KEY", "MPARTICLE_WEB_KEY", "MPARTICLE_UNBOUND_SECRET"} {
				if env[k] != "secret" {
					t.Errorf("%s does not come from the Secret", k)
				}
			}
			if env["HTTP_ADDRESS"] != "0.0.0.0:4195" {
				t.Errorf("HTTP_ADDRESS %q: the probes need 0.0.0.0:4195", env["HTTP_ADDRESS"])
			}

			// Mode-specific: shards and their durable dead letter.
			shardIndexes := []string{""}
			if name == "sharded" {
				if env["SHARD_INDEX"] != "fieldRef:metadata.labels['apps.kubernetes.io/pod-index']" {
					t.Errorf("SHARD_INDEX = %q, want the pod-index label", env["SHARD_INDEX"])
				}
				if n, err := strconv.Atoi(env["SHARD_COUNT"]); err != nil || int32(n) != replicas {
					t.Errorf("SHARD_COUNT %q differs from replicas %d", env["SHARD_COUNT"], replicas)
				}
				if !strings.HasPrefix(env["CHECKPOINT_REDIS_URL"], "redis://") {
					t.Errorf("CHECKPOINT_REDIS_URL %q", env["CHECKPOINT_REDIS_URL"])
				}
				dl := env["DEAD_LETTER_DIR"]
				durable := false
				for _, m := range c.VolumeMounts {
					for _, cl := range claims {
						if m.Name == cl.Name && m.MountPath == dl {
							durable = true
						}
					}
				}
				if !durable {
					t.Errorf("DEAD_LETTER_DIR %q is not a mounted volume claim", dl)
				}
				shardIndexes = nil
				for i := 0; i < int(replicas); i++ {
					shardIndexes = append(shardIndexes, strconv.Itoa(i))
				}
			} else if strings.Contains(string(conf), "DEAD_LETTER_DIR") {
				t.Error("the SQS mode's pipeline writes a dead letter to disk; its dead letter is the queue's redrive")
			}
			if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Error("the root filesystem is writable: nothing may be kept on the container's disk")
			}

			// The pipeline lints with the distribution, in the pod's environment.
			for _, idx := range shardIndexes {
				var vars []string
				for k, v := range env {
					switch {
					case strings.HasPrefix(v, "fieldRef:"):
						v = idx
					case v == "secret":
						v = "lint-placeholder"
					}
					vars = append(vars, k+"="+v)
				}
				sort.Strings(vars)
				cmd := exec.Command(bin, "lint", file)
				cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, vars...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("lint %s (shard %q): %v\n%s", file, idx, err, out)
				}
			}
			t.Logf("%s: %d manifests decoded strictly; %s, %d replicas, requests %s/%s; pipeline %s = configs/%s lints in the pod's environment (%d shard indexes)",
				name, len(tr.objects), kind, replicas, c.Resources.Requests.Cpu(), mem, filepath.Base(file), shipped[name], len(shardIndexes))
		})
	}
}
