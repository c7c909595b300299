package tokenizer

import (
	"fmt"
	"io"
	"os"
)

// ReadTextFile reads a text file as llama.cpp's tools read "-f FILE".
// With dropNewline, one final '\n' is dropped, as common's -f handler does
// (common/arg.cpp; llama-perplexity reads its text that way); without it
// the bytes are kept verbatim (llama-tokenize -f, Hugging Face tokenizers).
// With escape, escape sequences are then processed (ProcessEscapes), as
// the tools do with --escape; llama-perplexity does not by default (it sets
// params.escape = false), llama-tokenize does.
func ReadTextFile(path string, escape, dropNewline bool) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading text: %w", err)
	}
	s := string(data)
	if dropNewline && len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	if escape {
		s = ProcessEscapes(s)
	}
	return s, nil
}

// NewTextReader is ReadTextFile on a stream: it returns r's bytes with one
// final '\n' dropped (dropNewline) and then escape sequences processed
// (escape), holding back only the few bytes that cannot be decided before
// more of r is read.
func NewTextReader(r io.Reader, escape, dropNewline bool) io.Reader {
	if dropNewline {
		r = &newlineDropper{r: r}
	}
	if escape {
		r = &escapeReader{r: r}
	}
	return r
}

// newlineDropper holds back a final '\n' until it knows whether more
// follows.
type newlineDropper struct {
	r       io.Reader
	buf     []byte
	pending []byte
	held    bool // a '\n' read but not yet returned
	err     error
}

func (d *newlineDropper) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.err != nil {
			return 0, d.err // a held newline is dropped
		}
		if d.buf == nil {
			d.buf = make([]byte, 1+32<<10)
		}
		n, err := d.r.Read(d.buf[1:])
		d.err = err
		if n == 0 {
			continue
		}
		start, end := 1, 1+n
		if d.held {
			d.buf[0] = '\n'
			start = 0
		}
		d.held = d.buf[end-1] == '\n'
		if d.held {
			end--
		}
		d.pending = d.buf[start:end]
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// escapeReader applies ProcessEscapes to a stream.
type escapeReader struct {
	r       io.Reader
	in, out []byte
	eof     bool
	err     error
	chunk   []byte
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.eof && len(e.in) == 0 {
			if e.err != nil {
				return 0, e.err
			}
			return 0, io.EOF
		}
		if !e.eof {
			if e.chunk == nil {
				e.chunk = make([]byte, 32<<10)
			}
			n, err := e.r.Read(e.chunk)
			e.in = append(e.in, e.chunk[:n]...)
			if err != nil {
				e.eof = true
				if err != io.EOF {
					e.err = err
				}
			}
		}
		var k int
		e.out, k = processEscapes(e.out[:0], e.in, e.eof)
		e.in = append(e.in[:0], e.in[k:]...)
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// ProcessEscapes rewrites \n \r \t \' \" \\ and \xHH as llama.cpp's
// string_process_escapes does (common/common.cpp); any other backslash
// sequence is kept as it is. Its \x takes exactly the next two bytes when
// strtol(…, 16) consumes both (so leading whitespace or a sign count).
func ProcessEscapes(s string) string {
	out, _ := processEscapes(make([]byte, 0, len(s)), []byte(s), true)
	return string(out)
}

// processEscapes appends the processed form of in to out. Unless atEOF, it
// stops before an escape that the bytes after in could still change and
// returns how many bytes of in it consumed.
func processEscapes(out, in []byte, atEOF bool) ([]byte, int) {
	for i := 0; i < len(in); i++ {
		if in[i] != '\\' {
			out = append(out, in[i])
			continue
		}
		if !atEOF && (i+1 >= len(in) || in[i+1] == 'x' && i+3 >= len(in)) {
			return out, i
		}
		if i+1 >= len(in) {
			out = append(out, in[i])
			continue
		}
		i++
		switch c := in[i]; c {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '\'', '"', '\\':
			out = append(out, c)
		case 'x':
			if i+2 < len(in) {
				if v, ok := strtol2Hex(in[i+1], in[i+2]); ok {
					out = append(out, byte(v))
					i += 2
					break
				}
			}
			out = append(out, '\\', c)
		default:
			out = append(out, '\\', c)
		}
	}
	return out, len(in)
}

// strtol2Hex mimics strtol(x, &end, 16) on the two-byte string ab and
// reports whether end == x+2 (both bytes consumed).
func strtol2Hex(a, b byte) (int, bool) {
	hex := func(c byte) (int, bool) {
		switch {
		case '0' <= c && c <= '9':
			return int(c - '0'), true
		case 'a' <= c && c <= 'f':
			return int(c-'a') + 10, true
		case 'A' <= c && c <= 'F':
			return int(c-'A') + 10, true
		}
		return 0, false
	}
	isSpace := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
	if x, ok := hex(a); ok {
		if y, ok := hex(b); ok {
			return x*16 + y, true
		}
		return 0, false
	}
	if y, ok := hex(b); ok {
		switch {
		case isSpace(a), a == '+':
			return y, true
		case a == '-':
			return -y, true
		}
	}
	return 0, false
}
