package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/internal/inspector"
	"github.com/seed82ac63c1/fabric/web"
	"github.com/seed82ac63c1/fabric/workers/demo"
	"github.com/seed82ac63c1/fabric/workers/demo/agents"
)

// inspectorFlags are the request inspector's settings, shared by
// `fabric dev` and `fabric gateway --inspector`.
type inspectorFlags struct {
	jaegerURL string
	capacity  int
}

func (f *inspectorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.jaegerURL, "jaeger-url", inspector.DefaultJaegerURL, "Jaeger UI the request inspector links each trace to, as <url>/trace/<trace id>")
	fs.IntVar(&f.capacity, "inspector-requests", inspector.DefaultCapacity, "how many recent requests the request inspector keeps")
}

// config returns the inspector's config. It watches the requests of
// requestRoutes only, or of every route when there are none.
func (f *inspectorFlags) config(prefix string, requestRoutes ...string) inspector.Config {
	return inspector.Config{Prefix: prefix, JaegerURL: f.jaegerURL, Capacity: f.capacity, RequestRoutes: requestRoutes}
}

// runningInspector is a request inspector on its own NATS connection.
type runningInspector struct {
	*inspector.Inspector
	nc *nats.Conn
}

// startInspector connects to NATS and starts a request inspector, which
// runs until ctx is done or Close. Its own connection keeps its traffic
// (every event of every session) off the gateway's.
func startInspector(ctx context.Context, natsURLs string, cfg inspector.Config, log *slog.Logger, opts ...nats.Option) (*runningInspector, error) {
	nc, err := connectNATS(natsURLs, "fabric-inspector", log, opts...)
	if err != nil {
		return nil, err
	}
	in, err := inspector.Start(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ri := &runningInspector{Inspector: in, nc: nc}
	// Its event streams never go idle: end them when the server stops, so
	// that the HTTP server's shutdown does not wait for them.
	context.AfterFunc(ctx, ri.Close)
	return ri, nil
}

// Close stops the inspector and closes its connection. It is safe to call
// more than once.
func (ri *runningInspector) Close() {
	ri.Inspector.Close()
	ri.nc.Close()
}

// beside serves the inspector's page at /inspector and its API under
// /inspector/api/, and every other path with site (none if nil).
func (ri *runningInspector) beside(site http.Handler) http.Handler {
	mux := http.NewServeMux()
	if site != nil {
		mux.Handle("/", site)
	}
	page := web.InspectorHandler()
	mux.Handle(web.InspectorPath, page)
	mux.Handle(web.InspectorPath+"/", page)
	mux.Handle(web.InspectorAPIPath+"/", http.StripPrefix(web.InspectorAPIPath, ri.Handler()))
	return mux
}

// inspectorURL is the URL of the inspector's page for a listener address.
func inspectorURL(addr net.Addr) string {
	return strings.TrimSuffix(pageURL(addr), "/") + web.InspectorPath
}

// devRoutes are the routes `fabric dev`'s worker serves (see runDev): the
// inspector watches only their requests, so that a request for any other
// route still fails at once with no_responders.
func devRoutes(af *agentFlags) []string {
	var routes []string
	for _, r := range demo.Routes() {
		routes = append(routes, r.Type)
	}
	served := map[string]bool{}
	for name := range strings.SplitSeq(af.routes, ",") {
		if name = strings.TrimSpace(name); name != "" {
			served[name] = true
		}
	}
	for _, r := range agents.Routes() {
		if len(served) == 0 || served[r.Type] {
			routes = append(routes, r.Type)
		}
	}
	return routes
}
