//go:build refdata

package convert

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// imatrixRefTypes are the file types of ../shared/testdata/imatrix's
// kjv-llama.imatrix.TYPE.gguf (llama-quantize --imatrix kjv.imatrix.gguf).
var imatrixRefTypes = []string{
	"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M",
	"IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4_MOE",
	"Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M",
	"Q5_0", "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
}

// imatrixNoImatrixRefTypes have a reference made without an importance
// matrix too (kjv-llama.TYPE.gguf in the same directory).
var imatrixNoImatrixRefTypes = []string{"IQ3_S", "IQ3_M", "TQ1_0", "TQ2_0"}

// imatrixFixture is a model with an importance matrix and llama-quantize's
// quantizations of it, in one directory of ../shared/testdata (where they
// were made, so quantize.imatrix.file is the bare file name).
type imatrixFixture struct {
	name    string
	dir     []string // under the imatrix reference set (testref.Imatrix)
	bf16    func(t *testing.T) string
	hf      func(t *testing.T) string
	imatrix string // file name in dir
	prefix  string // reference file names: prefix + TYPE + ".gguf"
}

var imatrixFixtures = []imatrixFixture{
	{
		name:    "kjv-llama",
		dir:     nil,
		bf16:    func(t *testing.T) string { return testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf") },
		hf:      func(t *testing.T) string { return testref.Shared(t, "kjv-llama") },
		imatrix: "kjv.imatrix.gguf",
		prefix:  "kjv-llama.imatrix.",
	},
	{
		// 8 experts (the n_expert == 8 branches), 3-D expert tensors with
		// per-expert importance vectors, rows of 128 that fall back.
		name: "mixtral-tiny",
		dir:  []string{"mixtral-tiny"},
		bf16: func(t *testing.T) string {
			return testref.Imatrix(t, "mixtral-tiny", "mixtral-tiny.bf16.gguf")
		},
		hf:      func(t *testing.T) string { return testref.Local(t, "arch", "mixtral-tiny") },
		imatrix: "mixtral-tiny.imatrix.gguf",
		prefix:  "mixtral-tiny.imatrix.",
	},
}

func (fx imatrixFixture) path(t *testing.T, name string) string {
	return testref.Imatrix(t, append(append([]string{}, fx.dir...), name)...)
}

// TestImatrixPlanMatchesLlamaQuantize compares PlanGGUF (with an importance
// matrix, and without one where a reference was made without) with the
// tensor types and order of llama-quantize's files.
func TestImatrixPlanMatchesLlamaQuantize(t *testing.T) {
	type ref struct {
		fx      imatrixFixture
		ft      string
		imatrix bool
		file    string
	}
	var refs []ref
	for _, fx := range imatrixFixtures {
		for _, name := range imatrixRefTypes {
			refs = append(refs, ref{fx, name, true, fx.prefix + name + ".gguf"})
		}
	}
	for _, name := range imatrixNoImatrixRefTypes {
		refs = append(refs, ref{imatrixFixtures[0], name, false, "kjv-llama." + name + ".gguf"})
	}
	models := map[string]*graph.Model{}
	for _, fx := range imatrixFixtures {
		m, err := gguf.ReadModel(fx.bf16(t))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		models[fx.name] = m
	}
	for _, r := range refs {
		t.Run(r.file, func(t *testing.T) {
			plans, err := PlanGGUF(models[r.fx.name], mustFT(t, r.ft), PlanOptions{Imatrix: r.imatrix})
			if err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(r.fx.path(t, r.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Tensors) != len(plans) {
				t.Fatalf("%d tensors, reference has %d", len(plans), len(f.Tensors))
			}
			for i, rt := range f.Tensors {
				if p := plans[i]; p.Name != rt.Name || p.To != rt.Type {
					t.Errorf("tensor %d: planned %s %v (%s), reference %s %v", i, p.Name, p.To, p.Reason, rt.Name, rt.Type)
				}
			}
		})
	}
}

// TestImatrixConvertMatchesLlamaQuantize converts kjv-llama.bf16.gguf and
// the HF checkpoint with --imatrix kjv.imatrix.gguf to every reference file
// type and requires llama-quantize's file byte for byte (naming the
// tensors that differ when it is not).
func TestImatrixConvertMatchesLlamaQuantize(t *testing.T) {
	dir := t.TempDir()
	for _, fx := range imatrixFixtures {
		bf16, hfDir, refDir := fx.bf16(t), fx.hf(t), fx.path(t, "")
		t.Run(fx.name, func(t *testing.T) {
			// llama-quantize records the imatrix path as given: run where it ran.
			t.Chdir(refDir)
			for _, name := range imatrixRefTypes {
				for _, in := range []struct{ what, path string }{{"gguf", bf16}, {"hf", hfDir}} {
					t.Run(name+"/"+in.what, func(t *testing.T) {
						out := filepath.Join(dir, fx.name+"."+name+"."+in.what+".gguf")
						target := GGUFTarget{FileType: mustFT(t, name), Imatrix: fx.imatrix}
						want := filepath.Join(refDir, fx.prefix+name+".gguf")
						_, err := Convert(context.Background(), in.path, out, Options{Target: target, Jobs: 2})
						if err != nil {
							t.Fatal(err)
						}
						if fileSHA256(t, out) == fileSHA256(t, want) {
							return
						}
						diff, _ := differingTensors(t, out, want)
						var names []string
						for _, d := range diff {
							names = append(names, d.name+": "+d.why)
						}
						t.Errorf("output differs from llama-quantize's: %d tensors: %s (a whole-file difference if none listed)",
							len(names), strings.Join(names, "; "))
					})
				}
			}
		})
	}
}

type tensorDiff struct {
	name string
	typ  graph.Type // the reference's type (0 when the tensor is not in it)
	why  string
}

// differingTensors lists the tensors of got that differ from want's (type,
// shape or bytes), and a header difference as a tensor named "(header)";
// same lists the types of the tensors that are equal.
func differingTensors(t *testing.T, got, want string) (out []tensorDiff, same []graph.Type) {
	t.Helper()
	g, err := gguf.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	w, err := gguf.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if len(g.KV) != len(w.KV) || len(g.Tensors) != len(w.Tensors) {
		return append(out, tensorDiff{"(header)", 0, "KV or tensor count differs"}), nil
	}
	for i := range g.KV {
		if g.KV[i].Key != w.KV[i].Key {
			out = append(out, tensorDiff{"(header)", 0, "KV " + g.KV[i].Key + " where llama-quantize has " + w.KV[i].Key})
		}
	}
	for i, gt := range g.Tensors {
		wt := w.Tensors[i]
		if gt.Name != wt.Name || gt.Type != wt.Type || gt.Size != wt.Size {
			out = append(out, tensorDiff{gt.Name, 0, "name, type or size: " + gt.Type.String() + " where llama-quantize has " + wt.Name + " " + wt.Type.String()})
			continue
		}
		gb, err1 := io.ReadAll(g.TensorReader(i))
		wb, err2 := io.ReadAll(w.TensorReader(i))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(gb, wb) {
			out = append(out, tensorDiff{gt.Name, wt.Type, "bytes"})
		} else {
			same = append(same, wt.Type)
		}
	}
	return out, same
}
