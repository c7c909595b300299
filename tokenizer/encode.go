package tokenizer

import (
	"errors"
	"io"
	"strings"
)

// Segments.
//
// llama.cpp tokenizes a text in one piece: the special-token partition runs
// over the whole text, SentencePiece merges over a whole special-token-free
// fragment and the BPE pre-tokenizer splits a whole fragment. Done that way
// in memory, a 10 MB text needs about 100 bytes per input byte. Encode and
// EncodeReader instead cut the text into segments of about segmentSize
// bytes, at positions where whole-text tokenization provably gives the
// same ids as tokenizing the two sides separately (the SentencePiece
// dummy-prefix state carried over), so memory stays bounded while the ids
// are identical. A cut at byte position p must satisfy:
//
//   - Codepoints: no UTF-8 sequence starting in the 3 bytes before p claims
//     (by its lead byte) to extend past p, so the symbols of both
//     tokenizers (llama.cpp's unicode_len_utf8 / unicode_cpts_from_utf8)
//     end at p however the text before is walked.
//   - Special tokens: no text of a token the partition cuts out occurs in
//     a window around p (of the longest such text plus the tokenizer's own
//     window). The partition then never cuts across p, both sides of p are
//     one raw fragment, and LSTRIP/RSTRIP whitespace stripping cannot
//     reach p. The partition is applied per segment: with no occurrence
//     spanning p, cutting each special token in turn (longest first, left
//     to right) gives the same fragments on the whole text as on the two
//     sides.
//   - SentencePiece: no vocabulary text equals a substring text[a:b] (with
//     spaces escaped to U+2581) with a < p < b. Then no bigram across p is
//     ever queued, and since the queue orders bigrams by score and then by
//     position, the merges on each side happen in the same relative order
//     as alone: the symbols are the concatenation of both sides' symbols.
//     The dummy prefix belongs to the start of a fragment, never to p: the
//     segment after p continues the fragment (no prefix).
//   - BPE: the pre-tokenizer must split at p in the whole text and in the
//     left side alone. Cuts are taken only between an ASCII letter and a
//     space followed by an ASCII letter ("word| word"), and only for the
//     pre-tokenizers whose regexes all split there whatever follows
//     (segmentSafe; TestPreTokenizerSegments checks every llama.cpp
//     pre-tokenizer): every alternative that can match a letter continues
//     only with letters (or marks, or a contraction), so the match holding
//     the letter ends at p in both texts, looks no further than p, and the
//     next match starts at p; the regexes have no lookbehind and no
//     anchors. BPE merges never cross a pre-tokenizer piece.
//
// A text without such positions (a vocabulary whose pieces span every
// boundary, text without spaces for BPE, a pre-tokenizer that is not
// segmentSafe) is tokenized in one piece, as before.

// segmentSize is the length of text a segment aims at; cuts are searched
// from there on.
const segmentSize = 32 << 10

// maxCutChecks bounds the full checks of candidate positions per search;
// after that many failures the search skips ahead by a segment.
const maxCutChecks = 64

// cutWindow is how far around a cut the checks look (bytes).
func (v *Tokenizer) cutWindow() int {
	w := 2
	if v.kind == kindSPM {
		w = v.maxTokenLen + 1
	}
	return w + v.maxSpecialLen
}

// findCut returns a position p in text at which segments may be cut,
// searching from `from` on; text[p:] must keep at least cutWindow bytes
// unless atEOF (then the end of text bounds the windows). It returns -1
// when the search found none; next is where a later search should resume.
func (v *Tokenizer) findCut(text string, from int, atEOF bool, parseSpecial bool) (p, next int) {
	if !v.segmentable {
		return -1, len(text)
	}
	w := v.cutWindow()
	end := len(text) - w
	if atEOF {
		end = len(text) - 1
	}
	from = max(from, w+1)
	checks := 0
	for p := from; p < end; p++ {
		if !v.cutCandidate(text, p) {
			continue
		}
		if checks == maxCutChecks {
			return -1, p + segmentSize
		}
		checks++
		if v.cutOK(text, p, w, parseSpecial) {
			return p, p
		}
	}
	return -1, max(end, from)
}

// cutCandidate is the cheap test of a position.
func (v *Tokenizer) cutCandidate(text string, p int) bool {
	for s := max(0, p-3); s < p; s++ {
		if s+utf8Len(text[s]) > p {
			return false
		}
	}
	if v.kind == kindBPE {
		return isASCIILetter(text[p-1]) && text[p] == ' ' && p+1 < len(text) && isASCIILetter(text[p+1])
	}
	// SentencePiece: prefer word starts, but any position not inside a
	// run of spaces will do.
	return text[p-1] != ' '
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func (v *Tokenizer) cutOK(text string, p, w int, parseSpecial bool) bool {
	win := text[max(0, p-w):min(len(text), p+w)]
	for _, id := range v.special {
		if !parseSpecial && v.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		if strings.Contains(win, v.tokens[id]) {
			return false
		}
	}
	if v.kind == kindBPE {
		return true
	}
	// SentencePiece: no vocabulary text across p.
	lo, hi := max(0, p-v.maxTokenLen), min(len(text), p+v.maxTokenLen)
	raw := text[lo:hi]
	esc := strings.ReplaceAll(raw, " ", "\u2581")
	// pos[i] is the offset in esc of raw byte i.
	pos := make([]int, len(raw)+1)
	j := 0
	for i := 0; i < len(raw); i++ {
		pos[i] = j
		if raw[i] == ' ' {
			j += len("\u2581")
		} else {
			j++
		}
	}
	pos[len(raw)] = j
	c := p - lo
	for a := 0; a < c; a++ {
		for b := c + 1; b <= len(raw); b++ {
			if pos[b]-pos[a] > v.maxTokenLen {
				break
			}
			if _, ok := v.ids[esc[pos[a]:pos[b]]]; ok {
				return false
			}
		}
	}
	return true
}

// encoder tokenizes consecutive segments of one text.
type encoder struct {
	v       *Tokenizer
	opt     Options
	spm     spmSession
	bpe     bpeSession
	started bool // a segment was tokenized: the next one continues a raw fragment
}

// segment appends the ids of the next segment of the text to out.
func (e *encoder) segment(text string, out []int) []int {
	v := e.v
	if text == "" {
		return out
	}
	frags := v.partition(text, e.opt.ParseSpecial)
	switch v.kind {
	case kindSPM:
		prevSpecial := !e.started // prefix the text's first fragment with a space
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				prevSpecial = true
				continue
			}
			raw := text[f.off : f.off+f.n]
			if v.addSpacePrefix && prevSpecial {
				raw = " " + raw
			}
			out = e.spm.tokenize(v, strings.ReplaceAll(raw, " ", "\u2581"), out)
			prevSpecial = false
		}
	case kindBPE:
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				continue
			}
			raw := text[f.off : f.off+f.n]
			if v.pre.escapeSpaces {
				raw = strings.ReplaceAll(raw, " ", "\u2581")
			}
			out = e.bpe.tokenize(v, raw, out)
		}
	}
	e.started = true
	return out
}

func (e *encoder) begin(out []int) []int {
	if e.opt.AddSpecial && e.v.addBOS {
		out = append(out, e.v.bos)
	}
	return out
}

func (e *encoder) end(out []int) []int {
	if e.opt.AddSpecial && e.v.addEOS {
		out = append(out, e.v.eos)
	}
	return out
}

// Encode tokenizes text as llama_tokenize(text, opt.AddSpecial,
// opt.ParseSpecial) does. Long texts are tokenized in segments (see
// EncodeReader) with the same result.
func (v *Tokenizer) Encode(text string, opt Options) []int {
	return v.encode(text, opt, segmentSize)
}

// encode is Encode with segments of about size bytes (0: one segment).
func (v *Tokenizer) encode(text string, opt Options, size int) []int {
	e := &encoder{v: v, opt: opt}
	out := e.begin(nil)
	last := 0
	for _, p := range v.cuts(text, opt, size) {
		out = e.segment(text[last:p], out)
		last = p
	}
	out = e.segment(text[last:], out)
	return e.end(out)
}

// cuts returns the positions at which encode cuts text into segments of
// about size bytes (none when size is 0).
func (v *Tokenizer) cuts(text string, opt Options, size int) []int {
	var cuts []int
	last := 0
	for size > 0 && len(text)-last > 2*size {
		rest := text[last:]
		p, next := -1, size
		for p < 0 && next < len(rest) {
			p, next = v.findCut(rest, next, true, opt.ParseSpecial)
		}
		if p < 0 {
			break
		}
		last += p
		cuts = append(cuts, last)
	}
	return cuts
}

// ErrStop may be returned by EncodeReader's callback to end tokenization
// early without an error.
var ErrStop = errors.New("tokenizer: stop")

// EncodeReader tokenizes the text read from r, giving the same ids as
// Encode on the whole text: fn receives them in order, a segment at a time
// (the slice is reused after fn returns). A text of any length is read and
// tokenized in segments of about 32 KiB, cut where tokenization cannot
// cross (see the comment on segments in encode.go); text with no such
// position is held whole. When fn returns ErrStop, EncodeReader stops
// reading and returns nil: the ids given so far are final, exactly those of
// the whole text. Other errors from fn or r are returned.
func (v *Tokenizer) EncodeReader(r io.Reader, opt Options, fn func(ids []int) error) error {
	e := &encoder{v: v, opt: opt}
	ids := e.begin(nil)
	var buf []byte
	chunk := make([]byte, segmentSize)
	search, want := segmentSize, 2*segmentSize
	eof := false
	for {
		for !eof && len(buf) < want {
			n, err := r.Read(chunk)
			buf = append(buf, chunk[:n]...)
			if err == io.EOF {
				eof = true
			} else if err != nil {
				return err
			}
		}
		s := string(buf)
		p := len(s) // the final segment, unless a cut is found
		if !eof || len(s) > 2*segmentSize {
			var next int
			p, next = v.findCut(s, search, eof, opt.ParseSpecial)
			if p < 0 {
				search = next
				switch {
				case next < len(s)-v.cutWindow():
					continue // more candidates in buf
				case !eof:
					want = len(buf) + segmentSize
					continue
				}
				p = len(s)
			}
		}
		ids = e.segment(s[:p], ids)
		if p == len(s) {
			ids = e.end(ids)
		}
		if len(ids) > 0 {
			if err := fn(ids); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		if p == len(s) {
			return nil
		}
		ids = ids[:0]
		buf = append(buf[:0], buf[p:]...)
		search, want = segmentSize, 2*segmentSize
	}
}
