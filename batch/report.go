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
	"gonum.org/v1/plot/vg/vgsvg"
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
	return fixed(*v, prec)
}

// fixed formats v with prec decimals and no sign on a value that rounds to
// zero ("0.00000", not "-0.00000" for a KL-divergence of -1e-9).
func fixed(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.HasPrefix(s, "-") && strings.Trim(s, "-0.") == "" {
		return s[1:]
	}
	return s
}

// signed is fixed with a "+" on positive values (and none on zero).
func signed(v float64, prec int) string {
	s := fixed(v, prec)
	if v > 0 && strings.Trim(s, "0.") != "" {
		return "+" + s
	}
	return s
}

// CSV renders the rows with a header line.
func (r *Report) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"model", "variant", "format", "type", "group_size", "path", "bytes", "bits_per_weight", "ppl", "ppl_stderr", "base_ppl", "ppl_delta_pct", "kld", "top1_agreement", "seconds", "status", "error"})
	for _, row := range r.Items {
		gs := ""
		if row.GroupSize > 0 {
			gs = strconv.Itoa(row.GroupSize)
		}
		w.Write([]string{row.Model, row.Variant, row.Format, row.Type, gs, row.Path,
			strconv.FormatInt(row.Bytes, 10), fixed(row.BitsPerWeight, 4),
			fmtOpt(row.PPL, 4), fmtOpt(row.PPLStderr, 5), fmtOpt(row.BasePPL, 4), fmtOpt(row.PPLDeltaPct, 3),
			fmtOpt(row.KLD, 6), fmtOpt(row.Top1, 4), fixed(row.Seconds, 2), row.Status, row.Error})
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
			delta = signed(*row.PPLDeltaPct, 2) + "%"
		}
		top1 := ""
		if row.Top1 != nil {
			top1 = fixed(100**row.Top1, 2) + "%"
		}
		size, bpw := "", ""
		if row.Bytes > 0 {
			size, bpw = humanBytes(row.Bytes), fixed(row.BitsPerWeight, 2)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			row.Variant, row.Format, size, bpw, ppl, delta, fmtOpt(row.KLD, 5), top1, row.Status)
	}
	return b.Bytes()
}

// SVG plots output size against perplexity: one panel per model (their
// perplexities are not on one scale), a point per variant labelled with its
// type, GGUF and MLX told apart by colour and shape, and the unquantized
// model's perplexity as a dashed line.
func (r *Report) SVG() ([]byte, error) {
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
	if len(models) == 0 {
		p := plot.New()
		p.Title.Text = "quantbridge: size vs perplexity (no scored outputs yet)"
		return renderSVG([][]*plot.Plot{{p}}, 7*vg.Inch, 2*vg.Inch)
	}
	formats := []string{"gguf", "mlx", "hf"}
	glyphs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}}
	grid := make([][]*plot.Plot, len(models))
	for i, model := range models {
		rows := byModel[model]
		p := plot.New()
		p.Title.Text = model + ": size vs perplexity"
		p.X.Label.Text = "size (MiB)"
		p.Y.Label.Text = "perplexity"
		p.Add(plotter.NewGrid())
		minX, maxX := math.Inf(1), math.Inf(-1)
		minY, maxY := math.Inf(1), math.Inf(-1)
		for _, row := range rows {
			x, y := float64(row.Bytes)/(1<<20), *row.PPL
			minX, maxX = math.Min(minX, x), math.Max(maxX, x)
			minY, maxY = math.Min(minY, y), math.Max(maxY, y)
		}
		var base float64
		if rows[0].BasePPL != nil {
			base = *rows[0].BasePPL
			minY, maxY = math.Min(minY, base), math.Max(maxY, base)
			line := plotter.NewFunction(func(float64) float64 { return base })
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			line.Color = color.Gray{0x80}
			p.Add(line)
			p.Legend.Add(fmt.Sprintf("unquantized (%.3f)", base), line)
		}
		for f, format := range formats {
			var xys plotter.XYs
			var labels []string
			for _, row := range rows {
				if row.Format != format {
					continue
				}
				xys = append(xys, plotter.XY{X: float64(row.Bytes) / (1 << 20), Y: *row.PPL})
				label := row.Type
				if row.GroupSize > 0 {
					label = fmt.Sprintf("%s g%d", row.Type, row.GroupSize)
				}
				labels = append(labels, label)
			}
			if len(xys) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle.Color = plotColor(f)
			sc.GlyphStyle.Radius = vg.Points(4)
			sc.GlyphStyle.Shape = glyphs[f]
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
			if err != nil {
				return nil, err
			}
			for k := range lb.TextStyle {
				lb.TextStyle[k].Font.Size = vg.Points(8)
				lb.TextStyle[k].XAlign = draw.XLeft
				lb.TextStyle[k].YAlign = draw.YCenter
			}
			lb.Offset = vg.Point{X: vg.Points(6)}
			p.Add(sc, lb)
			p.Legend.Add(strings.ToUpper(format), sc)
		}
		// Room for the labels on the right and the legend at the top.
		spanX, spanY := math.Max(maxX-minX, maxX*0.1), math.Max(maxY-minY, maxY*0.02)
		p.X.Min, p.X.Max = math.Max(0, minX-0.08*spanX), maxX+0.35*spanX
		p.Y.Min, p.Y.Max = minY-0.1*spanY, maxY+0.35*spanY
		p.Y.Tick.Marker = exactTicks{}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Legend.TextStyle.Font.Size = vg.Points(9)
		grid[i] = []*plot.Plot{p}
	}
	return renderSVG(grid, 7*vg.Inch, vg.Length(len(models))*3.6*vg.Inch)
}

// renderSVG draws a column of plots into one SVG.
func renderSVG(grid [][]*plot.Plot, w, h vg.Length) ([]byte, error) {
	img := vgsvg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(grid), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(12), PadY: vg.Points(18)}
	canvases := plot.Align(grid, tiles, dc)
	for i := range grid {
		grid[i][0].Draw(canvases[i][0])
	}
	var b bytes.Buffer
	if _, err := img.WriteTo(&b); err != nil {
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

// exactTicks is plot.DefaultTicks with each label the tick's value, with
// as few decimals as that takes for every label of the axis. DefaultTicks
// rounds its labels to a precision guessed from the step: on the narrow
// perplexity ranges a report plots it labelled 33.25 and 33.45 both "33".
type exactTicks struct{}

func (exactTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for prec := 0; prec <= 6; prec++ {
		exact := true
		for _, t := range ticks {
			if t.Label == "" {
				continue
			}
			v, _ := strconv.ParseFloat(fixed(t.Value, prec), 64)
			if math.Abs(v-t.Value) > 1e-9*math.Max(1, math.Abs(t.Value)) {
				exact = false
				break
			}
		}
		if exact {
			for i, t := range ticks {
				if t.Label != "" {
					ticks[i].Label = fixed(t.Value, prec)
				}
			}
			break
		}
	}
	return ticks
}
