package hf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// Phi3MiniModel.set_vocab: tokenizer.model with the added tokens as
// written (CONTROL when special, else USER_DEFINED, score -1000, no text
// rules: "</s>" is not special in phi3-tiny's tokenizer files), and a
// tokenizer_config.json tokenizer_class "GPT2Tokenizer" (Phi-4) selects
// the byte-level BPE vocabulary even beside a tokenizer.model.
func TestPhi3Vocab(t *testing.T) {
	dir := testref.Local(t, "arch", "phi3-tiny")
	_, p, _, err := ReadConfigFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ReadTokenizer(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Model != graph.TokenizerSPM || len(tok.Tokens) != 4160 || tok.AddBOS || tok.EOS != 4096 || tok.PAD != 4096 {
		t.Fatalf("tokenizer %s, %d tokens, add BOS %v, EOS %d, PAD %d", tok.Model, len(tok.Tokens), tok.AddBOS, tok.EOS, tok.PAD)
	}
	for _, c := range []struct {
		id    int
		text  string
		typ   int32
		score float32
	}{
		{0, "<unk>", graph.TokenControl, -1000},
		{1, "<s>", graph.TokenControl, -1000},
		{2, "</s>", graph.TokenUserDefined, -1000},
		{3, "<0x00>", graph.TokenByte, 0},
		{4096, "<|endoftext|>", graph.TokenControl, -1000},
		{4106, "<|user|>", graph.TokenControl, -1000},
		{4107, "[PAD4107]", graph.TokenUnused, -10000},
		{4159, "[PAD4159]", graph.TokenUnused, -10000},
	} {
		if tok.Tokens[c.id] != c.text || tok.Types[c.id] != c.typ || tok.Scores[c.id] != c.score {
			t.Errorf("token %d: %q type %d score %v, want %q %d %v", c.id, tok.Tokens[c.id], tok.Types[c.id], tok.Scores[c.id], c.text, c.typ, c.score)
		}
	}

	// Phi-4 style: the same directory with a BPE tokenizer.json and
	// tokenizer_class GPT2Tokenizer.
	files := map[string][]byte{}
	for _, f := range []struct{ dir, name string }{
		{dir, "config.json"}, {dir, "tokenizer.model"},
		{testref.Local(t, "unseen", "qwen2-bpe-tied"), "tokenizer.json"},
	} {
		b, err := os.ReadFile(filepath.Join(f.dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		files[f.name] = b
	}
	for _, c := range []struct {
		class, want string
	}{{"GPT2Tokenizer", graph.TokenizerBPE}, {"LlamaTokenizer", graph.TokenizerSPM}} {
		files["tokenizer_config.json"] = []byte(`{"tokenizer_class": "` + c.class + `", "add_bos_token": false}`)
		tok, err := ParseTokenizer(files, p, TokenizerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tok.Model != c.want || len(tok.Tokens) != 4160 {
			t.Errorf("tokenizer_class %s: %s vocabulary of %d, want %s", c.class, tok.Model, len(tok.Tokens), c.want)
		}
	}
}
