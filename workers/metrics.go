package workers

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed82ac63c1/fabric/protocol"
)

// WithMetrics registers the worker's Prometheus metrics (fabric_worker_*) on
// reg; nil means none. The default is none, at the cost of a nil check per
// request and per event. Workers of one process may share reg: they then
// count together.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(w *Worker) {
		w.metrics = nil
		if reg != nil {
			w.metrics = newMetrics(reg)
		}
	}
}

// outcome is how a request ended: the "outcome" label of
// fabric_worker_requests_total.
type outcome int

const (
	outcomeOK        outcome = iota
	outcomeError             // the handler returned an error or sent :error
	outcomeCancelled         // its ctx was cancelled: a cancel message, or shutdown after its grace
	outcomeTimeout           // its ctx expired: Config.MaxDuration
	outcomePanic
	numOutcomes
)

var outcomeLabels = [numOutcomes]string{
	outcomeOK:        "ok",
	outcomeError:     "error",
	outcomeCancelled: "cancelled",
	outcomeTimeout:   "timeout",
	outcomePanic:     "panic",
}

// metrics are a worker's Prometheus collectors. The route label only takes
// registered routes: each route's series are made when it is registered,
// so a request costs no label lookup and dashboards see every series at 0.
type metrics struct {
	inFlight    *prometheus.GaugeVec
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	events      *prometheus.CounterVec
	republishes prometheus.Counter
	giveUps     prometheus.Counter

	routes map[string]*routeMetrics // written by HandleRaw before Start, read-only after
}

// routeMetrics are one route's series.
type routeMetrics struct {
	inFlight prometheus.Gauge
	outcomes [numOutcomes]prometheus.Counter
	duration prometheus.Observer
	events   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		inFlight: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fabric_worker_handlers_in_flight", Help: "Handlers running, from their start until their finish is sent, by route."},
			[]string{"route"})),
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabric_worker_requests_total", Help: "Requests handled, by route and outcome."},
			[]string{"route", "outcome"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fabric_worker_request_duration_seconds", Help: "Time from a handler's start to its finish being sent, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"route"})),
		events: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabric_worker_events_total", Help: "Request events published, finish included, by route."},
			[]string{"route"})),
		republishes: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_worker_store_republishes_total", Help: "Durable requests: passes that publish unacknowledged events again after a failed ack."})),
		giveUps: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_worker_store_giveups_total", Help: "Durable requests whose unacknowledged events were given up."})),
		routes: make(map[string]*routeMetrics),
	}
}

// register registers c on reg, or returns the collector already registered
// there under the same name, so that workers can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}

// addRoute makes a registered route's series.
func (m *metrics) addRoute(route string) {
	if m == nil {
		return
	}
	rm := &routeMetrics{
		inFlight: m.inFlight.WithLabelValues(route),
		duration: m.duration.WithLabelValues(route),
		events:   m.events.WithLabelValues(route),
	}
	for o, label := range outcomeLabels {
		rm.outcomes[o] = m.requests.WithLabelValues(route, label)
	}
	m.routes[route] = rm
}

// request starts recording one request of a registered route: its handler
// is starting.
func (m *metrics) request(route string) requestMetrics {
	if m == nil {
		return requestMetrics{}
	}
	rm := m.routes[route]
	rm.inFlight.Inc()
	return requestMetrics{route: rm, start: time.Now()}
}

func (m *metrics) republished() {
	if m != nil {
		m.republishes.Inc()
	}
}

func (m *metrics) gaveUp() {
	if m != nil {
		m.giveUps.Inc()
	}
}

// requestMetrics records one request; its zero value, without metrics,
// records nothing. It lives in the request's Stream.
type requestMetrics struct {
	route     *routeMetrics
	start     time.Time
	errorSent bool // an :error event went out; written under the Stream's mu, read once the finish is sent
}

// event counts an event the Stream published (err == nil) or tried to.
func (r *requestMetrics) event(suffix string, err error) {
	if r.route == nil {
		return
	}
	r.errorSent = r.errorSent || suffix == protocol.SuffixError
	if err == nil {
		r.route.events.Inc()
	}
}

// end records the request's outcome and duration once its finish is sent.
// err is what the handler returned; ctx is the handler's ctx.
func (r *requestMetrics) end(ctx context.Context, err error, panicked bool) {
	if r.route == nil {
		return
	}
	r.route.duration.Observe(time.Since(r.start).Seconds())
	r.route.inFlight.Dec()
	r.route.outcomes[r.outcome(ctx, err, panicked)].Inc()
}

// outcome classifies a request that has ended. A failed request whose ctx
// ended first failed because of it: cancelled, or timed out.
func (r *requestMetrics) outcome(ctx context.Context, err error, panicked bool) outcome {
	switch {
	case panicked:
		return outcomePanic
	case err == nil && !r.errorSent:
		return outcomeOK
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return outcomeTimeout
	case ctx.Err() != nil:
		return outcomeCancelled
	default:
		return outcomeError
	}
}
