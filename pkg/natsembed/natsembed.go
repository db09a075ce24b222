// Package natsembed runs the nats-server with JetStream inside the roster
// process, for the all-in-one `roster serve` and for tests.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config of the embedded server.
type Config struct {
	// DataDir: JetStream stores under <DataDir>/jetstream.
	DataDir string
	// Listen is host:port for outside clients, or "off" for none (the
	// in-process clients need no port).
	Listen string
	// SyncInterval is how often JetStream fsyncs its files. Zero keeps the
	// server's default (2 min); "always" durability is SyncAlways. Roster's
	// outbox keeps each event until the stream acknowledged it, so a process
	// crash loses nothing either way; an operating-system crash can lose
	// what JetStream had not fsynced (docs/reliability.md).
	SyncInterval time.Duration
	SyncAlways   bool
}

// Server is a running embedded nats-server.
type Server struct {
	ns *server.Server
}

// Start starts the server and waits until it accepts clients.
func Start(cfg Config) (*Server, error) {
	opts := &server.Options{
		ServerName:   "roster",
		JetStream:    true,
		StoreDir:     filepath.Join(cfg.DataDir, "jetstream"),
		NoSigs:       true,
		NoLog:        true,
		SyncInterval: cfg.SyncInterval,
		SyncAlways:   cfg.SyncAlways,
		MaxPayload:   8 << 20,
	}
	if cfg.Listen == "off" || cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("natsembed: --nats-listen %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("natsembed: --nats-listen %q: bad port", cfg.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("natsembed: the embedded NATS server did not become ready in 15 s (is the port in use?)")
	}
	return &Server{ns: ns}, nil
}

// ClientURL is the URL outside clients use, or "" when not listening.
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Connect opens an in-process client connection.
func (s *Server) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(s.ns), nats.Name(name), nats.MaxReconnects(-1))
}

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// Connector returns a Connect function for an external NATS URL.
func Connector(url string, opts ...nats.Option) func(name string) (*nats.Conn, error) {
	return func(name string) (*nats.Conn, error) {
		o := append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}, opts...)
		nc, err := nats.Connect(url, o...)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
		}
		return nc, nil
	}
}
