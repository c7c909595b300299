package arch

import (
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// TestModelCardFrontMatterCap: front matter over maxFrontMatter is an
// error naming README.md, its size and the limit, not a YAML decode of
// about 110 bytes of memory per byte.
func TestModelCardFrontMatterCap(t *testing.T) {
	readme := "---\nx: [" + strings.Repeat("0,", maxFrontMatter/2) + "0]\n---\n"
	m := &graph.Model{Arch: "llama", Path: "/m", Params: graph.Params{Layers: 1}, Files: map[string][]byte{"README.md": []byte(readme)}}
	_, err := ModelKV(m, 1)
	want := "gguf: /m: README.md front matter: 1048583 bytes, over the 1048576-byte limit"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
