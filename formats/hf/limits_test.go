package hf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// kjvDir makes a copy of the kjv-llama checkpoint (weights linked, not
// copied) that a test can add files to.
func kjvDir(t *testing.T) string {
	t.Helper()
	src := testref.Local(t, "kjv-llama")
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "model.safetensors" {
			if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// grow makes path size bytes long without using disk space (a sparse
// file): its content, if any, followed by zeros.
func grow(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// TestSideFileSizeCaps: a side file over its cap is refused before it is
// read, with an error naming the file, its size and the cap. A 510 MB
// config.json used to be read and decoded into generic JSON values (about
// 60 bytes of memory per byte: 20 MB took 1.2 GB), which exhausted memory.
func TestSideFileSizeCaps(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name string
		size int64
		want int64 // the cap in the error; 0: no error
	}{
		{"config.json", 510 * mb, maxSmallJSON},
		{"config.json", maxSmallJSON + 1, maxSmallJSON},
		{"generation_config.json", 9 * mb, maxSmallJSON},
		{"tokenizer_config.json", 510 * mb, maxSmallJSON},
		{"special_tokens_map.json", 100 * mb, maxSmallJSON},
		{"chat_template.jinja", 9 * mb, maxSmallJSON},
		{"tokenizer.json", 65 * mb, maxTokenizerFile},
		{"tokenizer.model", 510 * mb, maxTokenizerFile},
		{"merges.txt", 100 * mb, maxTokenizerFile},
		// Other auxiliary files are carried over up to maxAuxFile and
		// left out above it.
		{"README.md", 100 * mb, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %d", tc.name, tc.size), func(t *testing.T) {
			dir := kjvDir(t)
			path := filepath.Join(dir, tc.name)
			grow(t, path, tc.size)
			m, err := ReadDir(dir)
			if tc.want == 0 {
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				if _, ok := m.Files[tc.name]; ok {
					t.Errorf("%s carried over", tc.name)
				}
				return
			}
			want := fmt.Sprintf("%s: %d bytes, over the %d-byte limit for this file", path, tc.size, tc.want)
			if err == nil {
				m.Close()
				t.Fatalf("no error, want %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q, want %q", err, want)
			}
		})
	}
	// ReadTokenizer and ReadConfigFile on their own apply the same caps.
	dir := kjvDir(t)
	grow(t, filepath.Join(dir, "tokenizer.json"), 510*mb)
	if _, err := ReadTokenizer(dir, graph.Params{VocabSize: 4096}); err == nil || !strings.Contains(err.Error(), "tokenizer.json: 534773760 bytes, over the 67108864-byte limit") {
		t.Errorf("ReadTokenizer: error %v", err)
	}
	grow(t, filepath.Join(dir, ConfigName), 510*mb)
	if _, _, _, err := ReadConfigFile(filepath.Join(dir, ConfigName)); err == nil || !strings.Contains(err.Error(), "config.json: 534773760 bytes, over the 8388608-byte limit") {
		t.Errorf("ReadConfigFile: error %v", err)
	}
}

// TestTokenizerPartCap: tokenizer.json's normalizer, pre_tokenizer,
// post_processor and decoder, decoded into generic JSON values, are capped
// at maxTokenizerPart each, with an error naming the file and the key.
func TestTokenizerPartCap(t *testing.T) {
	big := `{"type": "Sequence", "x": [` + strings.Repeat("0,", maxTokenizerPart/2) + `0]}`
	for _, key := range []string{"normalizer", "pre_tokenizer", "post_processor", "decoder"} {
		tj := `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "` + key + `": ` + big + `}`
		_, err := ParseTokenizer(map[string][]byte{"tokenizer.json": []byte(tj)}, graph.Params{}, TokenizerOptions{Arch: "qwen2"})
		want := fmt.Sprintf("tokenizer.json: %s is %d bytes, over the %d-byte limit", key, len(big), maxTokenizerPart)
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %q", key, err, want)
		}
	}
}
