package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/natsembed"
	"roster.dev/pkg/store"
	"roster.dev/pkg/telemetry"
)

// Config of a host process (api.md, "CLI and configuration").
type Config struct {
	DataDir string
	// HTTP is the listen address of the HTTP server.
	HTTP string
	// NATSListen is the embedded server's client address, or "off".
	NATSListen string
	// NATSURL, when set, uses an external NATS instead of the embedded one.
	NATSURL string
	// DB is "" for SQLite files in DataDir, or a postgres:// URL.
	DB            string
	OperatorToken string
	// StreamReplicas is the replica count of the streams this host creates.
	StreamReplicas int
	// AuditMaxAge and AuditMaxBytes are the public audit stream's retention
	// zero keeps everything.
	AuditMaxAge   time.Duration
	AuditMaxBytes int64
	// AckWait is how long an event delivered to a consumer that died stays
	// with it before JetStream redelivers it (0: eventbus's default).
	AckWait time.Duration
	// SettleTimeout bounds how long a write request waits for its effects
	// to be applied by the services that derive state from it before it
	// answers anyway (0: eventbus.DefaultSettleTimeout); docs/architecture.md
	// "Read-your-writes".
	SettleTimeout time.Duration
	// TokenCacheTTL bounds how long a verified token is kept (pkg/auth; 0:
	// 30 s); negative: no cache, every request asks identity.
	TokenCacheTTL time.Duration
	// NATSSyncInterval is the embedded JetStream fsync interval (0: default).
	NATSSyncInterval time.Duration
	Log              *slog.Logger
	// Now is the clock given to the services (default time.Now); tests fix
	// it to check prorated amounts and cycles.
	Now func() time.Time
	// Mail is the mail transport URL (default file://<DataDir>/mail).
	Mail string
	// PublicURL is the base URL of links in mails (default: the HTTP
	// server's URL, URL()).
	PublicURL string
	// Routes, when set, mounts more handlers (the web console) on the
	// router after the services' routes; self is the HTTP server's own URL,
	// through which they reach the public API.
	Routes func(r chi.Router, self string) error
}

// Host runs services until stopped.
type Host struct {
	cfg      Config
	log      *slog.Logger
	ns       *natsembed.Server
	services []Service
	dbs      []*store.DB
	mu       sync.Mutex
	conns    []*nats.Conn
	authn    *auth.Authenticator
	buses    []*eventbus.Bus
	waiter   *eventbus.Waiter
	srv      *http.Server
	ln       net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error
	ready    chan struct{}
	stopOnce sync.Once
	stopErr  error
}

// Start opens everything the services need, starts their buses and the HTTP
// server, and returns; Ready tells when the buses' consumers exist.
func Start(ctx context.Context, cfg Config, services ...Service) (_ *Host, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OperatorToken == "" {
		return nil, errors.New("an operator token is required (ROSTER_OPERATOR_TOKEN)")
	}
	if cfg.Mail == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "mail"))
		if err != nil {
			return nil, err
		}
		cfg.Mail = (&url.URL{Scheme: "file", Path: dir}).String()
	}
	// Each bus and each Runner may report one error, and the HTTP server.
	h := &Host{cfg: cfg, log: cfg.Log, services: services, errs: make(chan error, 2*len(services)+1), ready: make(chan struct{})}
	defer func() {
		if err != nil {
			if h.ln != nil {
				h.ln.Close()
			}
			h.closeResources()
		}
	}()

	connect := natsembed.Connector(cfg.NATSURL)
	if cfg.NATSURL == "" {
		h.ns, err = natsembed.Start(natsembed.Config{DataDir: cfg.DataDir, Listen: cfg.NATSListen, SyncInterval: cfg.NATSSyncInterval})
		if err != nil {
			return nil, err
		}
		connect = h.ns.Connect
		if u := h.ns.ClientURL(); u != "" {
			h.log.Info("embedded NATS listening", "url", u)
		}
	}
	admin, err := connect("roster-admin")
	if err != nil {
		return nil, err
	}
	js, err := admin.JetStream()
	if err == nil {
		err = ensureStreams(ctx, js, eventbus.StreamOptions{Replicas: cfg.StreamReplicas,
			AuditMaxAge: cfg.AuditMaxAge, AuditMaxBytes: cfg.AuditMaxBytes}, h.log)
	}
	admin.Close()
	if err != nil {
		return nil, err
	}

	op := httpx.NewOperator(cfg.OperatorToken)
	authConn, err := connect("roster-auth")
	if err != nil {
		return nil, err
	}
	h.conns = append(h.conns, authConn)
	authn := auth.New(op, authConn)
	// Verified tokens are cached; with an external NATS other processes'
	// Waiters must first learn of this cache's consumer (pkg/auth).
	if cfg.TokenCacheTTL >= 0 {
		cacheCfg := auth.CacheConfig{TTL: cfg.TokenCacheTTL, Now: cfg.Now, Log: h.log}
		if cfg.NATSURL != "" {
			cacheCfg.WarmUp = tokenCacheWarmUp
		}
		if err := authn.StartCache(ctx, cacheCfg); err != nil {
			return nil, err
		}
	}
	h.authn = authn
	// Connections services open for request-reply close with the host.
	serviceConnect := func(name string) (*nats.Conn, error) {
		nc, err := connect(name)
		if err == nil {
			h.mu.Lock()
			h.conns = append(h.conns, nc)
			h.mu.Unlock()
		}
		return nc, err
	}
	settleConn, err := connect("roster-settle")
	if err != nil {
		return nil, err
	}
	h.conns = append(h.conns, settleConn)
	h.waiter, err = eventbus.NewWaiter(settleConn, cfg.SettleTimeout, h.log)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, telemetry.HTTP, httpx.Correlate, h.waiter.Middleware)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", h.readyz)
	r.Handle("/metrics", promhttp.Handler())

	// Listen before the services' Setup: the default public URL of the
	// links they mail is the address actually bound (--http :0 in tests).
	h.ln, err = net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", cfg.HTTP, err)
	}
	publicURL := strings.TrimSuffix(cfg.PublicURL, "/")
	if publicURL == "" {
		publicURL = h.URL()
	}

	for _, s := range services {
		db, err := store.Open(ctx, store.Config{URL: cfg.DB, DataDir: cfg.DataDir, Service: s.Name()})
		if err != nil {
			return nil, err
		}
		h.dbs = append(h.dbs, db)
		if err := db.Migrate(ctx, s.Migrations()); err != nil {
			return nil, err
		}
		if err := idempotency.Init(ctx, db); err != nil {
			return nil, err
		}
		bus, err := eventbus.New(eventbus.Config{Service: s.Name(), DB: db, Connect: connect, Logger: h.log, Now: cfg.Now, AckWait: cfg.AckWait,
			Batch: EventBatch(s), Eventual: IsEventual(s)})
		if err != nil {
			return nil, err
		}
		if err := bus.Init(ctx); err != nil {
			return nil, err
		}
		h.buses = append(h.buses, bus)
		if err := s.Setup(ctx, Deps{DB: db, Bus: bus, Log: h.log.With("service", s.Name()), Operator: op, Auth: authn, Connect: serviceConnect, Now: cfg.Now,
			Mail: cfg.Mail, PublicURL: publicURL}); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name(), err)
		}
		s.Routes(r)
	}
	if cfg.Routes != nil {
		if err := cfg.Routes(r, h.URL()); err != nil {
			return nil, err
		}
	}

	h.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}

	busCtx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for _, b := range h.buses {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			if err := b.Run(busCtx); err != nil {
				h.errs <- fmt.Errorf("%s bus: %w", b.Service(), err)
			}
		}()
	}
	for _, s := range services {
		if run, ok := s.(Runner); ok {
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				if err := run.Run(busCtx); err != nil {
					h.errs <- fmt.Errorf("%s: %w", s.Name(), err)
				}
			}()
		}
	}
	go func() {
		for _, b := range h.buses {
			select {
			case <-b.Ready():
			case <-busCtx.Done():
				return
			}
		}
		if err := h.waiter.Refresh(); err != nil {
			h.log.Warn("consumer registry", "err", err)
		}
		close(h.ready)
	}()
	go func() {
		if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.errs <- fmt.Errorf("http: %w", err)
		}
	}()
	return h, nil
}

// URL is the base URL of the HTTP server.
func (h *Host) URL() string { return "http://" + h.ln.Addr().String() }

// Routes is the HTTP router, for tests that walk every route (chi.Walk).
func (h *Host) Routes() chi.Routes { return h.srv.Handler.(chi.Routes) }

// NATSURL is the embedded NATS client URL ("" when not listening or external).
func (h *Host) NATSURL() string {
	if h.ns == nil {
		return h.cfg.NATSURL
	}
	return h.ns.ClientURL()
}

// Ready is closed once every service's consumers exist.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// Errors reports a component that stopped on its own.
func (h *Host) Errors() <-chan error { return h.errs }

func (h *Host) readyz(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-h.ready:
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "ready"})
	default:
		httpx.JSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
	}
}

// Stop drains: the HTTP server stops accepting and finishes requests in
// flight, then the buses stop taking events and finish those in flight;
// events not yet relayed stay in the outboxes for the next start.
func (h *Host) Stop(ctx context.Context) error {
	h.stopOnce.Do(func() {
		var errs []error
		if err := h.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		h.cancel()
		h.wg.Wait()
		h.closeResources()
		h.stopErr = errors.Join(errs...)
	})
	return h.stopErr
}

func (h *Host) closeResources() {
	if h.waiter != nil {
		h.waiter.Close()
	}
	if h.authn != nil {
		h.authn.Close()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, nc := range h.conns {
		nc.Close()
	}
	for _, db := range h.dbs {
		db.Close()
	}
	if h.ns != nil {
		h.ns.Shutdown()
	}
}

// tokenCacheWarmUp is how long a process sharing NATS with others keeps
// no tokens after its cache's consumer exists: two registry reads of every
// other process's Waiter (eventbus reads it every 2 s).
const tokenCacheWarmUp = 5 * time.Second

// streamsPatience is how long Start retries creating the streams: a
// service started with its NATS cluster waits for JetStream to elect its
// meta leader rather than failing and being restarted.
var streamsPatience = time.Minute

// ensureStreams creates or updates the streams, retrying every second for
// streamsPatience (or until ctx ends) while JetStream does not answer.
func ensureStreams(ctx context.Context, js nats.JetStreamManager, o eventbus.StreamOptions, log *slog.Logger) error {
	deadline := time.Now().Add(streamsPatience)
	for {
		err := eventbus.EnsureStreams(js, o)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		log.WarnContext(ctx, "JetStream not ready; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
