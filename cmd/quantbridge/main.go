// Command quantbridge converts, quantizes and scores LLM checkpoints across
// Hugging Face safetensors, MLX and GGUF. This package only wires the CLI;
// the work lives in the library packages.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

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
	usage := func(_ *cli.Context, err error, _ bool) error { return &exitError{2, err} }
	app.OnUsageError = usage
	for _, c := range commands {
		if c.OnUsageError == nil {
			c.OnUsageError = usage
		}
	}
	if err := app.Run(interspersed(os.Args, commands)); err != nil {
		fmt.Fprintln(os.Stderr, "quantbridge:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode maps an error from a command to the process status: the code of
// an *exitError, 2 for urfave/cli's own usage errors (a required flag not
// set), else 1 (the operation failed).
func exitCode(err error) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case strings.HasPrefix(err.Error(), "Required flag"):
		return 2
	}
	return 1
}
