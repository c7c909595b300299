package batch

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
)

// svgTexts returns the text elements of an SVG.
func svgTexts(t *testing.T, svg []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var texts []string
	in := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch e := tok.(type) {
		case xml.StartElement:
			in = e.Name.Local == "text"
		case xml.CharData:
			if in {
				texts = append(texts, strings.TrimSpace(string(e)))
			}
		case xml.EndElement:
			in = false
		}
	}
	return texts
}

// kjvReport is the shape of the kjv-llama report (ctx 128, whole text):
// perplexities within two tenths of each other, on which gonum's default
// ticks labelled 33.25 and 33.45 both "33".
func kjvReport() *Report {
	base := 33.2872
	row := func(format, typ string, mib, ppl, kld, delta float64) Row {
		return Row{Model: "kjv", Variant: "kjv " + typ, Format: format, Type: typ, Bytes: int64(mib * (1 << 20)),
			BitsPerWeight: 8 * mib / 6.8, PPL: ptr(ppl), PPLStderr: ptr(0.5), BasePPL: ptr(base),
			PPLDeltaPct: ptr(delta), KLD: ptr(kld), Top1: ptr(0.98), Status: StatusDone}
	}
	return &Report{Items: []Row{
		row("gguf", "F16", 13.1, base, -1e-9, -1e-7),
		row("gguf", "Q8_0", 7.01, 33.3236, 0.0002, 0.11),
		row("gguf", "Q4_K_M", 4.13, 33.4418, 0.0099, 0.46),
		row("mlx", "INT4", 3.75, 33.39, 0.024, 0.31),
	}}
}

func TestReportSVGTickLabels(t *testing.T) {
	svg, err := kjvReport().SVG()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var numbers []string
	for _, s := range svgTexts(t, svg) {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			continue
		}
		numbers = append(numbers, s)
		if seen[s] {
			t.Errorf("tick label %q appears twice: %q", s, numbers)
		}
		seen[s] = true
	}
	// x: 5, 10, 15 MiB; y: the ticks DefaultTicks places, each labelled
	// with its value.
	if want := []string{"5", "10", "15", "33.25", "33.45", "33.65"}; strings.Join(numbers, " ") != strings.Join(want, " ") {
		t.Errorf("tick labels %q, want %q", numbers, want)
	}
}

func TestReportNumbers(t *testing.T) {
	r := kjvReport()
	md := string(r.Markdown())
	if strings.Contains(md, "-0.0") {
		t.Errorf("report.md has a negative zero:\n%s", md)
	}
	// F16: KLD -1e-9 and Δppl -1e-7 % round to zero, printed unsigned.
	if want := "| kjv F16 | gguf | 13.10 MiB | 15.41 | 33.2872 ± 0.5000 | 0.00% | 0.00000 | 98.00% | done |"; !strings.Contains(md, want) {
		t.Errorf("report.md lacks %q:\n%s", want, md)
	}
	if want := "| +0.11% | 0.00020 |"; !strings.Contains(md, want) {
		t.Errorf("report.md lacks %q:\n%s", want, md)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.CSV())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"ppl", "base_ppl", "ppl_delta_pct", "kld"} {
		if _, ok := col[h]; !ok {
			t.Fatalf("report.csv has no %s column: %v", h, recs[0])
		}
	}
	for i, want := range []struct{ ppl, base, delta, kld string }{
		{"33.2872", "33.2872", "0.000", "0.000000"},
		{"33.3236", "33.2872", "0.110", "0.000200"},
	} {
		rec := recs[i+1]
		got := struct{ ppl, base, delta, kld string }{rec[col["ppl"]], rec[col["base_ppl"]], rec[col["ppl_delta_pct"]], rec[col["kld"]]}
		if got != want {
			t.Errorf("report.csv row %d: %+v, want %+v", i+1, got, want)
		}
	}
}
