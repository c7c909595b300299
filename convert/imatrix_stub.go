package convert

// A stand-in for formats/imatrix (branch wt-imatrix) until it is merged:
// reads llama-imatrix's GGUF files only. Delete this file after the merge
// and make readImportance call imatrix.ReadFile.

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
)

// readImportance reads an importance matrix file as llama-quantize's
// load_imatrix does: each entry's sums divided by its count per matrix
// (1 for a matrix never counted).
func readImportance(path string) (*importance, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("imatrix: %w (only llama-imatrix's GGUF files are read)", err)
	}
	defer f.Close()
	im := &importance{path: path, vectors: map[string][]float32{}}
	ds, okDS := f.Get("imatrix.datasets")
	cc, okCC := f.Get("imatrix.chunk_count")
	_, okCS := f.Get("imatrix.chunk_size")
	if !okDS || !okCC || !okCS {
		return nil, fmt.Errorf("%s: missing imatrix metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size)", path)
	}
	if s, ok := ds.([]string); ok {
		im.datasets = s
	}
	if n, ok := cc.(uint32); ok {
		im.chunks = int(n)
	}
	type pair struct{ sums, counts int }
	pairs := map[string]*pair{}
	for i, t := range f.Tensors {
		name, kind := t.Name, ""
		if n, ok := strings.CutSuffix(name, ".in_sum2"); ok {
			name, kind = n, "sums"
		} else if n, ok := strings.CutSuffix(name, ".counts"); ok {
			name, kind = n, "counts"
		} else {
			continue
		}
		p := pairs[name]
		if p == nil {
			p = &pair{-1, -1}
			pairs[name] = p
		}
		if kind == "sums" {
			p.sums = i
		} else {
			p.counts = i
		}
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%s: no data in the importance matrix", path)
	}
	read := func(i int) ([]float32, error) {
		t := f.Tensors[i]
		if t.Type != graph.F32 {
			return nil, fmt.Errorf("%s: tensor %s is %v, want F32", path, t.Name, t.Type)
		}
		n := elementsOf(t.Shape)
		if n <= 0 || n*4 != t.Size {
			return nil, fmt.Errorf("%s: tensor %s: %d bytes for %d elements", path, t.Name, t.Size, n)
		}
		b := make([]byte, t.Size)
		if _, err := io.ReadFull(f.TensorReader(i), b); err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, t.Name, err)
		}
		v := make([]float32, n)
		for k := range v {
			v[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
		}
		return v, nil
	}
	for name, p := range pairs {
		if p.sums < 0 || p.counts < 0 {
			return nil, fmt.Errorf("%s: mismatched sums and counts for %s", path, name)
		}
		sums, err := read(p.sums)
		if err != nil {
			return nil, err
		}
		counts, err := read(p.counts)
		if err != nil {
			return nil, err
		}
		if len(sums)%len(counts) != 0 {
			return nil, fmt.Errorf("%s: %s: %d sums for %d counts", path, name, len(sums), len(counts))
		}
		ne0 := len(sums) / len(counts)
		e := make([]float32, len(sums))
		for j, c := range counts {
			count := float32(math.Round(float64(c))) // std::lround, then (float)
			for i := 0; i < ne0; i++ {
				if count > 0 {
					e[j*ne0+i] = sums[j*ne0+i] / count
				} else {
					e[j*ne0+i] = 1
				}
			}
		}
		im.vectors[name] = e
	}
	return im, nil
}
