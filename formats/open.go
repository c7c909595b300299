// Package formats opens a model checkpoint of any supported format: it is
// the one place that knows all the format packages, and it only detects and
// dispatches.
//
// Detection:
//   - a file ending in .gguf, or starting with the GGUF magic: GGUF;
//   - a file ending in .safetensors: a bare safetensors file;
//   - a directory whose config.json has "quantization" or whose weights carry
//     safetensors metadata format "mlx": an MLX (mlx-lm) model directory;
//   - any other directory with config.json: a Hugging Face checkpoint.
package formats

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/formats/mlx"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/osfile"
)

// Options adjust Open.
type Options struct {
	// TokenizerPre overrides the BPE pre-tokenizer name of HF/MLX
	// checkpoints whose split regexes are not recognised.
	TokenizerPre string
}

// Detect returns the format of path without reading its tensors.
func Detect(path string) (graph.Format, error) {
	st, err := osfile.Stat(path)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "config.json")); err != nil {
			return "", fmt.Errorf("%s: a model directory needs a config.json (HF or MLX checkpoint)", path)
		}
		if mlx.IsMLXDir(path) {
			return graph.FormatMLX, nil
		}
		return graph.FormatHF, nil
	}
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".gguf"):
		return graph.FormatGGUF, nil
	case strings.HasSuffix(lower, ".safetensors"):
		return graph.FormatSafetensors, nil
	}
	f, _, err := osfile.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err == nil && bytes.Equal(magic, []byte("GGUF")) {
		return graph.FormatGGUF, nil
	}
	return "", fmt.Errorf("%s: unknown model format (want a .gguf or .safetensors file, or an HF or MLX model directory)", path)
}

// Open reads the model at path. Close the model when done.
func Open(path string) (*graph.Model, error) { return OpenOptions(path, Options{}) }

// OpenOptions is Open with options.
func OpenOptions(path string, opt Options) (*graph.Model, error) {
	f, err := Detect(path)
	if err != nil {
		return nil, err
	}
	switch f {
	case graph.FormatGGUF:
		m, err := gguf.ReadModel(path)
		if err != nil {
			return nil, err
		}
		// The architecture's own keys (sliding windows, ...).
		if err := arch.ApplyGGUF(m); err != nil {
			m.Close()
			return nil, err
		}
		return m, nil
	case graph.FormatSafetensors:
		return safetensors.ReadModel(path)
	case graph.FormatMLX:
		return mlx.ReadDirOptions(path, mlx.ReadOptions{Tokenizer: hf.TokenizerOptions{Pre: opt.TokenizerPre}})
	default:
		return hf.ReadDirOptions(path, hf.ReadOptions{TokenizerPre: opt.TokenizerPre})
	}
}
