package bench

import (
	"sync"
	"time"

	// HDR histograms keep every sample at 3 significant digits in a fixed,
	// small memory, so percentiles come from all the raw samples, not from
	// an average or a sample of them, however long the run.
	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies records durations from 1 ns to 1 min, to 3 significant digits.
// It is safe for concurrent use.
type Latencies struct {
	mu     sync.Mutex
	h      *hdrhistogram.Histogram
	errors int64
}

// NewLatencies returns an empty recorder.
func NewLatencies() *Latencies {
	return &Latencies{h: hdrhistogram.New(1, int64(time.Minute), 3)}
}

// Record adds one sample; a longer one than a minute counts as a minute.
func (l *Latencies) Record(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d > time.Minute {
		d = time.Minute
	}
	_ = l.h.RecordValue(int64(d)) // within range: checked above
}

// Fail counts one operation that did not complete.
func (l *Latencies) Fail() {
	l.mu.Lock()
	l.errors++
	l.mu.Unlock()
}

// Summary is a distribution's percentiles, in microseconds.
type Summary struct {
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	Mean   float64 `json:"meanUs"`
	Min    float64 `json:"minUs"`
	P50    float64 `json:"p50Us"`
	P90    float64 `json:"p90Us"`
	P99    float64 `json:"p99Us"`
	P999   float64 `json:"p999Us"`
	Max    float64 `json:"maxUs"`
}

// Summary returns the percentiles of the samples so far.
func (l *Latencies) Summary() Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Summary{Count: l.h.TotalCount(), Errors: l.errors}
	if s.Count == 0 {
		return s
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	q := l.h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9})
	s.Mean = l.h.Mean() / 1e3
	s.Min, s.Max = us(l.h.Min()), us(l.h.Max())
	s.P50, s.P90, s.P99, s.P999 = us(q[0]), us(q[1]), us(q[2]), us(q[3])
	return s
}
