// Package embeddednats runs a NATS server inside the process: the message bus
// of `fabric dev` and of the tests.
package embeddednats

import (
	"errors"
	"fmt"
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
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.JetStream && cfg.StoreDir == "" {
		return nil, errors.New("embeddednats: JetStream needs a StoreDir")
	}
	opts := &server.Options{
		ServerName: "fabric-embedded",
		Host:       cfg.Host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  cfg.JetStream,
		StoreDir:   cfg.StoreDir,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embeddednats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(cfg.ReadyTimeout) {
		s.Shutdown()
		return nil, errors.New("embeddednats: server not ready in time")
	}
	return s, nil
}
