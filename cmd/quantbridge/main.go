// Command quantbridge converts, quantizes and scores LLM checkpoints across
// Hugging Face safetensors, MLX and GGUF. This package only wires the CLI;
// the work lives in the library packages.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/urfave/cli/v2"
)

// commands is filled by each command's file in init.
var commands []*cli.Command

func register(c *cli.Command) { commands = append(commands, c) }

// exitError carries an exit status (e.g. 1 for a failed perplexity gate).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// writeJSON prints v as the commands' --json output: two-space indented,
// one final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func main() {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	app := &cli.App{
		Name:                 "quantbridge",
		Usage:                "convert, quantize and score LLM checkpoints (HF safetensors, MLX, GGUF)",
		Commands:             commands,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
	}
	if err := app.Run(interspersed(os.Args, commands)); err != nil {
		fmt.Fprintln(os.Stderr, "quantbridge:", err)
		if ee, ok := err.(*exitError); ok {
			os.Exit(ee.code)
		}
		os.Exit(2)
	}
}
