package hf

import (
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

func TestParseSentencePieceKJV(t *testing.T) {
	b, err := os.ReadFile(testref.Local(t, "kjv-llama", "tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseSentencePiece(b)
	if err != nil {
		t.Fatal(err)
	}
	// The testdata README: SentencePiece BPE, 4096 pieces, byte fallback,
	// <unk>=0 <s>=1 </s>=2, add_dummy_prefix, identity normalization,
	// split digits.
	checks := []struct {
		name      string
		got, want any
	}{
		{"pieces", len(m.Pieces), 4096},
		{"model type", m.ModelType, SPBPE},
		{"vocab size", m.VocabSize, int32(4096)},
		{"byte fallback", m.ByteFallback, true},
		{"split digits", m.SplitDigits, true},
		{"ids", [4]int32{m.UnkID, m.BOSID, m.EOSID, m.PadID}, [4]int32{0, 1, 2, -1}},
		{"normalizer", m.NormalizerName, "identity"},
		{"add dummy prefix", m.AddDummyPrefix, true},
		{"piece 0", m.Pieces[0], SPPiece{"<unk>", 0, SPUnknown}},
		{"piece 1", m.Pieces[1], SPPiece{"<s>", 0, SPControl}},
		{"piece 3", m.Pieces[3], SPPiece{"<0x00>", 0, SPByte}},
		{"piece 261", m.Pieces[261], SPPiece{"▁the", -2, SPNormal}},
		{"piece 1000", m.Pieces[1000], SPPiece{"▁Jacob", -741, SPNormal}},
		{"piece 4095", m.Pieces[4095], SPPiece{"Q", -3836, SPNormal}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Marshal writes every field explicitly; parsing it gives the same model.
	m2, err := ParseSentencePiece(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Error("Marshal/Parse round trip differs")
	}
}

func TestParseSentencePieceBadInput(t *testing.T) {
	good := NewSPModel()
	good.Pieces = []SPPiece{{"<unk>", 0, SPUnknown}, {"a", -1, SPNormal}}
	enc := good.Marshal()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no pieces"},
		{"garbage", []byte("this is not a protobuf at all"), "tokenizer.model: byte offset"},
		{"truncated", enc[:len(enc)-3], "runs past the end"},
		{"truncated varint", []byte{0x0a, 0x80}, "truncated varint"},
		// field 1, length 2^62: must fail on the length check, not allocate
		{"hostile length", []byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40}, "length 4611686018427387904 runs past the end"},
		{"varint overflow", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "varint overflows"},
		{"group wire type", []byte{0x0b}, "unsupported wire type 3"},
		{"field zero", []byte{0x02, 0x00}, "invalid field number 0"},
		{"piece without text", []byte{0x0a, 0x05, 0x15, 0, 0, 0, 0}, "piece 0 has no text"},
		{"bad piece type", []byte{0x0a, 0x05, 0x0a, 0x01, 'a', 0x18, 0x09}, "unknown piece type 9"},
		{"invalid utf8", []byte{0x0a, 0x03, 0x0a, 0x01, 0xff}, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSentencePiece(tt.data)
			var se *SPError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *SPError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	// Every prefix of a valid model parses or fails without panicking.
	for i := range enc {
		_, _ = ParseSentencePiece(enc[:i])
	}
}

func FuzzParseSentencePiece(f *testing.F) {
	good := NewSPModel()
	good.Pieces = []SPPiece{{"<unk>", 0, SPUnknown}, {"▁a", -1, SPNormal}, {"<0x41>", 0, SPByte}}
	f.Add(good.Marshal())
	f.Add([]byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseSentencePiece(b)
		if err != nil {
			return
		}
		m2, err := ParseSentencePiece(m.Marshal())
		if err != nil {
			t.Fatalf("re-encoded model does not parse: %v", err)
		}
		// Scores are compared by their bits: a NaN score (testdata/fuzz
		// 18824aaf3201b409) survives the round trip but is not equal to
		// itself.
		if len(m2.Pieces) != len(m.Pieces) {
			t.Fatalf("re-encode has %d pieces, want %d", len(m2.Pieces), len(m.Pieces))
		}
		for i, p := range m.Pieces {
			q := m2.Pieces[i]
			if q.Piece != p.Piece || q.Type != p.Type || math.Float32bits(q.Score) != math.Float32bits(p.Score) {
				t.Fatalf("piece %d: %+v became %+v", i, p, q)
			}
		}
		x, y := *m, *m2
		x.Pieces, y.Pieces = nil, nil
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("re-encode differs:\n got %+v\nwant %+v", y, x)
		}
	})
}
