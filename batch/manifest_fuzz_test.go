package batch

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParseManifest feeds arbitrary YAML to the manifest parser. An
// accepted manifest has valid, distinct model names and targets; its items
// are models × targets, with distinct outputs inside the output directory;
// and it survives a marshal/parse round trip unchanged.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(testManifest))
	f.Add([]byte("models: [{name: a, path: x}]\ntargets: [{format: HF, type: f16}, {format: mlx, type: int8, group_size: 32}]\njobs: 3\n"))
	f.Add([]byte("models:\n  - &m {name: a, path: x}\n  - *m\ntargets: [{format: gguf, type: Q8_0}]\neval: {text: t, chunks: -1}\n"))
	f.Add([]byte("models: [{name: a, path: x}]\ntargets: [{format: gguf, type: \"Q8_0\\u0000\"}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		m, err := parseManifest(data)
		if err != nil {
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			return
		}
		m.dir = "/base"
		if len(m.Models) == 0 || len(m.Targets) == 0 || m.OutputDir == "" {
			t.Fatalf("accepted an empty manifest: %+v", m)
		}
		items := m.Items()
		if len(items) != len(m.Models)*len(m.Targets) {
			t.Fatalf("%d items for %d models × %d targets", len(items), len(m.Models), len(m.Targets))
		}
		root := m.resolve(m.OutputDir)
		seen := map[string]bool{}
		for _, it := range items {
			rel, err := filepath.Rel(root, it.Output)
			if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.Dir(rel) != it.Model.Name {
				t.Fatalf("item %s: output %q is not a file of %s/%s", it.ID(), it.Output, root, it.Model.Name)
			}
			if seen[it.Output] || seen[it.ID()] {
				t.Fatalf("item %s: output %q or id used twice", it.ID(), it.Output)
			}
			seen[it.Output], seen[it.ID()] = true, true
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := parseManifest(out)
		if err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v\n%s", err, out)
		}
		m2.dir = m.dir
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", m2, m, out)
		}
	})
}

// TestParseManifestSizeCap: a manifest over maxManifest is refused before
// it is read, naming the file, its size and the limit (the file is sparse).
func TestParseManifestSizeCap(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(p, []byte(testManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 510<<20); err != nil {
		t.Fatal(err)
	}
	_, err := ParseManifest(p)
	if err == nil || !strings.Contains(err.Error(), p+": 534773760 bytes, over the 1048576-byte limit") {
		t.Errorf("error %v", err)
	}
}
