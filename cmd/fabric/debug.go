package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// registerDebugListen registers --debug-listen on fs.
func registerDebugListen(fs *flag.FlagSet) *string {
	return fs.String("debug-listen", "", "address of an HTTP listener serving Go's profiles at /debug/pprof/ (default: none). Keep it private: profiles show the process's internals; /debug/pprof/heap?gc=1 forces a garbage collection")
}

// serveDebug serves net/http/pprof's handlers at addr until stop is called;
// with addr "" it does nothing.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Warn("debug listener on: profiles at /debug/pprof/; keep it off public networks", "addr", ln.Addr().String())
	return serveHTTP(ln, mux, "debug", log), nil
}

// serveHTTP serves handler on ln until the returned stop is called, which
// shuts the server down (5 s at most) and waits for it. what names the
// server in its log lines.
func serveHTTP(ln net.Listener, handler http.Handler, what string, log *slog.Logger) (stop func()) {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn(what+" server shutdown incomplete", "err", err)
		}
		<-done
	}
}
