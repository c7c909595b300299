// Package batch runs a manifest of (model, target) conversions — a model
// zoo requantized to several formats and types — deterministically,
// idempotently and resumably, optionally sharded across a cluster, scoring
// every output and writing a comparison report.
//
// Each item's output is written atomically by the converter (temporary file
// renamed into place). After the output is in place, a small record
// (<output>.qb.json) is written beside it, also atomically; it holds the
// identity of the input (file sizes and modification times), the settings,
// and the results. An item whose record matches the current input and
// settings, and whose output still has the recorded size, is complete and is
// not redone. A run killed at any moment therefore leaves at worst an output
// without a record (redone on the next run) or a temporary file (removed by
// the next conversion to that output), never a partial output at the final
// path. Run validates the whole manifest (Validate) before doing anything.
//
// Sharding assigns item k (in manifest order: models outer, targets inner) to
// shard k mod N, so N shards cover every item exactly once. In pull mode
// (Options.Pull) any number of workers share the items instead: each claims
// the next item with an exclusively created claim file beside its output,
// renews it while working, and takes over the claims of dead workers (see
// claim.go and docs/batch-clusters.md).
package batch

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/quantbridge/quantbridge/internal/osfile"
	"gopkg.in/yaml.v3"
)

// Manifest is the YAML batch description.
type Manifest struct {
	Models    []ModelSpec `yaml:"models"`
	Targets   []Target    `yaml:"targets"`
	OutputDir string      `yaml:"output_dir"`
	Eval      *EvalSpec   `yaml:"eval,omitempty"`
	// Jobs is the default worker count per conversion (0 = all cores).
	Jobs int `yaml:"jobs,omitempty"`

	dir string // directory of the manifest file: relative paths resolve against it
}

// ModelSpec names one input model.
type ModelSpec struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"` // HF dir, MLX dir or .gguf
}

// Target is one output variant.
type Target struct {
	Format    string `yaml:"format"`               // gguf, mlx or hf
	Type      string `yaml:"type"`                 // Q4_K_M, INT4, F16, ...
	GroupSize int    `yaml:"group_size,omitempty"` // MLX only; default 64
}

// EvalSpec asks for every output to be scored.
type EvalSpec struct {
	Text   string `yaml:"text"`
	Ctx    int    `yaml:"ctx,omitempty"`    // default 512
	Chunks int    `yaml:"chunks,omitempty"` // 0 = all
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// maxManifest bounds the manifest file (one of ten thousand models is
// about 1 MB of YAML).
const maxManifest = 1 << 20

// ParseManifest reads and validates a manifest file. Relative paths in it
// are resolved against the manifest's directory.
func ParseManifest(path string) (*Manifest, error) {
	data, err := osfile.ReadLimited(path, maxManifest)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.dir = filepath.Dir(path)
	return m, nil
}

func parseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid manifest: %w", err)
	}
	if len(m.Models) == 0 {
		return nil, fmt.Errorf("manifest lists no models")
	}
	if len(m.Targets) == 0 {
		return nil, fmt.Errorf("manifest lists no targets")
	}
	if m.OutputDir == "" {
		m.OutputDir = "out"
	}
	seen := map[string]bool{}
	for i, md := range m.Models {
		if !nameRE.MatchString(md.Name) {
			return nil, fmt.Errorf("models[%d]: name %q must be letters, digits, '.', '_' or '-'", i, md.Name)
		}
		if seen[md.Name] {
			return nil, fmt.Errorf("models[%d]: duplicate name %q", i, md.Name)
		}
		seen[md.Name] = true
		if md.Path == "" {
			return nil, fmt.Errorf("models[%d] (%s): path is empty", i, md.Name)
		}
	}
	tseen := map[string]bool{}
	for i := range m.Targets {
		t := &m.Targets[i]
		t.Format = strings.ToLower(t.Format)
		switch t.Format {
		case "gguf", "hf":
			if t.GroupSize != 0 {
				return nil, fmt.Errorf("targets[%d]: group_size applies to format mlx only", i)
			}
		case "mlx":
			if t.GroupSize == 0 {
				t.GroupSize = 64
			}
			if t.GroupSize != 32 && t.GroupSize != 64 && t.GroupSize != 128 {
				return nil, fmt.Errorf("targets[%d]: group_size %d (want 32, 64 or 128)", i, t.GroupSize)
			}
		default:
			return nil, fmt.Errorf("targets[%d]: format %q (want gguf, mlx or hf)", i, t.Format)
		}
		if t.Type == "" {
			return nil, fmt.Errorf("targets[%d]: type is empty", i)
		}
		if !nameRE.MatchString(t.Type) {
			// The type is part of the output's file name.
			return nil, fmt.Errorf("targets[%d]: type %q must be letters, digits, '.', '_' or '-'", i, t.Type)
		}
		t.Type = strings.ToUpper(t.Type)
		if tseen[t.Slug()] {
			return nil, fmt.Errorf("targets[%d]: duplicate target %s", i, t.Slug())
		}
		tseen[t.Slug()] = true
	}
	if m.Eval != nil {
		if m.Eval.Text == "" {
			return nil, fmt.Errorf("eval: text is empty")
		}
		if m.Eval.Ctx == 0 {
			m.Eval.Ctx = 512
		}
		if m.Eval.Ctx < 8 || m.Eval.Chunks < 0 {
			return nil, fmt.Errorf("eval: ctx %d / chunks %d out of range", m.Eval.Ctx, m.Eval.Chunks)
		}
	}
	return &m, nil
}

// Slug names a target in file names: "gguf-Q4_K_M", "mlx-INT4-g64".
func (t Target) Slug() string {
	if t.Format == "mlx" {
		return fmt.Sprintf("mlx-%s-g%d", t.Type, t.GroupSize)
	}
	return t.Format + "-" + t.Type
}

// Item is one (model, target) unit of work.
type Item struct {
	Index  int // position in manifest order
	Model  ModelSpec
	Target Target
	Input  string // resolved input path
	Output string // resolved output path
}

// ID identifies an item: "<model>/<target slug>".
func (it Item) ID() string { return it.Model.Name + "/" + it.Target.Slug() }

// Items expands the manifest into its items, models outer, targets inner.
func (m *Manifest) Items() []Item {
	var items []Item
	for _, md := range m.Models {
		for _, t := range m.Targets {
			name := md.Name + "-" + t.Type
			if t.Format == "mlx" {
				name = fmt.Sprintf("%s-mlx-%s-g%d", md.Name, strings.ToLower(t.Type), t.GroupSize)
			} else if t.Format == "hf" {
				name = md.Name + "-hf-" + strings.ToLower(t.Type)
			} else {
				name += ".gguf"
			}
			items = append(items, Item{
				Index:  len(items),
				Model:  md,
				Target: t,
				Input:  m.resolve(md.Path),
				Output: filepath.Join(m.resolve(m.OutputDir), md.Name, name),
			})
		}
	}
	return items
}

// EvalText returns the resolved evaluation text path ("" without eval).
func (m *Manifest) EvalText() string {
	if m.Eval == nil {
		return ""
	}
	return m.resolve(m.Eval.Text)
}

func (m *Manifest) resolve(p string) string {
	if filepath.IsAbs(p) || m.dir == "" {
		return p
	}
	return filepath.Join(m.dir, p)
}
