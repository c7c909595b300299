package hf

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// SentencePiece piece types (sentencepiece_model.proto,
// ModelProto.SentencePiece.Type). They coincide with GGUF's token types.
const (
	SPNormal      int32 = 1
	SPUnknown     int32 = 2
	SPControl     int32 = 3
	SPUserDefined int32 = 4
	SPUnused      int32 = 5
	SPByte        int32 = 6
)

// SentencePiece model types (TrainerSpec.ModelType).
const (
	SPUnigram int32 = 1
	SPBPE     int32 = 2
	SPWord    int32 = 3
	SPChar    int32 = 4
)

// SPPiece is one vocabulary entry of a SentencePiece model.
type SPPiece struct {
	Piece string
	Score float32
	Type  int32 // SPNormal ... SPByte
}

// SPModel is the part of a SentencePiece ModelProto that converters use.
// Defaults are the proto2 defaults of sentencepiece_model.proto, applied
// when a field is absent.
type SPModel struct {
	Pieces []SPPiece

	// TrainerSpec (field 2).
	ModelType               int32 // 3: SPUnigram (default), SPBPE, ...
	VocabSize               int32 // 4 (default 8000)
	TreatWhitespaceAsSuffix bool  // 24
	SplitDigits             bool  // 25
	ByteFallback            bool  // 35
	UnkID, BOSID, EOSID     int32 // 40, 41, 42 (defaults 0, 1, 2)
	PadID                   int32 // 43 (default -1)
	UnkPiece, BOSPiece      string
	EOSPiece, PadPiece      string // 45..48 (defaults <unk> <s> </s> <pad>)

	// NormalizerSpec (field 3).
	NormalizerName         string // 1
	PrecompiledCharsmap    []byte // 2
	AddDummyPrefix         bool   // 3 (default true)
	RemoveExtraWhitespaces bool   // 4 (default true)
	EscapeWhitespaces      bool   // 5 (default true)
}

// NewSPModel returns a model with the proto2 defaults set.
func NewSPModel() *SPModel {
	return &SPModel{
		ModelType: SPUnigram, VocabSize: 8000,
		UnkID: 0, BOSID: 1, EOSID: 2, PadID: -1,
		UnkPiece: "<unk>", BOSPiece: "<s>", EOSPiece: "</s>", PadPiece: "<pad>",
		AddDummyPrefix: true, RemoveExtraWhitespaces: true, EscapeWhitespaces: true,
	}
}

// SPError reports a malformed SentencePiece model.
type SPError struct {
	Path   string // file name, "tokenizer.model" when parsed from bytes
	Offset int64  // byte offset in the file
	Msg    string
}

func (e *SPError) Error() string {
	return fmt.Sprintf("%s: byte offset %d: %s", e.Path, e.Offset, e.Msg)
}

// ParseSentencePiece decodes a serialized SentencePiece ModelProto
// (tokenizer.model). The protobuf wire format is decoded directly: every
// length is checked against the bytes that remain, so truncated or hostile
// input gives an *SPError and never a large allocation. Unknown fields are
// skipped; pieces must have a non-empty UTF-8 text and a known type.
func ParseSentencePiece(data []byte) (*SPModel, error) {
	return parseSentencePiece("tokenizer.model", data)
}

func parseSentencePiece(path string, data []byte) (*SPModel, error) {
	m := NewSPModel()
	d := &pbuf{path: path, b: data}
	for !d.done() {
		field, wt, err := d.key()
		if err != nil {
			return nil, err
		}
		switch {
		case field == 1 && wt == 2:
			sub, err := d.sub()
			if err != nil {
				return nil, err
			}
			pc, err := parsePiece(sub, len(m.Pieces))
			if err != nil {
				return nil, err
			}
			m.Pieces = append(m.Pieces, pc)
		case field == 2 && wt == 2:
			sub, err := d.sub()
			if err != nil {
				return nil, err
			}
			if err := m.parseTrainer(sub); err != nil {
				return nil, err
			}
		case field == 3 && wt == 2:
			sub, err := d.sub()
			if err != nil {
				return nil, err
			}
			if err := m.parseNormalizer(sub); err != nil {
				return nil, err
			}
		default:
			if err := d.skip(wt); err != nil {
				return nil, err
			}
		}
	}
	if len(m.Pieces) == 0 {
		return nil, &SPError{Path: path, Offset: 0, Msg: "no pieces: not a SentencePiece model"}
	}
	return m, nil
}

func parsePiece(d *pbuf, index int) (SPPiece, error) {
	pc := SPPiece{Type: SPNormal}
	hasText := false
	for !d.done() {
		off := d.off()
		field, wt, err := d.key()
		if err != nil {
			return pc, err
		}
		switch {
		case field == 1 && wt == 2:
			b, err := d.bytes()
			if err != nil {
				return pc, err
			}
			if !utf8.Valid(b) {
				return pc, d.errAt(off, "piece %d: text is not valid UTF-8", index)
			}
			pc.Piece, hasText = string(b), true
		case field == 2 && wt == 5:
			u, err := d.fixed32()
			if err != nil {
				return pc, err
			}
			pc.Score = math.Float32frombits(u)
		case field == 3 && wt == 0:
			v, err := d.varint()
			if err != nil {
				return pc, err
			}
			if v < uint64(SPNormal) || v > uint64(SPByte) {
				return pc, d.errAt(off, "piece %d: unknown piece type %d", index, v)
			}
			pc.Type = int32(v)
		default:
			if err := d.skip(wt); err != nil {
				return pc, err
			}
		}
	}
	if !hasText || pc.Piece == "" {
		return pc, d.errAt(d.base, "piece %d has no text", index)
	}
	return pc, nil
}

func (m *SPModel) parseTrainer(d *pbuf) error {
	for !d.done() {
		off := d.off()
		field, wt, err := d.key()
		if err != nil {
			return err
		}
		var dst *int32
		var bdst *bool
		var sdst *string
		switch field {
		case 3:
			dst = &m.ModelType
		case 4:
			dst = &m.VocabSize
		case 40:
			dst = &m.UnkID
		case 41:
			dst = &m.BOSID
		case 42:
			dst = &m.EOSID
		case 43:
			dst = &m.PadID
		case 24:
			bdst = &m.TreatWhitespaceAsSuffix
		case 25:
			bdst = &m.SplitDigits
		case 35:
			bdst = &m.ByteFallback
		case 45:
			sdst = &m.UnkPiece
		case 46:
			sdst = &m.BOSPiece
		case 47:
			sdst = &m.EOSPiece
		case 48:
			sdst = &m.PadPiece
		}
		switch {
		case (dst != nil || bdst != nil) && wt == 0:
			v, err := d.varint()
			if err != nil {
				return err
			}
			if dst != nil {
				// int32 fields are sign-extended to 64 bits on the wire.
				iv := int64(v)
				if iv < math.MinInt32 || iv > math.MaxInt32 {
					return d.errAt(off, "trainer_spec field %d: %d does not fit int32", field, iv)
				}
				*dst = int32(iv)
			} else {
				*bdst = v != 0
			}
		case sdst != nil && wt == 2:
			b, err := d.bytes()
			if err != nil {
				return err
			}
			*sdst = string(b)
		default:
			if err := d.skip(wt); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *SPModel) parseNormalizer(d *pbuf) error {
	for !d.done() {
		field, wt, err := d.key()
		if err != nil {
			return err
		}
		switch {
		case field == 1 && wt == 2:
			b, err := d.bytes()
			if err != nil {
				return err
			}
			m.NormalizerName = string(b)
		case field == 2 && wt == 2:
			b, err := d.bytes()
			if err != nil {
				return err
			}
			m.PrecompiledCharsmap = append([]byte(nil), b...)
		case field >= 3 && field <= 5 && wt == 0:
			v, err := d.varint()
			if err != nil {
				return err
			}
			*[]*bool{&m.AddDummyPrefix, &m.RemoveExtraWhitespaces, &m.EscapeWhitespaces}[field-3] = v != 0
		default:
			if err := d.skip(wt); err != nil {
				return err
			}
		}
	}
	return nil
}

// Marshal encodes the model as a ModelProto. Every field of SPModel is
// written explicitly, so ParseSentencePiece(m.Marshal()) == m.
func (m *SPModel) Marshal() []byte {
	var out []byte
	for _, pc := range m.Pieces {
		var b []byte
		b = pbString(b, 1, pc.Piece)
		b = pbFixed32(b, 2, math.Float32bits(pc.Score))
		b = pbVarint(b, 3, uint64(pc.Type))
		out = pbBytes(out, 1, b)
	}
	var t []byte
	t = pbVarint(t, 3, uint64(m.ModelType))
	t = pbVarint(t, 4, uint64(int64(m.VocabSize)))
	t = pbBool(t, 24, m.TreatWhitespaceAsSuffix)
	t = pbBool(t, 25, m.SplitDigits)
	t = pbBool(t, 35, m.ByteFallback)
	t = pbVarint(t, 40, uint64(int64(m.UnkID)))
	t = pbVarint(t, 41, uint64(int64(m.BOSID)))
	t = pbVarint(t, 42, uint64(int64(m.EOSID)))
	t = pbVarint(t, 43, uint64(int64(m.PadID)))
	t = pbString(t, 45, m.UnkPiece)
	t = pbString(t, 46, m.BOSPiece)
	t = pbString(t, 47, m.EOSPiece)
	t = pbString(t, 48, m.PadPiece)
	out = pbBytes(out, 2, t)
	var n []byte
	n = pbString(n, 1, m.NormalizerName)
	if m.PrecompiledCharsmap != nil {
		n = pbBytes(n, 2, m.PrecompiledCharsmap)
	}
	n = pbBool(n, 3, m.AddDummyPrefix)
	n = pbBool(n, 4, m.RemoveExtraWhitespaces)
	n = pbBool(n, 5, m.EscapeWhitespaces)
	out = pbBytes(out, 3, n)
	return out
}

// pbuf is a bounds-checked protobuf wire-format cursor.
type pbuf struct {
	path string
	b    []byte
	pos  int
	base int64 // file offset of b[0]
}

func (d *pbuf) done() bool { return d.pos >= len(d.b) }
func (d *pbuf) off() int64 { return d.base + int64(d.pos) }
func (d *pbuf) left() int  { return len(d.b) - d.pos }
func (d *pbuf) errAt(off int64, format string, args ...any) error {
	return &SPError{Path: d.path, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (d *pbuf) varint() (uint64, error) {
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		if n == 0 {
			return 0, d.errAt(d.off(), "truncated varint")
		}
		return 0, d.errAt(d.off(), "varint overflows 64 bits")
	}
	d.pos += n
	return v, nil
}

func (d *pbuf) key() (field uint64, wt int, err error) {
	off := d.off()
	k, err := d.varint()
	if err != nil {
		return 0, 0, err
	}
	field, wt = k>>3, int(k&7)
	if field == 0 || field > 1<<29-1 {
		return 0, 0, d.errAt(off, "invalid field number %d", field)
	}
	return field, wt, nil
}

func (d *pbuf) bytes() ([]byte, error) {
	off := d.off()
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(d.left()) {
		return nil, d.errAt(off, "length %d runs past the end (%d bytes left)", n, d.left())
	}
	b := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

// sub reads a length-delimited field as a nested message cursor.
func (d *pbuf) sub() (*pbuf, error) {
	b, err := d.bytes()
	if err != nil {
		return nil, err
	}
	return &pbuf{path: d.path, b: b, base: d.off() - int64(len(b))}, nil
}

func (d *pbuf) fixed32() (uint32, error) {
	if d.left() < 4 {
		return 0, d.errAt(d.off(), "truncated fixed32")
	}
	v := binary.LittleEndian.Uint32(d.b[d.pos:])
	d.pos += 4
	return v, nil
}

func (d *pbuf) skip(wt int) error {
	switch wt {
	case 0:
		_, err := d.varint()
		return err
	case 1:
		if d.left() < 8 {
			return d.errAt(d.off(), "truncated fixed64")
		}
		d.pos += 8
		return nil
	case 2:
		_, err := d.bytes()
		return err
	case 5:
		_, err := d.fixed32()
		return err
	}
	return d.errAt(d.off(), "unsupported wire type %d", wt)
}

func pbTag(b []byte, field, wt int) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wt))
}

func pbVarint(b []byte, field int, v uint64) []byte {
	return binary.AppendUvarint(pbTag(b, field, 0), v)
}

func pbBool(b []byte, field int, v bool) []byte {
	if v {
		return pbVarint(b, field, 1)
	}
	return pbVarint(b, field, 0)
}

func pbFixed32(b []byte, field int, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(pbTag(b, field, 5), v)
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(pbTag(b, field, 2), uint64(len(v)))
	return append(b, v...)
}

func pbString(b []byte, field int, s string) []byte { return pbBytes(b, field, []byte(s)) }
