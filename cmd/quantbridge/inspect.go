package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats"
)

func init() {
	register(&cli.Command{
		Name:      "inspect",
		Usage:     "show a model's format, architecture, hyperparameters, tokenizer and tensors",
		ArgsUsage: "MODEL",
		Description: "MODEL is a .gguf file, a .safetensors file, or an HF or MLX model directory.\n" +
			"--json prints a stable object: format, architecture, params, tokenizer,\n" +
			"tensors [{name, shape, type, bytes}], total_parameters, total_bytes, bits_per_weight\n" +
			"(shapes outermost first, as torch writes them; GGUF's ne order is the reverse).",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.BoolFlag{Name: "metadata", Usage: "also list format metadata (GGUF key/values)"},
			&cli.BoolFlag{Name: "architectures", Usage: "list the supported architectures (no MODEL)"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("architectures") {
				if c.NArg() != 0 {
					return &exitError{2, fmt.Errorf("inspect: --architectures takes no MODEL argument")}
				}
				fmt.Fprint(c.App.Writer, arch.Table())
				return nil
			}
			if c.NArg() != 1 {
				return &exitError{2, fmt.Errorf("inspect: want one MODEL argument, got %d", c.NArg())}
			}
			m, err := formats.Open(c.Args().First())
			if err != nil {
				return err
			}
			defer m.Close()
			info := formats.Inspect(m)
			if !c.Bool("metadata") && !c.Bool("json") {
				info.Metadata = nil
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, info)
			}
			printInfo(c.App.Writer, info)
			return nil
		},
	})
}

func printInfo(w io.Writer, info *formats.Info) {
	p := info.Params
	fmt.Fprintf(w, "%s\n", info.Path)
	fmt.Fprintf(w, "  format        %s\n", info.Format)
	arch := info.Architecture
	if arch == "" {
		arch = "(unknown)"
	}
	fmt.Fprintf(w, "  architecture  %s\n", arch)
	for _, x := range info.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", x)
	}
	if info.Problem != "" {
		fmt.Fprintf(w, "  problem: %s (convert and ppl refuse this model)\n", info.Problem)
	}
	if p.Layers > 0 {
		fmt.Fprintf(w, "  layers %d, embedding %d, ffn %d, heads %d, kv heads %d, head dim %d\n",
			p.Layers, p.Embedding, p.FFN, p.Heads, p.KVHeads, p.HeadDim)
		fmt.Fprintf(w, "  rope %s base %g dims %d", p.RopeType, p.RopeBase, p.RopeDims)
		if p.RopeScaling != nil {
			fmt.Fprintf(w, " scaling %s x%g", p.RopeScaling.Type, p.RopeScaling.Factor)
		}
		fmt.Fprintf(w, ", rms eps %g, context %d, vocab %d, tied %v, attention bias %v\n",
			p.RMSEps, p.ContextLength, p.VocabSize, p.Tied, p.AttnBias)
		if p.SlidingWindow > 0 {
			n := 0
			for _, s := range p.SlidingLayers {
				if s {
					n++
				}
			}
			fmt.Fprintf(w, "  sliding window %d on %d of %d layers", p.SlidingWindow, n, p.Layers)
			if p.RopeBaseSWA != 0 {
				fmt.Fprintf(w, " (rope base %g)", p.RopeBaseSWA)
			}
			fmt.Fprintln(w)
		}
	}
	if t := info.Tokenizer; t != nil {
		kind := map[string]string{"llama": "SentencePiece", "gpt2": "byte-level BPE"}[t.Model]
		if kind == "" {
			kind = t.Model
		}
		fmt.Fprintf(w, "  tokenizer     %s, %d tokens", kind, t.Tokens)
		if t.Merges > 0 {
			fmt.Fprintf(w, ", %d merges", t.Merges)
		}
		if t.Pre != "" {
			fmt.Fprintf(w, ", pre %s", t.Pre)
		}
		fmt.Fprintf(w, ", bos %d eos %d, add_bos %v add_eos %v", t.BOS, t.EOS, t.AddBOS, t.AddEOS)
		if t.ChatTemplate {
			fmt.Fprint(w, ", chat template")
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "  tokenizer     (none)")
	}
	if len(info.Metadata) > 0 {
		fmt.Fprintln(w, "\nmetadata:")
		for _, kv := range info.Metadata {
			fmt.Fprintf(w, "  %-44s %-10s %v\n", kv.Key, strings.TrimPrefix(kv.Type, "[]"), kv.Value)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "name\tshape\ttype\tbytes\t")
	for _, t := range info.Tensors {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(tw, "%s\t[%s]\t%s\t%d\t\n", t.Name, strings.Join(dims, " "), t.Type, t.Bytes)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d tensors, %d parameters, %d bytes, %.3f bits per weight\n",
		len(info.Tensors), info.Parameters, info.TotalBytes, info.BitsPerWeight)
}
