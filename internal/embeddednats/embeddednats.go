// Package embeddednats runs a NATS server inside the process: the message bus
// of `fabric dev`, of `fabric gateway --embed-nats` and of the tests.
package embeddednats

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures an embedded server.
type Config struct {
	// Host to listen on. "" means 127.0.0.1.
	Host string
	// Port to listen on. 0 means a random free port.
	Port int
	// JetStream enables JetStream, storing in StoreDir.
	JetStream bool
	// StoreDir is JetStream's storage directory; required with JetStream.
	StoreDir string
	// ReadyTimeout bounds the wait for the server to accept connections.
	// 0 means 10s.
	ReadyTimeout time.Duration
}

// Start starts a NATS server and waits until it accepts connections. Stop it
// with Shutdown and WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if cfg.JetStream && cfg.StoreDir == "" {
		return nil, errors.New("embeddednats: JetStream needs a StoreDir")
	}
	opts := &server.Options{
		ServerName: "fabric-embedded",
		Host:       cfg.Host,
		Port:       port,
		NoLog:      true,
		JetStream:  cfg.JetStream,
		StoreDir:   cfg.StoreDir,
	}
	return start(opts, nil, cfg.ReadyTimeout)
}

// StartFile starts a NATS server configured by a nats-server configuration
// file (listen address, cluster routes, JetStream, accounts, WebSocket…)
// and waits until it accepts connections, ready bounding the wait (0 means
// 10s). The server logs to log, its notices at Info; nil means it does not
// log. It leaves signals to the process.
func StartFile(path string, log *slog.Logger, ready time.Duration) (*server.Server, error) {
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("embeddednats: %w", err)
	}
	return start(opts, log, ready)
}

// start starts a server from opts, logging to log (nil: no logging).
func start(opts *server.Options, log *slog.Logger, ready time.Duration) (*server.Server, error) {
	if ready == 0 {
		ready = 10 * time.Second
	}
	opts.NoSigs = true
	opts.NoLog = log == nil
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embeddednats: %w", err)
	}
	if log != nil {
		s.SetLoggerV2(&slogLogger{log: log.With("component", "nats-server")}, opts.Debug, opts.Trace, false)
	}
	go s.Start()
	if !s.ReadyForConnections(ready) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("embeddednats: server not ready in %s", ready)
	}
	return s, nil
}

// slogLogger is nats-server's logger writing to a slog.Logger: its notices
// at Info, its debug and trace lines at Debug.
type slogLogger struct{ log *slog.Logger }

func (l *slogLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// Fatalf logs at Error: the server stops itself after a fatal error (it
// cannot listen, say), and Start reports that it is not ready, rather than
// the process exiting from inside the library.
func (l *slogLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
