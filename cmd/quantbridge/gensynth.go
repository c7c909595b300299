package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/synth"
)

func init() {
	register(&cli.Command{
		Name:      "gen-synthetic",
		Usage:     "write a synthetic llama GGUF with random weights (for benchmarks)",
		ArgsUsage: "OUT.gguf",
		Hidden:    true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Value: "1b", Usage: "shape: 1b (TinyLlama-1.1B) or tiny (6.8M)"},
			&cli.StringFlag{Name: "type", Value: "F16", Usage: "weight type: F16, BF16 or F32"},
			&cli.IntFlag{Name: "layers", Usage: "override the preset's layer count"},
			&cli.Uint64Flag{Name: "seed", Usage: "weight seed"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: runtime.NumCPU()},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return &exitError{2, errors.New("gen-synthetic: want OUT.gguf")}
			}
			cfg, ok := synth.Presets[c.String("preset")]
			if !ok {
				return &exitError{2, fmt.Errorf("unknown preset %q", c.String("preset"))}
			}
			t, ok := graph.ParseType(c.String("type"))
			if !ok || (t != graph.F16 && t != graph.BF16 && t != graph.F32) {
				return &exitError{2, fmt.Errorf("--type %q: want F16, BF16 or F32", c.String("type"))}
			}
			cfg.Type, cfg.Seed, cfg.Jobs = t, c.Uint64("seed"), c.Int("jobs")
			if n := c.Int("layers"); n > 0 {
				cfg.Layers = n
			}
			ctx, signaled, stop := signalContext(c.Context)
			defer stop()
			if err := synth.WriteGGUF(ctx, c.Args().Get(0), cfg); err != nil {
				if sig := signaled(); sig != nil {
					return interrupted(sig, c.Args().Get(0)+" not written")
				}
				return err
			}
			fmt.Fprintf(os.Stderr, "quantbridge: wrote %s: %d parameters\n", c.Args().Get(0), cfg.Params())
			return nil
		},
	})
}
