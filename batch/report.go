package batch

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Row is one line of the comparison report.
type Row struct {
	Model         string   `json:"model"`
	Variant       string   `json:"variant"`
	Format        string   `json:"format"`
	Type          string   `json:"type"`
	GroupSize     int      `json:"group_size,omitempty"`
	Path          string   `json:"path"`
	Bytes         int64    `json:"bytes"`
	BitsPerWeight float64  `json:"bits_per_weight"`
	PPL           *float64 `json:"ppl"`
	PPLStderr     *float64 `json:"ppl_stderr"`
	BasePPL       *float64 `json:"base_ppl"`
	PPLDeltaPct   *float64 `json:"ppl_delta_pct"`
	KLD           *float64 `json:"kld"`
	Top1          *float64 `json:"top1_agreement"`
	Seconds       float64  `json:"seconds"`
	Status        string   `json:"status"`
	Error         string   `json:"error,omitempty"`
}

// Report is report.json.
type Report struct {
	Items []Row `json:"items"`
}

// Collect builds the report for every item of the manifest from the records
// on disk (so a report covers the work of all shards), with this run's
// outcomes deciding done/skipped/failed where known.
func Collect(m *Manifest, outcomes []Outcome) *Report {
	byIndex := map[int]Outcome{}
	for _, o := range outcomes {
		byIndex[o.Item.Index] = o
	}
	key := evalKey(m)
	rep := &Report{}
	for _, it := range m.Items() {
		row := Row{
			Model: it.Model.Name, Variant: it.Model.Name + " " + variantName(it.Target),
			Format: it.Target.Format, Type: it.Target.Type, GroupSize: it.Target.GroupSize,
			Path: it.Output, Status: StatusPending,
		}
		if o, ok := byIndex[it.Index]; ok {
			row.Status = o.Status
			if o.Err != nil {
				row.Error = o.Err.Error()
			}
		}
		if rec := readRecord(it.Output); rec != nil && rec.Item == it.ID() {
			if row.Status == StatusPending {
				row.Status = StatusDone
			}
			row.Bytes, row.BitsPerWeight, row.Seconds = rec.Bytes, rec.BitsPerWeight, rec.Seconds
			if rec.Eval != nil && (key == "" || rec.EvalKey == key) {
				ev := *rec.Eval
				row.PPL, row.PPLStderr = ptr(ev.PPL), ptr(ev.PPLStderr)
				if ev.HasKL {
					row.KLD, row.Top1 = ptr(ev.KLD), ptr(ev.Top1)
				}
				if b := readBase(m, it.Model.Name); b != nil && b.EvalKey == rec.EvalKey && b.Eval.PPL > 0 {
					row.BasePPL = ptr(b.Eval.PPL)
					row.PPLDeltaPct = ptr(100 * (ev.PPL - b.Eval.PPL) / b.Eval.PPL)
				}
			}
		}
		rep.Items = append(rep.Items, row)
	}
	return rep
}

func ptr(v float64) *float64 { return &v }

func variantName(t Target) string {
	if t.Format == "mlx" {
		return fmt.Sprintf("MLX %s g%d", t.Type, t.GroupSize)
	}
	return strings.ToUpper(t.Format) + " " + t.Type
}

// WriteFiles writes report.json, report.csv, report.md and report.svg into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := jsonIndent(r)
	if err != nil {
		return err
	}
	svg, err := r.SVG()
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"report.json": js, "report.csv": r.CSV(), "report.md": r.Markdown(), "report.svg": svg,
	} {
		if err := writeFileAtomic(filepath.Join(dir, name), data); err != nil {
			return err
		}
	}
	return nil
}

func fmtOpt(v *float64, prec int) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', prec, 64)
}

// CSV renders the rows with a header line.
func (r *Report) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"model", "variant", "format", "type", "group_size", "path", "bytes", "bits_per_weight", "ppl", "ppl_stderr", "ppl_delta_pct", "kld", "top1_agreement", "seconds", "status", "error"})
	for _, row := range r.Items {
		gs := ""
		if row.GroupSize > 0 {
			gs = strconv.Itoa(row.GroupSize)
		}
		w.Write([]string{row.Model, row.Variant, row.Format, row.Type, gs, row.Path,
			strconv.FormatInt(row.Bytes, 10), strconv.FormatFloat(row.BitsPerWeight, 'f', 4, 64),
			fmtOpt(row.PPL, 4), fmtOpt(row.PPLStderr, 5), fmtOpt(row.PPLDeltaPct, 3),
			fmtOpt(row.KLD, 6), fmtOpt(row.Top1, 4), strconv.FormatFloat(row.Seconds, 'f', 2, 64), row.Status, row.Error})
	}
	w.Flush()
	return b.Bytes()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Markdown renders the MLX-vs-GGUF comparison table.
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	b.WriteString("| variant | format | size | bpw | ppl | Δppl | KLD | top-1 | status |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, row := range r.Items {
		ppl := fmtOpt(row.PPL, 4)
		if row.PPLStderr != nil {
			ppl += " ± " + fmtOpt(row.PPLStderr, 4)
		}
		delta := ""
		if row.PPLDeltaPct != nil {
			delta = fmt.Sprintf("%+.2f%%", *row.PPLDeltaPct)
		}
		top1 := ""
		if row.Top1 != nil {
			top1 = fmt.Sprintf("%.2f%%", 100**row.Top1)
		}
		size, bpw := "", ""
		if row.Bytes > 0 {
			size, bpw = humanBytes(row.Bytes), fmt.Sprintf("%.2f", row.BitsPerWeight)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			row.Variant, row.Format, size, bpw, ppl, delta, fmtOpt(row.KLD, 5), top1, row.Status)
	}
	return b.Bytes()
}

// SVG plots output size against perplexity, one labelled point per variant
// and a series per model.
func (r *Report) SVG() ([]byte, error) {
	p := plot.New()
	p.Title.Text = "quantbridge: size vs perplexity"
	p.X.Label.Text = "size (MiB)"
	p.Y.Label.Text = "perplexity"
	p.Add(plotter.NewGrid())
	models := []string{}
	byModel := map[string][]Row{}
	for _, row := range r.Items {
		if row.PPL == nil || row.Bytes == 0 || math.IsNaN(*row.PPL) {
			continue
		}
		if _, ok := byModel[row.Model]; !ok {
			models = append(models, row.Model)
		}
		byModel[row.Model] = append(byModel[row.Model], row)
	}
	for i, model := range models {
		rows := byModel[model]
		xys := make(plotter.XYs, len(rows))
		labels := make([]string, len(rows))
		for j, row := range rows {
			xys[j].X = float64(row.Bytes) / (1 << 20)
			xys[j].Y = *row.PPL
			labels[j] = strings.TrimPrefix(row.Variant, model+" ")
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Color = plotColor(i)
		sc.GlyphStyle.Radius = vg.Points(3.5)
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for k := range lb.TextStyle {
			lb.TextStyle[k].Font.Size = vg.Points(8)
			lb.TextStyle[k].XAlign = draw.XLeft
		}
		lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(2)}
		p.Add(sc, lb)
		p.Legend.Add(model, sc)
	}
	p.Legend.Top = true
	var b bytes.Buffer
	wt, err := p.WriterTo(7*vg.Inch, 4.5*vg.Inch, "svg")
	if err != nil {
		return nil, err
	}
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func plotColor(i int) color.Color {
	palette := []color.RGBA{
		{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
		{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
	}
	return palette[i%len(palette)]
}
