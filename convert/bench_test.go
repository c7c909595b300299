package convert

import (
	"context"
	"path/filepath"
	"testing"

	synthgguf "github.com/quantbridge/quantbridge/internal/synth"
)

// BenchmarkConvertGGUF converts a synthetic F16 llama GGUF (synth preset
// "tiny", 6.8M parameters) to each type; bytes/s count input bytes.
// scripts/bench-vs-llama-quantize.sh runs the 1.1B comparison with
// llama-quantize.
func BenchmarkConvertGGUF(b *testing.B) {
	dir := b.TempDir()
	in := filepath.Join(dir, "synthetic.f16.gguf")
	cfg := synthgguf.Presets["tiny"]
	if err := synthgguf.WriteGGUF(context.Background(), in, cfg); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"Q8_0", "Q4_K_M"} {
		b.Run(name, func(b *testing.B) {
			ft, err := ParseFileType(name)
			if err != nil {
				b.Fatal(err)
			}
			out := filepath.Join(dir, name+".gguf")
			b.SetBytes(cfg.Params() * 2)
			for b.Loop() {
				if _, err := ConvertGGUF(context.Background(), in, out, Options{Target: GGUFTarget{FileType: ft}, Force: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
