package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/perplexity"
)

func init() {
	register(&cli.Command{
		Name:      "tokenize",
		Usage:     "print the token ids of a text file, as llama-tokenize --ids does",
		ArgsUsage: "MODEL TEXTFILE",
		Description: "MODEL is a GGUF file or an HF/MLX checkpoint directory; TEXTFILE is read as llama-tokenize -f reads it: verbatim, with escape sequences processed unless --no-escape (\"-\" reads stdin).\n" +
			"Like llama-tokenize, BOS is added when the model asks for it and special-token text (e.g. <s>) is parsed.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array of ids"},
			&cli.BoolFlag{Name: "no-bos", Usage: "do not add BOS/EOS even if the model asks for them"},
			&cli.BoolFlag{Name: "no-parse-special", Usage: "tokenize special-token text as plain text (llama-perplexity's behaviour)"},
			&cli.BoolFlag{Name: "no-escape", Usage: "do not process escape sequences (\\n, \\t, \\xHH, ...) in the text, as llama-tokenize --no-escape"},
		},
		Action: runTokenize,
	})
}

func runTokenize(c *cli.Context) error {
	if c.NArg() != 2 {
		return &exitError{2, errors.New("tokenize: want MODEL and TEXTFILE")}
	}
	modelPath, textPath := c.Args().Get(0), c.Args().Get(1)
	tok, err := openVocab(modelPath)
	if err != nil {
		return err
	}
	// As llama-tokenize reads -f: the bytes verbatim, escapes processed
	// unless --no-escape.
	var text string
	if textPath == "-" {
		var b []byte
		b, err = io.ReadAll(os.Stdin)
		text = string(b)
		if !c.Bool("no-escape") {
			text = perplexity.ProcessEscapes(text)
		}
	} else {
		text, err = perplexity.ReadTextFile(textPath, !c.Bool("no-escape"), false)
	}
	if err != nil {
		return err
	}
	ids := tok.Tokenize(text, !c.Bool("no-bos"), !c.Bool("no-parse-special"))

	w := bufio.NewWriter(c.App.Writer)
	if c.Bool("json") {
		if ids == nil {
			ids = []int{}
		}
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
	} else {
		w.WriteByte('[')
		for i, id := range ids {
			if i > 0 {
				w.WriteString(", ")
			}
			w.WriteString(strconv.Itoa(id))
		}
		w.WriteString("]\n")
	}
	return w.Flush()
}

// openVocab reads the tokenizer of any model formats.Open reads (GGUF
// tokenizers get llama.cpp's model-name rules too), or of a directory that
// holds only HF tokenizer files.
func openVocab(path string) (*perplexity.Vocab, error) {
	m, err := formats.Open(path)
	if err != nil {
		st, serr := os.Stat(path)
		if serr != nil || !st.IsDir() {
			return nil, err
		}
		_, p, _, cerr := hf.ReadConfigFile(filepath.Join(path, hf.ConfigName))
		if cerr != nil && !errors.Is(cerr, os.ErrNotExist) {
			return nil, cerr
		}
		t, terr := hf.ReadTokenizer(path, p)
		if terr != nil {
			return nil, terr
		}
		if t == nil {
			return nil, fmt.Errorf("%s: the model has no tokenizer", path)
		}
		return perplexity.NewVocab(t)
	}
	defer m.Close()
	if m.Tokenizer == nil {
		return nil, fmt.Errorf("%s: the model has no tokenizer", path)
	}
	return perplexity.NewVocabForModel(m)
}
