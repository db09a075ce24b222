// Package svctest is the harness of Roster's service and event-bus tests:
// an embedded NATS with Roster's streams, a service's database on SQLite
// and on PostgreSQL, buses that run until the test ends, a service started
// as the host starts it behind an HTTP test server, and the waits and
// counts the tests assert with. Tests poll for a condition (Eventually)
// instead of sleeping.
//
// Only tests import it: the package starts servers, uses pgtest and fails
// the test it is given.
package svctest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/natsembed"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc"
)

// Timeouts of the waits: generous for a loaded CI machine under -race.
const (
	timeout = 20 * time.Second
	tick    = 10 * time.Millisecond
)

// EachBackend runs fn as a subtest on SQLite and on PostgreSQL; dbURL is
// the --db value: "" for SQLite, or a new, empty pgtest database. The test
// binary's TestMain must call pgtest.Run.
func EachBackend(t *testing.T, fn func(t *testing.T, dbURL string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.DSN(t)) })
}

// World is one embedded NATS server with Roster's streams, and the data
// directory its JetStream files and the services' SQLite databases share.
type World struct {
	Dir string
	// NC is a connection of the test's own, and JS its JetStream context.
	NC *nats.Conn
	JS nats.JetStreamContext
	ns *natsembed.Server
}

// NewNATS starts an embedded NATS server with Roster's streams in a new
// temporary directory, until the test ends. It listens on a free loopback
// port, so that child processes can reach it too (ClientURL).
func NewNATS(t testing.TB) *World {
	t.Helper()
	dir := t.TempDir()
	ns, err := natsembed.Start(natsembed.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	w := &World{Dir: dir, ns: ns}
	w.NC, err = ns.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.NC.Close)
	if w.JS, err = w.NC.JetStream(); err != nil {
		t.Fatal(err)
	}
	if err := eventbus.EnsureStreams(w.JS, eventbus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return w
}

// Connect opens an in-process connection, as eventbus.Config.Connect and
// svc.Deps.Connect want.
func (w *World) Connect(name string) (*nats.Conn, error) { return w.ns.Connect(name) }

// ClientURL is the URL other processes connect to.
func (w *World) ClientURL() string { return w.ns.ClientURL() }

// OpenDB opens the database of service (SQLite in dir when dbURL is "")
// until the test ends.
func OpenDB(t testing.TB, dbURL, dir, service string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: dbURL, DataDir: dir, Service: service})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// StartBus creates the bus of cfg, lets register (when not nil) register
// its handlers, runs it until the test ends and waits until it is ready.
// Without cfg.Logger the bus logs warnings and errors to the test's output.
func StartBus(t testing.TB, cfg eventbus.Config, register func(*eventbus.Bus)) *eventbus.Bus {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	b, err := eventbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if register != nil {
		register(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bus %s: %v", b.Service(), err)
		}
	})
	select {
	case <-b.Ready():
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("bus %s stopped: %v", b.Service(), err)
	case <-time.After(timeout):
		t.Fatalf("bus %s not ready in %v", b.Service(), timeout)
	}
	return b
}

// StartService starts s on w as svc.Start does, until the test ends: its
// database (dbURL, in w.Dir for SQLite) with its migrations and the
// idempotency table, its bus with the handlers Setup registers, running and
// ready, and its routes behind an HTTP test server at baseURL.
func StartService(t testing.TB, w *World, dbURL string, s svc.Service, operatorToken string) (baseURL string, db *store.DB, bus *eventbus.Bus) {
	t.Helper()
	ctx := context.Background()
	db = OpenDB(t, dbURL, w.Dir, s.Name())
	if err := db.Migrate(ctx, s.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := idempotency.Init(ctx, db); err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	bus = StartBus(t, eventbus.Config{Service: s.Name(), DB: db, Connect: w.Connect, Logger: log, Batch: svc.EventBatch(s)}, func(b *eventbus.Bus) {
		if err := b.Init(ctx); err != nil {
			t.Fatal(err)
		}
		deps := svc.Deps{DB: db, Bus: b, Log: log.With("service", s.Name()), Operator: httpx.NewOperator(operatorToken), Connect: w.Connect}
		if err := s.Setup(ctx, deps); err != nil {
			t.Fatalf("%s: %v", s.Name(), err)
		}
	})
	r := chi.NewRouter()
	s.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL, db, bus
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Producer is a service's bus and database that only emit: a stand-in for
// the service whose events the consumers under test apply.
type Producer struct {
	DB  *store.DB
	Bus *eventbus.Bus
}

// StartProducer opens service's database (dbURL, in w.Dir for SQLite) and
// runs its bus on w until the test ends.
func StartProducer(t testing.TB, w *World, dbURL, service string) *Producer {
	t.Helper()
	db := OpenDB(t, dbURL, w.Dir, service)
	return &Producer{DB: db, Bus: StartBus(t, eventbus.Config{Service: service, DB: db, Connect: w.Connect}, nil)}
}

// Emit emits events for an account through the producer's outbox, as a use
// case of its service does.
func (p *Producer) Emit(t testing.TB, accountID string, events ...eventbus.Event) {
	t.Helper()
	ctx := context.Background()
	if err := p.DB.InTx(ctx, func(tx *sql.Tx) error { return p.Bus.Emit(ctx, tx, accountID, events...) }); err != nil {
		t.Fatal(err)
	}
}

// Eventually polls cond every 10 ms until it holds, and fails the test
// after 20 s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallySeen(t, what, cond, nil)
}

// EventuallySeen is Eventually that, when it gives up, says what seen
// returns: the last state cond saw. seen may be nil.
func EventuallySeen(t testing.TB, what string, cond func() bool, seen func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if seen != nil {
				msg = "; last seen: " + seen()
			}
			t.Fatalf("timed out waiting for %s%s", what, msg)
		}
		time.Sleep(tick)
	}
}

// OutboxDrained reports whether every bus has relayed all it emitted.
func OutboxDrained(buses ...*eventbus.Bus) func() bool {
	return func() bool {
		for _, b := range buses {
			if n, err := b.Outbox().Pending(context.Background()); err != nil || n != 0 {
				return false
			}
		}
		return true
	}
}

// ConsumerSettled reports whether service's consumer of source's events
// has applied and acknowledged everything on source's stream: nothing
// pending, awaiting an ack or awaiting redelivery.
func ConsumerSettled(js nats.JetStreamManager, service, source string) func() bool {
	return func() bool {
		info, err := js.ConsumerInfo(eventbus.EventStream(source), eventbus.ConsumerName(service, source))
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	}
}

// StreamMsgs is how many messages a stream holds.
func StreamMsgs(t testing.TB, js nats.JetStreamManager, stream string) uint64 {
	t.Helper()
	info, err := js.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// SubjectMsgs is how many messages a stream holds on each subject that
// matches filter.
func SubjectMsgs(t testing.TB, js nats.JetStreamManager, stream, filter string) map[string]uint64 {
	t.Helper()
	info, err := js.StreamInfo(stream, &nats.StreamInfoRequest{SubjectsFilter: filter})
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// Do sends method url to a test server, with token as the bearer token
// (none when "") and body as JSON (none when nil); header holds further
// name, value pairs. It returns the answer's status, header and body.
func Do(t testing.TB, method, url, token string, body any, header ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// Get is Do for a GET.
func Get(t testing.TB, url, token string) (int, http.Header, []byte) {
	t.Helper()
	return Do(t, http.MethodGet, url, token, nil)
}
