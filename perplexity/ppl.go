package perplexity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/quantbridge/quantbridge/graph"
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
	Threads int // worker goroutines; 0 means runtime.NumCPU()
	// Progress receives llama-perplexity's running output
	// "[1]54.1315,[2]35.7765,..." (and a final newline); nil for none.
	Progress io.Writer
	// Activations picks the activation rounding (default ActivationsAuto).
	Activations Activations
	// KLBase, when set, is evaluated on the same tokens alongside the model
	// and Result.KL compares the two distributions (llama-perplexity
	// --kl-divergence). It must have the same vocabulary size.
	KLBase *graph.Model
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
func Evaluate(ctx context.Context, m *graph.Model, tok Tokenizer, text string, opt Options) (*Result, error) {
	if tok == nil {
		return nil, fmt.Errorf("perplexity: no tokenizer")
	}
	tokens := tok.Encode(text, true)
	return EvaluateTokens(ctx, m, tokens, tok.AddBOS(), tok.BOS(), opt)
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

func evaluate(ctx context.Context, fm, base *Model, tokens []int, addBOS bool, bos int, opt Options) (*Result, error) {
	nCtx := opt.Ctx
	if nCtx == 0 {
		nCtx = 512
	}
	if nCtx < 4 {
		return nil, fmt.Errorf("perplexity: context %d is too small", nCtx)
	}
	if len(tokens) < 2*nCtx {
		return nil, fmt.Errorf("%w: you need at least %d tokens to evaluate perplexity with a context of %d; the text tokenizes to only %d tokens",
			ErrTooFewTokens, 2*nCtx, nCtx, len(tokens))
	}
	if addBOS && (bos < 0 || bos >= fm.Vocab) {
		return nil, fmt.Errorf("perplexity: BOS id %d outside the vocabulary (%d)", bos, fm.Vocab)
	}
	nChunk := len(tokens) / nCtx
	if opt.Chunks > 0 {
		nChunk = min(nChunk, opt.Chunks)
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
		logits, err := run.forward(chunk, first)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", c+1, err)
		}
		var baseLogits []float32
		if baseRun != nil {
			if baseLogits, err = baseRun.forward(chunk, first); err != nil {
				return nil, fmt.Errorf("KL base, chunk %d: %w", c+1, err)
			}
		}
		elapsed += time.Since(start)
		V := fm.Vocab
		for pos := first; pos < nCtx-1; pos++ {
			row := logits[(pos-first)*V : (pos-first+1)*V]
			next := chunk[pos+1]
			v := -logSoftmax(row, next)
			nll += v
			nll2 += v * v
			count++
			if kl != nil {
				kl.add(row, baseLogits[(pos-first)*V:(pos-first+1)*V], next)
			}
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
	mx := logits[0]
	for _, v := range logits[1:] {
		mx = max(mx, v)
	}
	var sum float64
	for _, v := range logits {
		sum += float64(float32(math.Exp(float64(v - mx))))
	}
	return float64(logits[tok]-mx) - math.Log(sum)
}
