// Package perplexity scores language models the way llama.cpp's
// llama-perplexity does, in pure Go (tokenization is package tokenizer's): a forward
// pass for the llama family (llama, mistral) and qwen2 over any
// graph.Model, the llama-perplexity chunking method, and its KL-divergence
// statistics.
//
// Forward pass (model*.go, forward*.go, matmul*.go): token embedding,
// RMSNorm (sum of squares in float64), RoPE, grouped-query causal
// attention, SwiGLU MLP, optional q/k/v(/o) biases, tied output
// (token_embd when there is no output.weight), RoPE scaling "linear",
// "llama3" or a rope_freqs.weight tensor. RoPE rotates adjacent pairs
// (llama.cpp's NORM mode) for llama GGUF files, whose Q/K rows
// convert_hf_to_gguf permuted, and halves (NEOX) for qwen2 and for HF/MLX
// llama checkpoints, which are not permuted; the two are the same function
// (TestForwardSynthetic checks both against a float64 reference). Fused
// projections (Phi-3's attn_qkv and gate+up ffn_up) are evaluated as row
// views of the one tensor; longrope scaling (Phi-3) picks its short or long
// factors by context length as llama.cpp does for GGUF files and as
// transformers does for HF/MLX checkpoints (model_fused.go). All
// tokens of a chunk go through each layer together (matrix × matrix),
// parallelized over output rows. Gemma 3 (forward_gemma.go) adds the
// embedding scale, (1+w) norms, q/k and post-sublayer norms, the GELU-tanh
// gate, per-layer sliding-window attention with its own rope base, its
// attention scale and the final logit soft-cap.
//
// Weights: when the float32 expansion of all matrices fits 1 GiB
// (expandBudget) they are expanded once at load; otherwise they stay in
// their stored encoding (F16, BF16, every ggml block type package quantize
// decodes, MLX affine) and are expanded a tile of 16 rows at a time inside
// the matrix product into a per-worker buffer, then multiplied with all
// activation rows of the batch. Tile expansion is amortized over the batch
// but not free: in BenchmarkPerplexityGGUF (kjv-llama bf16 and Q4_K_M, ctx
// 128) it was 13% of the CPU time once the product kernels were
// vectorized, while expanding kjv-llama's 6.8M weights costs 27 MB; for models too big for the budget the tiles keep memory at
// the encoded size. F32 weights are decoded once.
//
// Kernels: on amd64 with AVX2 and FMA (matmul_amd64.s) the matrix products
// run a 4-weight-row × 3-token FMA kernel; attention scores, the softmax
// exponentials, the weighted value sums, SwiGLU and the Q8_0/Q8_K
// activation rounding have AVX2 kernels too. Except for the products (FMA,
// eight partial sums per dot product) and SwiGLU (a float32 exp of about
// 1 ulp), the AVX2 kernels are bit-identical to the portable Go code
// (checked in matmul_simd_test.go); QUANTBRIDGE_PUREGO=1 or -tags purego
// selects the portable code. The exact orders of the GGUF path (below) have
// kernels of their own, chosen at run time: AVX2 everywhere
// (matmul_kquant_amd64.s: kVecDot and kRepackDot run a decoded K-quant row
// against all tokens, integer lanes and float steps in one pass; q0dot4
// the 32-element block types four tokens at a time; VCVTPH2PS expands F16
// tiles) and AVX-512 where the CPU has AVX512F/BW/VL
// (matmul_avx512_amd64.s: tinyBLAS<16> on 4 tokens × 4 rows of zmm
// accumulators; the K-quants four tokens per call with the integer lanes
// two chunks per register and the per-token float steps as lanes of one
// vector). A tile's rows are decoded once (int8 codes, int16 scales) and
// met by blocks of tokens small enough to stay in L2. Each kernel gives
// the bits of the order's portable Go definition, checked bit for bit in
// matmul_kquant_test.go (TestFusedKQuantSIMD, TestQ0TileSIMD,
// TestTinyBLAS16AVX512, TestHalfToF32SIMD). The assembly is written by
// hand with macros for the repeated per-token steps (avo was not used: its
// AVX-512 support was not checked in the time available). The quantized types' PPL against
// llama-perplexity moves by a few 1e-4 relative with any change of float
// rounding (the 8-bit activation rounding amplifies it), so the attention
// keeps its exact arithmetic. Parallel loops run on persistent helper
// goroutines that spin briefly between loops (pool.go), so that every
// thread stays busy through the ~10 short loops of each layer.
//
// Activations: ggml's CPU backend rounds the input of every matrix product
// to the weight type's vec_dot_type (Q8_0 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0,
// Q8_K for k-quants, BF16 or F16 for 16-bit weights) and keeps the KV
// cache in F16. Options.Activations selects this emulation
// (ActivationsLlamaCpp, see matmul_act.go) or plain float32
// (ActivationsFloat32); the default (ActivationsAuto) emulates llama.cpp
// for GGUF models and uses float32 for HF/MLX checkpoints, matching
// transformers and MLX. On kjv-llama the emulation moves the final PPL of
// the quantized GGUF files onto llama-perplexity's figure (Q6_K: 0.03%
// off instead of 0.14%).
//
// Bit-exact emulation (matmul_order.go, attention_ggml.go, rope_ggml.go,
// libm.go): with the llama.cpp activation rounding on, the forward pass
// also reproduces the float arithmetic of ggml's CPU kernels as the
// reference build runs them (llama.cpp 34af94cd, gcc 12, glibc, x86-64
// with AVX-512, AVX512-VNNI and AVX512-BF16; -t 2, batch = ctx):
//   - RMSNorm: each square rounded to float32 before the float64 sum,
//     scale 1/sqrtf(mean+eps) in float32.
//   - RoPE: ggml_rope_cache_init's float32 angles (p·θ_scale^i by repeated
//     float32 products, θ_scale = powf(base, −2/dims)), glibc's sinf/cosf,
//     and the rotation contracted to fused multiply-adds as gcc compiles
//     rotate_pairs.
//   - Matrix products, by weight type and op: F32 and F16 ggml_mul_mat run
//     tinyBLAS<16> (16 lanes of fused multiply-adds, _mm512_reduce_add_ps);
//     BF16 runs tinyBLAS<32> with VDPBF16PS for ggml_mul_mat and
//     ggml_vec_dot_bf16 (VDPBF16PS into two accumulators, float64 sum) for
//     ggml_mul_mat_id (routed experts) and where tinyBLAS declines; Q8_0,
//     Q4_1, Q5_0, Q5_1 and Q4_0 with a row count not a multiple of 8 run
//     tinyBLAS_Q0_AVX or ggml_vec_dot_*_q8_* (exact integer sums of 4 codes
//     per lane, one fused multiply-add of fp16(d_w)·fp16(d_x) per block and
//     lane, hsum_float_8, the Q8_1 block sums for the minimums); Q3_K, Q5_K
//     and Q6_K run ggml_vec_dot_q*_K_q8_K (AVX2: 8 integer lanes per block
//     of 256, one fused multiply-add per block and lane). Q4_0, Q4_K and
//     Q2_K with a row count that is a multiple of 8 are repacked and run
//     repack.cpp's GEMM (ggml_mul_mat, token rows in groups of 4) or GEMV
//     (routed experts, the rows left over): one float32 accumulator per
//     output, plus one for the K-quant minimums, taking the integer sums of
//     a block (Q4_0), of 64 (Q4_K) or 128 (Q2_K) elements in the GEMM and
//     of 256 in the K-quant GEMVs.
//   - Attention: llama-perplexity enables flash attention on the CPU; its
//     tiled kernel (query batches of 64 rows or more) chains the scores'
//     fused multiply-adds over the head dimension, runs an online softmax
//     over key tiles of 64 with ggml_v_expf and glibc's expf for the
//     rescaling, and chains the value sums' fused multiply-adds.
//   - SwiGLU: ggml_v_silu on groups of 16, x/(1+expf(−x)) for the rest; the
//     router softmax: ggml_vec_soft_max_f32 (glibc's expf below 16 experts).
//
// With these, the logits of the first chunk of qwen3moe-tiny (bf16, Q8_0,
// Q4_K_M) equal llama.cpp's to the bit (compared with its intermediate
// tensors through the eval callback), and every file llama-quantize made of
// kjv-llama (bf16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_1, Q5_0, Q4_K_M, Q4_K_S,
// Q4_1, Q4_0, Q3_K_M, Q2_K), qwen3-tiny, qwen3moe-tiny and mixtral-tiny
// gives llama-perplexity's printed figures to the last digit.
//
// Why it matters: in a dense model a last-bit difference stays small, and
// the PPL agreed within about 1e-4 without this. A routed-experts layer
// keeps the top k router probabilities of each token; a last-bit
// difference anywhere upstream grows through the F16 KV cache and the BF16
// or 8-bit activation roundings (one flipped rounding is 2^-11 to 2^-8
// relative), and sooner or later a near-tie between two experts goes the
// other way, which changes that token's FFN output by a large amount. On
// qwen3moe-tiny bf16, 5 of 16000 routing decisions went the other way
// before (the float64 rope angles were the largest source), one of them
// moving the total NLL by 1.0: 3.6e-4 of the PPL.
//
// Not emulated, so off by float summation order (which routing amplifies
// to about 1e-4 relative and more): the i-quants and the other types no
// reference file uses (TQ*, MXFP4, IQ4_NL, repacked or not), F32/F16
// products of a single token (ggml_vec_dot), the non-tiled flash attention
// of batches under 64 rows (or head sizes not a multiple of 16), Gemma 3's
// and Phi-3's own steps (not compared with llama.cpp's tensors), and
// VDPBF16PS's flushing of subnormal inputs to zero. The kernels, and so the
// figures, are those of the reference machine: llama.cpp built for another
// instruction set (AVX2 only, no AVX512-BF16, ARM) sums in other orders,
// and its own figures for MoE models would move by routing flips as well
// (not measured here). The exact orders first cost speed (their float
// steps ran in Go); the fused kernels above took that back: see
// docs/benchmarks.md for the figures against llama-perplexity. Float32
// activations (ActivationsFloat32, and HF/MLX models) keep the fast
// kernels.
//
// Method (tools/perplexity/perplexity.cpp perplexity() at llama.cpp
// 34af94cd): the text is tokenized once with BOS first; n_chunk =
// tokens/ctx (at most Options.Chunks); each chunk's first token is
// overwritten by BOS; the logits at positions ctx/2 .. ctx-2 score the
// next token with a max-subtracted log-softmax whose exp terms are summed
// in float64; nll and nll² are accumulated in float64; PPL = exp(mean nll)
// with the delta-method standard error.
//
// Not covered: other architectures (no MoE, no sliding-window or
// soft-capped attention, no qwen3 q/k norms), YaRN/longrope scaling,
// llama-perplexity's --ppl-stride, HellaSwag/Winogrande modes, and its
// 16-bit compressed KL base files (the base model is evaluated alongside
// instead).
package perplexity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/tokenizer"
)

// Activations selects how matrix-product inputs are rounded.
type Activations int

const (
	// ActivationsAuto rounds as llama.cpp does for GGUF models and keeps
	// float32 activations for HF/MLX/safetensors models (as transformers
	// and MLX do).
	ActivationsAuto Activations = iota
	// ActivationsLlamaCpp rounds activations to the weight type's
	// vec_dot_type (Q8_0, Q8_K, F16, BF16) as ggml's CPU backend does.
	ActivationsLlamaCpp
	// ActivationsFloat32 multiplies dequantized weights by float32
	// activations.
	ActivationsFloat32
)

// Options configure Evaluate.
type Options struct {
	Ctx     int // context (chunk) length in tokens; 0 means 512
	Chunks  int // maximum number of chunks; 0 or negative means all
	Threads int // worker goroutines; 0 means runtime.GOMAXPROCS(0) (the number of CPUs)
	// Progress receives llama-perplexity's running output
	// "[1]54.1315,[2]35.7765,..." (and a final newline); nil for none.
	Progress io.Writer
	// Activations picks the activation rounding (default ActivationsAuto).
	Activations Activations
	// KLBase, when set, is evaluated on the same tokens alongside the model
	// and Result.KL compares the two distributions (llama-perplexity
	// --kl-divergence). It must have the same vocabulary size.
	KLBase *graph.Model
	// ParseSpecial turns control-token text (e.g. <s>) into those tokens
	// when Tokenize and Evaluate tokenize (--parse-special); off, as
	// llama-perplexity and llama-imatrix default.
	ParseSpecial bool
}

// Result is the outcome of Evaluate.
type Result struct {
	PPL, PPLStderr float64
	Ctx, Chunks    int
	TokensScored   int
	// Running holds the running perplexity after each chunk, as
	// llama-perplexity prints it.
	Running                  []float64
	Seconds, TokensPerSecond float64 // forward-pass time; tokens evaluated (Chunks*Ctx) per second
	KL                       *KLResult
}

// ErrTooFewTokens is returned (wrapped) when the text is shorter than two
// contexts.
var ErrTooFewTokens = errors.New("perplexity: text too short")

// Evaluate scores text on m exactly as llama-perplexity does (see the
// package documentation): tokenize once, cut into Ctx-token chunks, score
// the second half of each chunk.
func Evaluate(ctx context.Context, m *graph.Model, tok *tokenizer.Tokenizer, text string, opt Options) (*Result, error) {
	if tok == nil {
		return nil, fmt.Errorf("perplexity: no tokenizer")
	}
	tokens := tok.Encode(text, tokenizer.Options{AddSpecial: true, ParseSpecial: opt.ParseSpecial})
	return EvaluateTokens(ctx, m, tokens, tok.AddBOS(), tok.BOS(), opt)
}

// Tokenize reads an evaluation text from r and tokenizes it as
// llama-perplexity does (BOS first when the vocabulary asks for it), in
// bounded memory beyond the ids. With opt.Chunks > 0 it stops once the
// tokens of that many chunks (and at least two contexts) exist: those are
// the ids of the whole text's first tokens, all that the evaluation reads.
// r must already be the text as llama-perplexity reads it (see
// tokenizer.NewTextReader).
func Tokenize(tok *tokenizer.Tokenizer, r io.Reader, opt Options) ([]int, error) {
	if tok == nil {
		return nil, fmt.Errorf("perplexity: no tokenizer")
	}
	nCtx := opt.Ctx
	if nCtx == 0 {
		nCtx = 512
	}
	limit := 0
	if opt.Chunks > 0 && nCtx > 0 {
		limit = max(opt.Chunks, 2) * nCtx
	}
	var tokens []int
	err := tok.EncodeReader(r, tokenizer.Options{AddSpecial: true, ParseSpecial: opt.ParseSpecial}, func(ids []int) error {
		tokens = append(tokens, ids...)
		if limit > 0 && len(tokens) >= limit {
			return tokenizer.ErrStop
		}
		return nil
	})
	return tokens, err
}

// EvaluateTokens is Evaluate on an already tokenized text (tokens as
// common_tokenize(text, add_special=true) returns them). When addBOS is set,
// each chunk's first token is overwritten by bos.
func EvaluateTokens(ctx context.Context, m *graph.Model, tokens []int, addBOS bool, bos int, opt Options) (*Result, error) {
	fm, err := LoadModel(m)
	if err != nil {
		return nil, err
	}
	fm.activations = useLlamaActivations(m, opt.Activations)
	var base *Model
	if opt.KLBase != nil {
		if base, err = LoadModel(opt.KLBase); err != nil {
			return nil, fmt.Errorf("KL base: %w", err)
		}
		base.activations = useLlamaActivations(opt.KLBase, opt.Activations)
		if base.Vocab != fm.Vocab {
			return nil, fmt.Errorf("perplexity: KL base %s has a vocabulary of %d tokens, %s has %d", opt.KLBase.Path, base.Vocab, m.Path, fm.Vocab)
		}
		if err := SameVocabulary(opt.KLBase.Tokenizer, m.Tokenizer); err != nil {
			return nil, fmt.Errorf("perplexity: KL base %s and %s: %w", opt.KLBase.Path, m.Path, err)
		}
	}
	return evaluate(ctx, fm, base, tokens, addBOS, bos, opt)
}

func useLlamaActivations(m *graph.Model, a Activations) bool {
	switch a {
	case ActivationsLlamaCpp:
		return true
	case ActivationsFloat32:
		return false
	}
	return m.Format == graph.FormatGGUF
}

// SameVocabulary returns an error when two tokenizers (when both are known)
// do not have the same pieces, so token ids of one are not the other's.
func SameVocabulary(a, b *graph.Tokenizer) error {
	if a == nil || b == nil {
		return nil
	}
	if len(a.Tokens) != len(b.Tokens) {
		return fmt.Errorf("vocabularies differ: %d vs %d tokens", len(a.Tokens), len(b.Tokens))
	}
	for i := range a.Tokens {
		if a.Tokens[i] != b.Tokens[i] {
			return fmt.Errorf("vocabularies differ at token %d: %q vs %q", i, a.Tokens[i], b.Tokens[i])
		}
	}
	return nil
}

// chunkPlan is the context (ctx, 0: 512) and chunk count (at most chunks
// when positive) llama-perplexity and llama-imatrix evaluate nTokens tokens
// in, or the error they stop with: a context under 4 tokens, fewer than two
// contexts of tokens (need completes llama.cpp's message, given the
// context), a BOS outside the vocabulary. what prefixes the context error.
func chunkPlan(fm *Model, nTokens, ctx, chunks int, addBOS bool, bos int, what, need string) (nCtx, nChunk int, err error) {
	nCtx = ctx
	if nCtx == 0 {
		nCtx = 512
	}
	if nCtx < 4 {
		return 0, 0, fmt.Errorf("%s: context %d is too small", what, nCtx)
	}
	if nTokens < 2*nCtx {
		return 0, 0, fmt.Errorf("%w: you need at least %d tokens "+need+"; the text tokenizes to only %d tokens",
			ErrTooFewTokens, 2*nCtx, nCtx, nTokens)
	}
	if addBOS && (bos < 0 || bos >= fm.Vocab) {
		return 0, 0, fmt.Errorf("%s: BOS id %d outside the vocabulary (%d)", fm.source, bos, fm.Vocab)
	}
	nChunk = nTokens / nCtx
	if chunks > 0 {
		nChunk = min(nChunk, chunks)
	}
	return nCtx, nChunk, nil
}

func evaluate(ctx context.Context, fm, base *Model, tokens []int, addBOS bool, bos int, opt Options) (*Result, error) {
	nCtx, nChunk, err := chunkPlan(fm, len(tokens), opt.Ctx, opt.Chunks, addBOS, bos, "perplexity", "to evaluate perplexity with a context of %d")
	if err != nil {
		return nil, err
	}
	first := nCtx / 2
	run := newRunner(fm, opt.Threads)
	var baseRun *runner
	var kl *klAccumulator
	if base != nil {
		baseRun = newRunner(base, opt.Threads)
		kl = newKLAccumulator(nChunk * (nCtx - 1 - first))
	}
	res := &Result{Ctx: nCtx, Chunks: nChunk}
	var nll, nll2 float64
	count := 0
	chunk := make([]int, nCtx)
	nlls := make([]float64, nCtx-1-first)
	expBufs := make([][]float32, run.threads)
	for i := range expBufs {
		expBufs[i] = make([]float32, fm.Vocab)
	}
	var elapsed time.Duration
	for c := 0; c < nChunk; c++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		copy(chunk, tokens[c*nCtx:(c+1)*nCtx])
		if addBOS {
			chunk[0] = bos
		}
		start := time.Now()
		if _, err := run.hidden(chunk, first); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", c+1, err)
		}
		if baseRun != nil {
			if _, err := baseRun.hidden(chunk, first); err != nil {
				return nil, fmt.Errorf("KL base, chunk %d: %w", c+1, err)
			}
		}
		V := fm.Vocab
		// The logits a block of positions at a time (not the last
		// position's: it predicts nothing); the log-softmax of each
		// position in parallel, the sums in order.
		scoredAll := nCtx - 1 - first
		for i0 := 0; i0 < scoredAll; i0 += logitBlock {
			i1 := min(i0+logitBlock, scoredAll)
			logits := run.logitsRows(i0, i1)
			var baseLogits []float32
			if baseRun != nil {
				baseLogits = baseRun.logitsRows(i0, i1)
			}
			scored := i1 - i0
			parallelFor(run.threads, scored, func(w, i int) {
				pos := first + i0 + i
				nlls[i0+i] = -logSoftmaxBuf(logits[i*V:(i+1)*V], chunk[pos+1], expBufs[w])
			})
			if kl != nil {
				for i := 0; i < scored; i++ {
					kl.add(logits[i*V:(i+1)*V], baseLogits[i*V:(i+1)*V], chunk[first+i0+i+1])
				}
			}
		}
		elapsed += time.Since(start)
		for _, v := range nlls {
			nll += v
			nll2 += v * v
			count++
		}
		running := math.Exp(nll / float64(count))
		res.Running = append(res.Running, running)
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "[%d]%.4f,", c+1, running)
		}
	}
	if opt.Progress != nil {
		fmt.Fprintln(opt.Progress)
	}
	res.TokensScored = count
	mean := nll / float64(count)
	res.PPL = math.Exp(mean)
	if v := nll2/float64(count) - mean*mean; v > 0 && count > 1 {
		res.PPLStderr = math.Sqrt(v/float64(count-1)) * res.PPL
	}
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.TokensPerSecond = float64(nChunk*nCtx) / res.Seconds
	}
	if kl != nil {
		res.KL = kl.result()
	}
	return res, nil
}

// logSoftmax returns log p(tok) for one row of logits as llama-perplexity's
// log_softmax computes it: maximum subtracted, expf terms summed in double.
func logSoftmax(logits []float32, tok int) float64 {
	return logSoftmaxBuf(logits, tok, nil)
}

// logSoftmaxBuf is logSoftmax with a scratch buffer for the exp terms
// (len(logits) floats; nil to evaluate them one by one). The terms are
// float32(exp(float64(v − max))) either way (see expNeg) and summed in the
// same order.
func logSoftmaxBuf(logits []float32, tok int, buf []float32) float64 {
	mx := logits[0]
	for _, v := range logits[1:] {
		mx = max(mx, v)
	}
	var sum float64
	if len(buf) >= len(logits) {
		e := buf[:len(logits)]
		copy(e, logits)
		expNeg(e, mx)
		for _, v := range e {
			sum += float64(v)
		}
		return float64(logits[tok]-mx) - math.Log(sum)
	}
	for _, v := range logits {
		sum += float64(float32(math.Exp(float64(v - mx))))
	}
	return float64(logits[tok]-mx) - math.Log(sum)
}
