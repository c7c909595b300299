package gguf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// ReadModel opens a GGUF file as a graph.Model: Arch from
// general.architecture, Params and Tokenizer from the metadata, every
// tensor (names unchanged: GGUF names are canonical) reading lazily from
// the file, and Metadata holding all KVs in file order. The model's
// Closers hold the file; call Model.Close when done.
func ReadModel(path string) (*graph.Model, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	m, err := f.Model()
	if err != nil {
		f.Close()
		return nil, err
	}
	m.Closers = append(m.Closers, f)
	return m, nil
}

// Model builds a graph.Model over f without taking ownership of it: the
// caller still closes f (ReadModel hands it to the model instead).
func (f *File) Model() (*graph.Model, error) {
	m := &graph.Model{Format: graph.FormatGGUF, Path: f.path}
	if v, ok := f.Get("general.architecture"); ok {
		s, ok := v.(string)
		if !ok {
			return nil, f.kvError("general.architecture", "has type %s, expected str", typeName(v))
		}
		m.Arch = s
	}
	p, err := f.Params()
	if err != nil {
		return nil, err
	}
	m.Params = p
	tok, err := TokenizerFromKV(f.KV)
	if err != nil {
		return nil, f.wrap(err)
	}
	m.Tokenizer = tok
	if m.Params.VocabSize == 0 && tok != nil {
		m.Params.VocabSize = len(tok.Tokens)
	}
	m.Tensors = make([]*graph.Tensor, len(f.Tensors))
	for i, t := range f.Tensors {
		m.Tensors[i] = &graph.Tensor{
			Name:  t.Name,
			Shape: append([]int64(nil), t.Shape...),
			Type:  t.Type,
			Data:  f.TensorReader(i),
		}
	}
	m.Metadata = append([]graph.KV(nil), f.KV...)
	return m, nil
}

// kvError is a FormatError about a metadata key. The header has been
// validated; these errors are about what the values mean.
func (f *File) kvError(key, format string, args ...any) error {
	var off int64
	for i, kv := range f.KV {
		if kv.Key == key && i < len(f.kvAt) {
			off = f.kvAt[i]
		}
	}
	return &FormatError{Path: f.path, Offset: off, Msg: fmt.Sprintf("key %q ", key) + fmt.Sprintf(format, args...)}
}

func (f *File) wrap(err error) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		if fe.Path == "" {
			fe.Path = f.path
		}
		return fe
	}
	return err
}

// ropeTypes is llama.cpp's llama_model_rope_type for the architectures
// whose RoPE type does not depend on other hyperparameters (reference
// commit 34af94cd). Architectures absent here have no RoPE or an
// unknown one.
var ropeTypes = func() map[string]string {
	m := map[string]string{}
	for _, a := range strings.Fields(`llama llada llama4 deci baichuan starcoder internlm2 minicpm xverse
		command-r cohere2 cohere2moe olmo arctic deepseek deepseek2 deepseek2-ocr deepseek32 deepseek4
		muse-glimmer plm chatglm granite granitemoe granitehybrid graniteswitch chameleon bailingmoe
		bailingmoe3 neo-bert smollm3 arcee ernie4_5 ernie4_5-moe mistral3 eagle3 mistral4 llama-embed
		maincoder glm-dsa nanbeige pockettts glm4`) {
		m[a] = "norm"
	}
	for _, a := range strings.Fields(`falcon falcon-h1 grok dbrx bert jina-bert-v3 modern-bert nomic-bert
		nomic-bert-moe eurobert stablelm bitnet qwen qwen2 dream qwen2moe qwen3 qwen3moe llada-moe rnd1
		olmo2 olmoe phi2 phi3 phimoe plamo plamo2 plamo3 gemma gemma2 gemma3 gemma3n gemma4
		gemma4-assistant gemma-embedding starcoder2 openelm gptneox codeshell orion nemotron exaone
		exaone4 exaone-moe minicpm3 bailingmoe2 dots1 hunyuan-moe jais2 gpt-oss hunyuan-dense hy_v3 lfm2
		lfm2moe smallthinker seed_oss grovemoe apertus minimax-01 minimax-m2 minimax-m3 cogvlm
		pangu-embedded afmoe laguna qwen3next mimo2 step35 talkie mellum glm4moe hunyuan-vl`) {
		m[a] = "neox"
	}
	for _, a := range []string{"qwen2vl", "paddleocr"} {
		m[a] = "mrope"
	}
	for _, a := range []string{"qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe", "qwen3tts"} {
		m[a] = "imrope"
	}
	return m
}()

// RopeType returns llama.cpp's RoPE type for an architecture: "norm"
// (pairs of consecutive values, llama), "neox" (pairs offset by half,
// qwen2), "mrope"/"imrope", or "" when the architecture uses none or is
// unknown.
func RopeType(arch string) string { return ropeTypes[arch] }

// Params derives the normalized hyperparameters from the {arch}.* keys
// (as llama.cpp's llama_model_loader reads them) and the tensor list.
func (f *File) Params() (graph.Params, error) {
	var p graph.Params
	archV, _ := f.Get("general.architecture")
	arch, _ := archV.(string)
	if arch == "" {
		return p, nil
	}
	k := func(s string) string { return arch + "." + s }
	var err error
	geti := func(key string) int {
		if err != nil {
			return 0
		}
		v, ok := f.Get(key)
		if !ok {
			return 0
		}
		n, e := intValue(v)
		if e != nil {
			err = f.kvError(key, "%v", e)
		}
		return n
	}
	getf := func(key string) (float64, bool) {
		if err != nil {
			return 0, false
		}
		v, ok := f.Get(key)
		if !ok {
			return 0, false
		}
		x, e := floatValue(v)
		if e != nil {
			err = f.kvError(key, "%v", e)
			return 0, false
		}
		return x, true
	}
	p.Layers = geti(k("block_count"))
	p.Embedding = geti(k("embedding_length"))
	p.FFN = geti(k("feed_forward_length"))
	p.Heads = geti(k("attention.head_count"))
	p.KVHeads = geti(k("attention.head_count_kv"))
	if p.KVHeads == 0 {
		p.KVHeads = p.Heads // llama.cpp: n_head_kv defaults to n_head
	}
	p.HeadDim = geti(k("attention.key_length"))
	if p.HeadDim == 0 && p.Heads > 0 {
		p.HeadDim = p.Embedding / p.Heads
	}
	p.RopeBase = 10000
	if x, ok := getf(k("rope.freq_base")); ok {
		p.RopeBase = x
	}
	p.RopeType = RopeType(arch)
	p.RopeDims = geti(k("rope.dimension_count"))
	if p.RopeDims == 0 {
		p.RopeDims = p.HeadDim
	}
	if v, ok := f.Get(k("rope.scaling.type")); ok {
		s, _ := v.(string)
		if s != "" && s != "none" {
			rs := &graph.RopeScaling{Type: s}
			rs.Factor, _ = getf(k("rope.scaling.factor"))
			rs.OriginalContext = geti(k("rope.scaling.original_context_length"))
			p.RopeScaling = rs
		}
	} else if x, ok := getf(k("rope.scale_linear")); ok && x != 0 && x != 1 {
		p.RopeScaling = &graph.RopeScaling{Type: "linear", Factor: x}
	}
	if x, ok := getf(k("attention.layer_norm_rms_epsilon")); ok {
		p.RMSEps = x
	}
	p.ContextLength = geti(k("context_length"))
	p.VocabSize = geti(k("vocab_size"))
	p.Experts = geti(k("expert_count"))
	p.ExpertsUsed = geti(k("expert_used_count"))
	p.ExpertFFN = geti(k("expert_feed_forward_length"))
	if err != nil {
		return p, err
	}
	hasOutput := false
	for _, t := range f.Tensors {
		switch {
		case t.Name == "output.weight":
			hasOutput = true
		case strings.HasPrefix(t.Name, "blk.") && strings.HasSuffix(t.Name, ".attn_q.bias"):
			p.AttnBias = true
		case p.Experts > 0 && p.ExpertFFN == 0 && strings.HasPrefix(t.Name, "blk.") && strings.HasSuffix(t.Name, ".ffn_gate_exps.weight") && len(t.Shape) == 3:
			// no expert_feed_forward_length (LlamaModel writes none):
			// llama.cpp takes the width from the tensor
			p.ExpertFFN = int(t.Shape[1])
		}
	}
	p.Tied = len(f.Tensors) > 0 && !hasOutput
	if p.VocabSize == 0 {
		if v, ok := f.Get("tokenizer.ggml.tokens"); ok {
			if s, ok := v.([]string); ok {
				p.VocabSize = len(s)
			}
		}
	}
	return p, nil
}

// intValue converts any integer KV (or the first element of an integer
// array, as llama.cpp reads per-layer arrays for uniform models) to int.
func intValue(v any) (int, error) {
	var x int64
	switch t := v.(type) {
	case uint8:
		x = int64(t)
	case int8:
		x = int64(t)
	case uint16:
		x = int64(t)
	case int16:
		x = int64(t)
	case uint32:
		x = int64(t)
	case int32:
		x = int64(t)
	case uint64:
		if t > math.MaxInt32 {
			return 0, fmt.Errorf("value %d is out of range", t)
		}
		x = int64(t)
	case int64:
		x = t
	case []uint32:
		if len(t) == 0 {
			return 0, fmt.Errorf("is an empty array")
		}
		x = int64(t[0])
	case []int32:
		if len(t) == 0 {
			return 0, fmt.Errorf("is an empty array")
		}
		x = int64(t[0])
	default:
		return 0, fmt.Errorf("has type %s, expected an integer", typeName(v))
	}
	if x < 0 || x > math.MaxInt32 {
		return 0, fmt.Errorf("value %d is out of range", x)
	}
	return int(x), nil
}

// floatValue converts a float KV to float64. A float32 converts through
// its shortest decimal form, so 1e-5 stored as f32 reads as 1e-5 (and
// converts back to the same float32 bits).
func floatValue(v any) (float64, error) {
	switch t := v.(type) {
	case float32:
		x, _ := strconv.ParseFloat(strconv.FormatFloat(float64(t), 'g', -1, 32), 64)
		return x, nil
	case float64:
		return t, nil
	}
	if n, err := intValue(v); err == nil {
		return float64(n), nil
	}
	return 0, fmt.Errorf("has type %s, expected a float", typeName(v))
}

// specialKeys maps the tokenizer.ggml.*_token_id keys to Tokenizer fields.
var specialKeys = []struct {
	key   string
	field func(t *graph.Tokenizer) *int
}{
	{"tokenizer.ggml.bos_token_id", func(t *graph.Tokenizer) *int { return &t.BOS }},
	{"tokenizer.ggml.eos_token_id", func(t *graph.Tokenizer) *int { return &t.EOS }},
	{"tokenizer.ggml.eot_token_id", func(t *graph.Tokenizer) *int { return &t.EOT }},
	{"tokenizer.ggml.eom_token_id", func(t *graph.Tokenizer) *int { return &t.EOM }},
	{"tokenizer.ggml.unknown_token_id", func(t *graph.Tokenizer) *int { return &t.UNK }},
	{"tokenizer.ggml.seperator_token_id", func(t *graph.Tokenizer) *int { return &t.SEP }}, // sic: llama.cpp's spelling
	{"tokenizer.ggml.padding_token_id", func(t *graph.Tokenizer) *int { return &t.PAD }},
	{"tokenizer.ggml.cls_token_id", func(t *graph.Tokenizer) *int { return &t.CLS }},
	{"tokenizer.ggml.mask_token_id", func(t *graph.Tokenizer) *int { return &t.MASK }},
}

// bpeAddsBOS are the BPE pre-tokenizers for which llama.cpp adds BOS by
// default; bpeIgnoresMerges those that set ignore_merges
// (llama-vocab.cpp load, reference commit).
var (
	bpeAddsBOS       = map[string]bool{"llama3": true, "llama-v3": true, "llama-bpe": true, "falcon3": true, "falcon-h1": true, "pixtral": true, "midm-2.0": true, "lfm2": true, "jina-v5-nano": true, "tekken": true, "chameleon": true}
	bpeIgnoresMerges = map[string]bool{"llama3": true, "llama-v3": true, "llama-bpe": true, "falcon3": true, "falcon-h1": true, "pixtral": true, "midm-2.0": true, "lfm2": true, "jina-v5-nano": true, "tekken": true, "minicpm5": true}
)

// TokenizerFromKV builds the tokenizer described by tokenizer.* keys, or
// returns nil when there is no tokenizer.ggml.model key. Special ids and
// add_bos/add_eos take llama.cpp's defaults for the tokenizer model when
// their keys are absent (llama-vocab.cpp: "llama" BOS=1 EOS=2 UNK=0 and
// adds BOS; "gpt2" BOS=EOS=11 and adds BOS only for llama3-style
// pre-tokenizers; "bert" BOS=101 UNK=100 SEP=102 PAD=0 MASK=103 adds BOS;
// "t5" EOS=1 UNK=2 PAD=0 adds EOS); a default id outside the vocabulary
// is dropped (-1), and a key naming an id outside it keeps the default,
// as llama.cpp does. AddSpacePrefix is nil unless the key is present
// (llama.cpp's default is true for "llama", false otherwise). EOT/EOM
// are taken from their keys only (llama.cpp also guesses them from token
// texts; this package does not).
func TokenizerFromKV(kv []graph.KV) (*graph.Tokenizer, error) {
	get := func(key string) (any, bool) {
		for _, e := range kv {
			if e.Key == key {
				return e.Value, true
			}
		}
		return nil, false
	}
	bad := func(key, format string, args ...any) error {
		return &FormatError{Msg: fmt.Sprintf("key %q ", key) + fmt.Sprintf(format, args...)}
	}
	mv, ok := get("tokenizer.ggml.model")
	if !ok {
		return nil, nil
	}
	model, ok := mv.(string)
	if !ok {
		return nil, bad("tokenizer.ggml.model", "has type %s, expected str", typeName(mv))
	}
	t := graph.NewTokenizer(model)
	str := func(key string, dst *string) error {
		if v, ok := get(key); ok {
			s, ok := v.(string)
			if !ok {
				return bad(key, "has type %s, expected str", typeName(v))
			}
			*dst = s
		}
		return nil
	}
	if err := str("tokenizer.ggml.pre", &t.Pre); err != nil {
		return nil, err
	}
	if err := str("tokenizer.chat_template", &t.ChatTemplate); err != nil {
		return nil, err
	}
	if v, ok := get("tokenizer.ggml.tokens"); ok {
		s, ok := v.([]string)
		if !ok {
			return nil, bad("tokenizer.ggml.tokens", "has type %s, expected arr[str]", typeName(v))
		}
		t.Tokens = s
	} else if model != "none" && model != "no_vocab" {
		return nil, bad("tokenizer.ggml.tokens", "is missing (tokenizer.ggml.model is %q)", model)
	}
	n := len(t.Tokens)
	if v, ok := get("tokenizer.ggml.scores"); ok {
		s, ok := v.([]float32)
		if !ok {
			return nil, bad("tokenizer.ggml.scores", "has type %s, expected arr[f32]", typeName(v))
		}
		if len(s) != n {
			return nil, bad("tokenizer.ggml.scores", "has %d entries for %d tokens", len(s), n)
		}
		t.Scores = s
	}
	if v, ok := get("tokenizer.ggml.token_type"); ok {
		s, ok := v.([]int32)
		if !ok {
			return nil, bad("tokenizer.ggml.token_type", "has type %s, expected arr[i32]", typeName(v))
		}
		if len(s) != n {
			return nil, bad("tokenizer.ggml.token_type", "has %d entries for %d tokens", len(s), n)
		}
		t.Types = s
	}
	if v, ok := get("tokenizer.ggml.merges"); ok {
		s, ok := v.([]string)
		if !ok {
			return nil, bad("tokenizer.ggml.merges", "has type %s, expected arr[str]", typeName(v))
		}
		t.Merges = s
	}

	// llama.cpp's per-model defaults.
	switch model {
	case "llama":
		t.BOS, t.EOS, t.UNK = 1, 2, 0
		t.AddBOS = true
	case "bert":
		t.BOS, t.UNK, t.SEP, t.PAD, t.MASK = 101, 100, 102, 0, 103
		t.AddBOS = true
	case "gpt2", "hybriddna", "whitespace":
		t.BOS, t.EOS = 11, 11
		t.AddBOS = bpeAddsBOS[t.Pre]
		t.IgnoreMerges = bpeIgnoresMerges[t.Pre]
	case "t5":
		t.EOS, t.UNK, t.PAD = 1, 2, 0
		t.AddEOS = true
	case "plamo2":
		t.BOS, t.EOS, t.UNK, t.PAD = 1, 2, 0, 3
	}
	if model == "gpt2" && (t.Pre == "glm4" || t.Pre == "chatglm-bpe") {
		t.BOS = -1
	}
	for _, sk := range specialKeys {
		id := sk.field(t)
		if *id >= n {
			*id = -1
		}
		v, ok := get(sk.key)
		if !ok {
			continue
		}
		x, err := intValue(v)
		if err != nil {
			return nil, bad(sk.key, "%v", err)
		}
		if x < n {
			*id = x
		}
	}
	boolKey := func(key string, dst *bool) error {
		if v, ok := get(key); ok {
			b, ok := v.(bool)
			if !ok {
				return bad(key, "has type %s, expected bool", typeName(v))
			}
			*dst = b
		}
		return nil
	}
	if err := boolKey("tokenizer.ggml.add_bos_token", &t.AddBOS); err != nil {
		return nil, err
	}
	if err := boolKey("tokenizer.ggml.add_eos_token", &t.AddEOS); err != nil {
		return nil, err
	}
	if _, ok := get("tokenizer.ggml.add_space_prefix"); ok {
		var b bool
		if err := boolKey("tokenizer.ggml.add_space_prefix", &b); err != nil {
			return nil, err
		}
		t.AddSpacePrefix = &b
	}
	return t, nil
}
