package safetensors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// IndexName is the shard index file of a sharded checkpoint.
const IndexName = "model.safetensors.index.json"

// maxIndexSize bounds the index.json read into memory (a 1T-parameter
// mixture of experts lists about 150k tensors, some 15 MB).
const maxIndexSize = 64 << 20

// maxIndexMetadata bounds the index's "metadata" object, decoded into
// generic values (up to about 60 bytes of memory per input byte). Real ones
// hold total_size and total_parameters.
const maxIndexMetadata = 1 << 20

// Checkpoint is a set of safetensors files opened together.
type Checkpoint struct {
	// Path is what OpenCheckpoint was given.
	Path  string
	Files []*File
	// Tensors carry the ORIGINAL names as stored, Type = DType, Data = the
	// tensor's section; in file order, files in index/name order.
	Tensors []*graph.Tensor
	// Metadata is the first file's __metadata__ (nil when absent or null).
	Metadata map[string]string
	// Index is the parsed index.json, when the checkpoint had one.
	Index *Index
}

// Index is a model.safetensors.index.json.
type Index struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// Close closes every file.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.Files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// CheckpointFiles returns the safetensors files OpenCheckpoint would open
// for path, and the parsed index when there is one:
//   - a file: that file;
//   - a directory with model.safetensors.index.json: the shards its
//     weight_map names, in name order;
//   - a directory with model.safetensors: that file;
//   - otherwise every model*.safetensors in the directory (mlx-lm's loader
//     glob), in name order.
func CheckpointFiles(path string) ([]string, *Index, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil, nil
	}
	idxPath := filepath.Join(path, IndexName)
	if ist, err := os.Stat(idxPath); err == nil && !ist.IsDir() {
		idx, err := ReadIndex(idxPath)
		if err != nil {
			return nil, nil, err
		}
		names := idx.Shards()
		files := make([]string, len(names))
		for i, n := range names {
			files[i] = filepath.Join(path, n)
		}
		return files, idx, nil
	}
	single := filepath.Join(path, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		return []string{single}, nil, nil
	}
	matches, err := filepath.Glob(filepath.Join(path, "model*.safetensors"))
	if err != nil {
		return nil, nil, err
	}
	if len(matches) == 0 {
		return nil, nil, fmt.Errorf("safetensors: %s: no %s, model.safetensors or model*.safetensors", path, IndexName)
	}
	sort.Strings(matches)
	return matches, nil, nil
}

// ReadIndex reads and parses a model.safetensors.index.json. The index
// must have a weight_map whose every shard is a file name (no directory
// part), and may be at most 64 MB long.
func ReadIndex(path string) (*Index, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxIndexSize {
		return nil, fmt.Errorf("safetensors: %s: index is %d bytes, over the %d-byte limit", path, st.Size(), maxIndexSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseIndex(path, b)
}

// parseIndex parses the bytes of the index file path (named in errors).
func parseIndex(path string, b []byte) (*Index, error) {
	var raw struct {
		Metadata  json.RawMessage   `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %v", path, err)
	}
	if raw.WeightMap == nil {
		return nil, fmt.Errorf("safetensors: %s: no weight_map", path)
	}
	idx := &Index{WeightMap: raw.WeightMap}
	if len(raw.Metadata) > maxIndexMetadata {
		return nil, fmt.Errorf("safetensors: %s: metadata is %d bytes, over the %d-byte limit", path, len(raw.Metadata), maxIndexMetadata)
	}
	if len(raw.Metadata) > 0 {
		if err := json.Unmarshal(raw.Metadata, &idx.Metadata); err != nil {
			return nil, fmt.Errorf("safetensors: %s: metadata: %v", path, err)
		}
	}
	for _, n := range idx.WeightMap {
		if n == "" || filepath.Base(n) != n || n == "." || n == ".." {
			return nil, fmt.Errorf("safetensors: %s: weight_map names shard %q, which is not a file name in the directory", path, n)
		}
	}
	return idx, nil
}

// Shards returns the distinct shard file names of the weight map, sorted.
func (idx *Index) Shards() []string {
	seen := map[string]bool{}
	var names []string
	for _, shard := range idx.WeightMap {
		if !seen[shard] {
			seen[shard] = true
			names = append(names, shard)
		}
	}
	sort.Strings(names)
	return names
}

// OpenCheckpoint opens a single .safetensors file or a checkpoint directory
// (see CheckpointFiles). A tensor name present in two files is an error, and
// an index's weight_map must list exactly the tensors each shard holds.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	paths, idx, err := CheckpointFiles(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Path: path, Index: idx}
	fail := func(err error) (*Checkpoint, error) {
		c.Close()
		return nil, err
	}
	owner := map[string]string{}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			return fail(err)
		}
		c.Files = append(c.Files, f)
		base := filepath.Base(p)
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			if prev, dup := owner[ti.Name]; dup {
				return fail(fmt.Errorf("safetensors: tensor %q is in both %s and %s", ti.Name, prev, p))
			}
			owner[ti.Name] = p
			if idx != nil {
				if want, ok := idx.WeightMap[ti.Name]; !ok {
					return fail(fmt.Errorf("safetensors: %s holds tensor %q, which %s does not list", p, ti.Name, IndexName))
				} else if want != base {
					return fail(fmt.Errorf("safetensors: %s holds tensor %q, which %s assigns to %s", p, ti.Name, IndexName, want))
				}
			}
			c.Tensors = append(c.Tensors, &graph.Tensor{
				Name:  ti.Name,
				Shape: append([]int64{}, ti.Shape...),
				Type:  ti.DType,
				Data:  f.Section(i),
			})
		}
	}
	if idx != nil && len(owner) != len(idx.WeightMap) {
		var missing []string
		for name := range idx.WeightMap {
			if _, ok := owner[name]; !ok {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		more := ""
		if len(missing) > 5 {
			more = fmt.Sprintf(" and %d more", len(missing)-5)
			missing = missing[:5]
		}
		return fail(fmt.Errorf("safetensors: %s lists tensors no shard holds: %s%s",
			filepath.Join(path, IndexName), strings.Join(missing, ", "), more))
	}
	if len(c.Files) > 0 {
		c.Metadata = c.Files[0].Metadata
	}
	return c, nil
}

// ReadModel opens a .safetensors file (or a checkpoint directory, see
// CheckpointFiles) as a graph.Model: Format safetensors, Arch empty, tensor
// names unchanged, Metadata the first file's __metadata__ as string KVs in
// header order. Close the model to close the files.
func ReadModel(path string) (*graph.Model, error) {
	c, err := OpenCheckpoint(path)
	if err != nil {
		return nil, err
	}
	m := &graph.Model{
		Format:  graph.FormatSafetensors,
		Path:    path,
		Tensors: c.Tensors,
	}
	if len(c.Files) > 0 {
		f := c.Files[0]
		for _, k := range f.MetadataKeys {
			m.Metadata = append(m.Metadata, graph.KV{Key: k, Value: f.Metadata[k]})
		}
	}
	for _, f := range c.Files {
		m.Closers = append(m.Closers, f)
	}
	return m, nil
}
