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
	"runtime/debug"
	"runtime/pprof"
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
	stop := startProfile(os.Getenv("QUANTBRIDGE_CPUPROFILE"), os.Stderr)
	code := run(os.Args, os.Stdout, os.Stderr)
	stop()
	writeHeapProfile(os.Getenv("QUANTBRIDGE_MEMPROFILE"), os.Stderr)
	os.Exit(code)
}

// writeHeapProfile writes the heap profile (allocations since the start:
// go tool pprof -sample_index=alloc_space) to path when path is set.
func writeHeapProfile(path string, stderr io.Writer) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "quantbridge: QUANTBRIDGE_MEMPROFILE:", err)
	}
}

// startProfile writes a CPU profile of the whole run to path (for
// `go tool pprof`) when path is set: QUANTBRIDGE_CPUPROFILE=cpu.out
// quantbridge ppl ... is how docs/benchmarks.md profiles a command. It
// returns the function that stops the profile.
func startProfile(path string, stderr io.Writer) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(stderr, "quantbridge: QUANTBRIDGE_CPUPROFILE:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(stderr, "quantbridge: QUANTBRIDGE_CPUPROFILE:", err)
		}
	}
}

// run runs the command line args (args[0] the program name) and returns
// the exit status; errors are printed to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if err := app.Run(interspersed(args, app.Commands)); err != nil {
		fmt.Fprintln(stderr, "quantbridge:", err)
		return exitCode(err)
	}
	return 0
}

// newApp is the quantbridge command line: the registered commands, help
// and version; usage errors exit 2 and an unknown command is one.
func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := append([]*cli.Command(nil), commands...)
	cmds = append(cmds, helpCommand, versionCommand)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	app := &cli.App{
		Name:                 "quantbridge",
		Usage:                "convert, quantize and score LLM checkpoints (HF safetensors, MLX, GGUF)",
		Version:              version(),
		Commands:             cmds,
		EnableBashCompletion: true,
		HideHelpCommand:      true, // helpCommand replaces urfave/cli's (exit 3 on an unknown topic)
		// urfave/cli adds --help only when it adds its own help command.
		Flags:     []cli.Flag{cli.HelpFlag},
		Writer:    stdout,
		ErrWriter: stderr,
		// Exit statuses are run's to decide, not the library's os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return &exitError{2, fmt.Errorf("unknown command %q (quantbridge help lists the commands)", c.Args().First())}
			}
			return cli.ShowAppHelp(c)
		},
	}
	usage := func(_ *cli.Context, err error, _ bool) error { return &exitError{2, err} }
	app.OnUsageError = usage
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = usage
		}
	}
	return app
}

var helpCommand = &cli.Command{
	Name:      "help",
	Usage:     "show the commands, or one command's flags",
	ArgsUsage: "[COMMAND]",
	// No "help" subcommand of its own: ShowCommandHelp would look there.
	HideHelpCommand: true,
	Action: func(c *cli.Context) error {
		switch c.NArg() {
		case 0:
			return cli.ShowAppHelp(c)
		case 1:
			name := c.Args().First()
			if c.App.Command(name) == nil {
				return &exitError{2, fmt.Errorf("help: unknown command %q (quantbridge help lists the commands)", name)}
			}
			return cli.ShowCommandHelp(c, name)
		}
		return &exitError{2, errors.New("help: want at most one COMMAND")}
	},
}

var versionCommand = &cli.Command{
	Name:  "version",
	Usage: "print the version (as --version does)",
	Action: func(c *cli.Context) error {
		if c.NArg() > 0 {
			return &exitError{2, errors.New("version: takes no arguments")}
		}
		cli.VersionPrinter(c)
		return nil
	},
}

// version is the module version the binary was built from, as the Go
// toolchain recorded it (v1.2.3 from go install ...@v1.2.3; a pseudo-version
// for a build in a git checkout), or "devel" when none was recorded.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		return "devel"
	}
	return bi.Main.Version
}

// exitCode maps an error from a command to the process status: the code of
// an *exitError (or of a cli.ExitCoder), 2 for urfave/cli's own usage
// errors (a required flag not set), else 1 (the operation failed).
func exitCode(err error) int {
	var ee *exitError
	var ec cli.ExitCoder
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ec):
		return ec.ExitCode()
	case strings.HasPrefix(err.Error(), "Required flag"):
		return 2
	}
	return 1
}
