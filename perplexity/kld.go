package perplexity

import (
	"fmt"
	"io"
	"math"
	"sort"
)

// KLResult compares a model's next-token distributions with a base model's
// on the same tokens, with llama-perplexity --kl-divergence's statistics
// (tools/perplexity/perplexity.cpp kl_divergence). Uncertainties are one
// standard error of the mean. The base distribution is used at full float
// precision rather than llama-perplexity's 16-bit compressed log-probs.
type KLResult struct {
	Count int // scored tokens

	PPL, PPLStderr           float64 // PPL(Q)
	BasePPL, BasePPLStderr   float64 // PPL(base)
	Correlation              float64 // Cor(ln PPL(Q), ln PPL(base)) in [-1, 1]
	LogRatio, LogRatioStderr float64 // mean ln(PPL(Q)/PPL(base))
	Ratio, RatioStderr       float64 // PPL(Q)/PPL(base)
	Diff, DiffStderr         float64 // PPL(Q)-PPL(base)

	KLD, KLDStderr float64 // mean KL divergence (nats)
	// KLDPercentiles maps percentile labels ("Maximum", "99.9%", "99.0%",
	// "95.0%", "90.0%", "Median", "10.0%", "5.0%", "1.0%", "0.1%",
	// "Minimum") to values, in that order.
	KLDPercentiles []Percentile

	DeltaP, DeltaPStderr   float64      // mean p(Q)-p(base) of the correct token
	DeltaPPercentiles      []Percentile // "Maximum", "99.9%" ... "Minimum"
	RMSDeltaP, RMSStderr   float64
	SameTop, SameTopStderr float64 // fraction of tokens whose top-1 token agrees
}

// Percentile is one labeled order statistic.
type Percentile struct {
	Label string
	Value float64
}

type klAccumulator struct {
	sumNLL, sumNLL2, sumBase, sumBase2, sumNLLBase float64
	sumKLD, sumKLD2                                float64
	sumDP, sumDP2, sumDP4                          float64
	same, count                                    int
	klds, dps                                      []float64
}

func newKLAccumulator(n int) *klAccumulator {
	return &klAccumulator{klds: make([]float64, 0, n), dps: make([]float64, 0, n)}
}

// klTerm is one position's contribution to a klAccumulator, in the
// precision llama-perplexity keeps it.
type klTerm struct {
	nll, nllBase float32
	kld          float64
	dp           float32
	same         bool // the same top-1 token
}

// klTermOf compares the logits q of the model with those of the base, b,
// at a position whose next token is tok, as llama-perplexity
// --kl-divergence does from its --kl-divergence-base file: the base's
// log-probabilities as that file stores them (log_softmax with a uint16_t
// output: 16-bit codes over [max−16, max] of the logits, a float32 scale
// and offset), then log_softmax against them (float32 steps, expf,
// Σ in float64; gcc contracts scale·code + offset into a fused
// multiply-add).
func klTermOf(q, b []float32, tok int) klTerm {
	// The base's codes.
	bmax, bmin := b[0], b[0]
	for _, v := range b[1:] {
		bmax = max(bmax, v)
		bmin = min(bmin, v)
	}
	bmin = max(bmin, bmax-16)
	var bsum float64
	for _, v := range b {
		bsum += float64(expf32(v - bmax))
	}
	blse := float32(math.Log(bsum))
	minLogProb := bmin - bmax - blse
	scale := (bmax - bmin) / 65535
	var inv float32
	if scale != 0 {
		inv = 1 / scale
	}
	logProbBase := func(i int) float32 {
		var code float32
		if scale != 0 && b[i] > bmin {
			code = float32(math.RoundToEven(float64(inv * (b[i] - bmin)))) // nearest_int
		}
		return float32(scale*code) + minLogProb // not fused (the explicit rounding keeps Go from fusing)
	}
	// The model against them.
	qmax, imax := q[0], 0
	for i, v := range q {
		if v > qmax {
			qmax, imax = v, i
		}
	}
	var qsum float64
	for _, v := range q {
		qsum += float64(expf32(v - qmax))
	}
	qlse := float32(math.Log(qsum))
	t := klTerm{nll: qmax + qlse - q[tok], nllBase: -logProbBase(tok)}
	qmax += qlse
	imaxBase := -1
	var pmax float32
	for i := range q {
		lb := logProbBase(i)
		if i == 0 || lb > pmax {
			pmax, imaxBase = lb, i
		}
		if lb > -16 {
			t.kld += float64(expf32(lb) * (lb - q[i] + qmax))
		}
	}
	t.same = imax == imaxBase
	t.dp = expf32(-t.nll) - expf32(-t.nllBase)
	return t
}

// addTerm adds one position's term (positions are added in text order).
func (a *klAccumulator) addTerm(t klTerm) {
	a.sumNLL += float64(t.nll)
	a.sumNLL2 += float64(t.nll * t.nll)
	a.sumBase += float64(t.nllBase)
	a.sumBase2 += float64(t.nllBase * t.nllBase)
	a.sumNLLBase += float64(t.nll * t.nllBase)
	a.sumKLD += t.kld
	a.sumKLD2 += t.kld * t.kld
	if t.same {
		a.same++
	}
	dp2 := float64(t.dp * t.dp)
	a.sumDP += float64(t.dp)
	a.sumDP2 += dp2
	a.sumDP4 += dp2 * dp2
	a.count++
	a.klds = append(a.klds, float64(float32(t.kld)))
	a.dps = append(a.dps, float64(t.dp))
}

// meanAndUncertainty is llama-perplexity's mean_and_uncertainty.
func meanAndUncertainty(sum, sum2 float64, n int) (float64, float64) {
	if n < 1 {
		return 0, 0
	}
	f := sum / float64(n)
	df := sum2/float64(n) - f*f
	if df > 0 && n > 10 {
		df = math.Sqrt(df / float64(n-1))
	} else {
		df = 0
	}
	return f, df
}

func covariance(sa, sb, sab float64, n int) float64 {
	if n < 10 {
		return 0
	}
	N := float64(n)
	return (sab/N - (sa/N)*(sb/N)) / (N - 1)
}

// percentile is llama-perplexity's percentile of sorted float32 values:
// linear interpolation at fraction·(n−1), all in float32 (fraction is a
// float32 literal there: 0.999f, ...).
func percentile(v []float64, fraction float32) float64 {
	if fraction <= 0 {
		return v[0]
	}
	if fraction >= 1 {
		return v[len(v)-1]
	}
	p := fraction * float32(len(v)-1)
	ip := int(p)
	p -= float32(ip)
	return float64((1-p)*float32(v[ip]) + p*float32(v[min(ip+1, len(v)-1)]))
}

// median is llama-perplexity's median of sorted float32 values (0.5f·(a+b)
// for an even count).
func median(v []float64) float64 {
	n := len(v)
	if n%2 == 0 {
		return float64(0.5 * (float32(v[n/2]) + float32(v[n/2-1])))
	}
	return v[n/2]
}

func (a *klAccumulator) result() *KLResult {
	r := &KLResult{Count: a.count}
	if a.count == 0 {
		return r
	}
	lp, lpu := meanAndUncertainty(a.sumNLL, a.sumNLL2, a.count)
	lb, lbu := meanAndUncertainty(a.sumBase, a.sumBase2, a.count)
	cov := covariance(a.sumNLL, a.sumBase, a.sumNLLBase, a.count)
	r.PPL, r.PPLStderr = math.Exp(lp), math.Exp(lp)*lpu
	r.BasePPL, r.BasePPLStderr = math.Exp(lb), math.Exp(lb)*lbu
	if lpu > 0 && lbu > 0 {
		r.Correlation = cov / (lpu * lbu)
	}
	r.LogRatio = lp - lb
	r.LogRatioStderr = math.Sqrt(math.Max(0, lpu*lpu+lbu*lbu-2*cov))
	r.Ratio = math.Exp(r.LogRatio)
	r.RatioStderr = r.Ratio * r.LogRatioStderr
	r.Diff = r.PPL - r.BasePPL
	r.DiffStderr = math.Sqrt(math.Max(0, r.PPLStderr*r.PPLStderr+r.BasePPLStderr*r.BasePPLStderr-2*r.PPL*r.BasePPL*cov))
	r.KLD, r.KLDStderr = meanAndUncertainty(a.sumKLD, a.sumKLD2, a.count)
	r.DeltaP, r.DeltaPStderr = meanAndUncertainty(a.sumDP, a.sumDP2, a.count)
	mse, mseu := meanAndUncertainty(a.sumDP2, a.sumDP4, a.count)
	r.RMSDeltaP = math.Sqrt(mse)
	if r.RMSDeltaP > 0 {
		r.RMSStderr = 0.5 / r.RMSDeltaP * mseu
	}
	r.SameTop = float64(a.same) / float64(a.count)
	if a.count > 1 {
		r.SameTopStderr = math.Sqrt(r.SameTop * (1 - r.SameTop) / float64(a.count-1))
	}
	klds := append([]float64(nil), a.klds...)
	dps := append([]float64(nil), a.dps...)
	sort.Float64s(klds)
	sort.Float64s(dps)
	r.KLDPercentiles = []Percentile{
		{"Maximum", klds[len(klds)-1]},
		{"99.9%", percentile(klds, 0.999)},
		{"99.0%", percentile(klds, 0.990)},
		{"95.0%", percentile(klds, 0.950)},
		{"90.0%", percentile(klds, 0.900)},
		{"Median", median(klds)},
		{"10.0%", percentile(klds, 0.100)},
		{"5.0%", percentile(klds, 0.050)},
		{"1.0%", percentile(klds, 0.010)},
		{"0.1%", percentile(klds, 0.001)},
		{"Minimum", klds[0]},
	}
	r.DeltaPPercentiles = []Percentile{
		{"Maximum", dps[len(dps)-1]},
		{"99.9%", percentile(dps, 0.999)},
		{"99.0%", percentile(dps, 0.990)},
		{"95.0%", percentile(dps, 0.950)},
		{"90.0%", percentile(dps, 0.900)},
		{"75.0%", percentile(dps, 0.750)},
		{"Median", median(dps)},
		{"25.0%", percentile(dps, 0.250)},
		{"10.0%", percentile(dps, 0.100)},
		{"5.0%", percentile(dps, 0.050)},
		{"1.0%", percentile(dps, 0.010)},
		{"0.1%", percentile(dps, 0.001)},
		{"Minimum", dps[0]},
	}
	return r
}

// WriteReport prints the statistics in llama-perplexity's layout.
func (r *KLResult) WriteReport(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("====== Perplexity statistics ======\n")
	p("Mean PPL(Q)                   : %10.6f ± %10.6f\n", r.PPL, r.PPLStderr)
	p("Mean PPL(base)                : %10.6f ± %10.6f\n", r.BasePPL, r.BasePPLStderr)
	p("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100*r.Correlation)
	p("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", r.LogRatio, r.LogRatioStderr)
	p("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", r.Ratio, r.RatioStderr)
	p("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", r.Diff, r.DiffStderr)
	p("\n====== KL divergence statistics ======\n")
	p("Mean    KLD: %10.6f ± %10.6f\n", r.KLD, r.KLDStderr)
	for _, q := range r.KLDPercentiles {
		p("%-7s KLD: %10.6f\n", pctLabel(q.Label), q.Value)
	}
	p("\n====== Token probability statistics ======\n")
	p("Mean    Δp: %6.3f ± %5.3f %%\n", 100*r.DeltaP, 100*r.DeltaPStderr)
	for _, q := range r.DeltaPPercentiles {
		p("%-7s Δp: %6.3f%%\n", pctLabel(q.Label), 100*q.Value)
	}
	p("RMS Δp    : %6.3f ± %5.3f %%\n", 100*r.RMSDeltaP, 100*r.RMSStderr)
	p("Same top p: %6.3f ± %5.3f %%\n", 100*r.SameTop, 100*r.SameTopStderr)
	return ew.err
}

func pctLabel(l string) string {
	if len(l) == 4 && l[len(l)-1] == '%' { // "5.0%" -> " 5.0%"
		return " " + l
	}
	return l
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}
