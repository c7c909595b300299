package convert

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// writeImatrix writes a llama-imatrix GGUF file with the entries (name →
// sums, counts; sums of len(counts) matrices).
func writeImatrix(t *testing.T, path string, entries map[string][2][]float32) {
	t.Helper()
	kv := []graph.KV{
		{Key: "general.type", Value: "imatrix"},
		{Key: "imatrix.datasets", Value: []string{"calib.txt", "more.txt"}},
		{Key: "imatrix.chunk_count", Value: uint32(47)},
		{Key: "imatrix.chunk_size", Value: uint32(128)},
	}
	var infos []gguf.TensorInfo
	var data [][]byte
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		e := entries[n]
		nm := int64(len(e[1]))
		infos = append(infos,
			gguf.TensorInfo{Name: n + ".in_sum2", Shape: []int64{nm, int64(len(e[0])) / nm}, Type: graph.F32},
			gguf.TensorInfo{Name: n + ".counts", Shape: []int64{nm, 1}, Type: graph.F32})
		data = append(data, f32bytes(e[0]...), f32bytes(e[1]...))
	}
	var b bytes.Buffer
	if err := gguf.Write(&b, kv, infos, func(i int) (graph.Source, error) { return bytes.NewReader(data[i]), nil }); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadImportance(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.imatrix.gguf")
	writeImatrix(t, path, map[string][2][]float32{
		"blk.0.attn_q.weight":        {{2, 4, 6, 8}, {2}},
		"blk.0.ffn_down_exps.weight": {{3, 6, 9, 12, 5, 5}, {2.6, 0, 1}}, // 3 experts of 2; count rounded to 3; expert 1 never counted
		"blk.1.attn_q.weight":        {{1, 1, 1, 1}, {1}},
	})
	im, err := loadImportance(GGUFTarget{Imatrix: path}, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]float32{
		"blk.0.attn_q.weight":        {1, 2, 3, 4},
		"blk.0.ffn_down_exps.weight": {1, 2, 1, 1, 5, 5},
		"blk.1.attn_q.weight":        {1, 1, 1, 1},
	} {
		if got := im.vectors[name]; !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if im.chunks != 47 || !slices.Equal(im.datasets, []string{"calib.txt", "more.txt"}) {
		t.Errorf("chunks %d datasets %v", im.chunks, im.datasets)
	}

	// --include-weights / --exclude-weights: substring matches.
	inc, err := loadImportance(GGUFTarget{Imatrix: path, ImatrixInclude: []string{"blk.0."}}, &Options{})
	if err != nil || len(inc.vectors) != 2 || inc.vectors["blk.1.attn_q.weight"] != nil {
		t.Errorf("include blk.0.: %v entries, %v", len(inc.vectors), err)
	}
	exc, err := loadImportance(GGUFTarget{Imatrix: path, ImatrixExclude: []string{"attn_q"}}, &Options{})
	if err != nil || len(exc.vectors) != 1 || exc.vectors["blk.0.ffn_down_exps.weight"] == nil {
		t.Errorf("exclude attn_q: %v entries, %v", len(exc.vectors), err)
	}
	var warned string
	none, err := loadImportance(GGUFTarget{Imatrix: path, ImatrixInclude: []string{"nothing"}}, &Options{Warn: func(s string) { warned = s }})
	if err != nil || none != nil || !strings.Contains(warned, "no importance matrix entry") {
		t.Errorf("include nothing: %v, %v, warning %q", none, err, warned)
	}

	bad := filepath.Join(dir, "nan.imatrix.gguf")
	writeImatrix(t, bad, map[string][2][]float32{"a.weight": {{1, float32(math.NaN())}, {1}}})
	if _, err := loadImportance(GGUFTarget{Imatrix: bad}, &Options{}); err == nil || !strings.Contains(err.Error(), "non-finite") {
		t.Errorf("NaN entry: %v", err)
	}
	if _, err := loadImportance(GGUFTarget{Imatrix: filepath.Join(dir, "missing.gguf")}, &Options{}); err == nil || !strings.Contains(err.Error(), "missing.gguf") {
		t.Errorf("missing file: %v", err)
	}
}

// TestImportanceKV: llama-quantize's four KVs, after the input's, an
// existing key replaced at the end, strings cut to 127 bytes.
func TestImportanceKV(t *testing.T) {
	long := strings.Repeat("d", 200)
	im := &importance{path: "kjv.imatrix.gguf", vectors: map[string][]float32{"a": nil, "b": nil}, datasets: []string{long, "x"}, chunks: 47}
	in := []graph.KV{{Key: "general.architecture", Value: "llama"}, {Key: kvImatrixFile, Value: "old"}, {Key: "general.file_type", Value: uint32(30)}}
	got := im.kv(in)
	want := []graph.KV{
		{Key: "general.architecture", Value: "llama"}, {Key: "general.file_type", Value: uint32(30)},
		{Key: kvImatrixFile, Value: "kjv.imatrix.gguf"}, {Key: kvImatrixDataset, Value: long[:127]},
		{Key: kvImatrixEntries, Value: uint32(2)}, {Key: kvImatrixChunks, Value: uint32(47)},
	}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Value != want[i].Value {
			t.Errorf("kv %d: %v = %v, want %v = %v", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
	if in[1].Key != kvImatrixFile {
		t.Error("kv modified its input")
	}
	// No datasets, no chunk count: those keys are left out.
	got = (&importance{path: "p", vectors: map[string][]float32{"a": nil}}).kv(nil)
	if len(got) != 2 || got[0].Key != kvImatrixFile || got[1].Key != kvImatrixEntries {
		t.Errorf("minimal: %v", got)
	}
	if got := (*importance)(nil).kv(in); len(got) != len(in) {
		t.Errorf("nil importance changed the KVs: %v", got)
	}
}

func TestImportanceWeightsFor(t *testing.T) {
	im := &importance{path: "m.gguf", vectors: map[string][]float32{
		"blk.0.attn_q.weight":        make([]float32, 256),
		"blk.0.ffn_down_exps.weight": make([]float32, 3*512),
		"blk.0.attn_k.weight":        make([]float32, 100),
		"token_embd.weight":          make([]float32, 100),
	}}
	iq2 := mustFT(t, "IQ2_XXS")
	plan := func(name string, from, to graph.Type, shape ...int64) TensorPlan {
		return TensorPlan{Name: name, From: from, To: to, Shape: shape}
	}
	for _, tc := range []struct {
		p       TensorPlan
		n, rows int64
		err     string
	}{
		{plan("blk.0.attn_q.weight", graph.BF16, graph.IQ2_XXS, 256, 256), 256, 256, ""},
		{plan("blk.0.ffn_down_exps.weight", graph.BF16, graph.IQ2_XXS, 3, 256, 512), 3 * 512, 256, ""},
		{plan("blk.0.attn_q.weight", graph.BF16, graph.BF16, 256, 256), 0, 0, ""}, // not converted
		{plan("blk.0.attn_q.weight", graph.BF16, graph.F16, 256, 256), 0, 0, ""},  // a float type ignores it
		{plan("blk.0.attn_k.weight", graph.BF16, graph.F16, 128, 256), 0, 0, "imatrix size 100"},
		{plan("blk.0.attn_k.weight", graph.BF16, graph.IQ2_XXS, 128, 256), 0, 0, "imatrix size 100 is different from tensor size 256"},
		{plan("token_embd.weight", graph.BF16, graph.Q2_K, 4096, 256), 0, 0, ""},                       // wrong size: unweighted
		{plan("blk.0.attn_v.weight", graph.BF16, graph.Q2_K, 128, 256), 0, 0, ""},                      // no entry, Q2_K outside Q2_K_S
		{plan("blk.0.ffn_up.weight", graph.BF16, graph.IQ2_XXS, 768, 256), 0, 0, "missing importance"}, // no entry, needs one
	} {
		w, rows, err := im.weightsFor(tc.p, iq2)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.p.Name, err, tc.err)
			}
			continue
		}
		if err != nil || int64(len(w)) != tc.n || rows != tc.rows {
			t.Errorf("%s: %d weights, %d rows, %v; want %d, %d", tc.p.Name, len(w), rows, err, tc.n, tc.rows)
		}
	}
	if _, _, err := im.weightsFor(plan("blk.0.attn_v.weight", graph.BF16, graph.Q2_K, 128, 256), mustFT(t, "Q2_K_S")); err == nil {
		t.Error("Q2_K in a Q2_K_S file without an entry: no error")
	}
}

// TestLoadImportanceLegacy: the legacy .dat form of an importance matrix
// gives the GGUF form's entries and vectors (to float32 rounding: the .dat
// stores sum/count·ncall) and chunk count.
func TestLoadImportanceLegacy(t *testing.T) {
	g, err := loadImportance(GGUFTarget{Imatrix: testref.Local(t, "imatrix", "kjv-llama.c128.imatrix.gguf")}, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := loadImportance(GGUFTarget{Imatrix: testref.Local(t, "imatrix", "kjv-llama.c128.imatrix.dat")}, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.vectors) == 0 || len(g.vectors) != len(d.vectors) || g.chunks != d.chunks || g.chunks == 0 {
		t.Fatalf("gguf %d entries %d chunks, dat %d entries %d chunks", len(g.vectors), g.chunks, len(d.vectors), d.chunks)
	}
	for name, gv := range g.vectors {
		dv := d.vectors[name]
		if len(dv) != len(gv) {
			t.Fatalf("%s: %d values in the .dat, %d in the GGUF", name, len(dv), len(gv))
		}
		for i := range gv {
			if diff := math.Abs(float64(dv[i] - gv[i])); diff > 1e-6*math.Abs(float64(gv[i])) {
				t.Fatalf("%s[%d]: .dat %g, GGUF %g", name, i, dv[i], gv[i])
			}
		}
	}
}
