package eventbus_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/natsembed"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(pgtest.Run(m))
}

// backend is a database flavour the bus is tested on.
type backend struct {
	name string
	// url returns the --db value for a new, empty database ("" = SQLite).
	url func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
}

func eachBackend(t *testing.T, fn func(t *testing.T, dbURL string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.url(t)) })
	}
}

// world is one embedded NATS server with Roster's streams.
type world struct {
	ns  *natsembed.Server
	dir string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	ns, err := natsembed.Start(natsembed.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc := mustConnect(t, ns)
	js, _ := nc.JetStream()
	if err := eventbus.EnsureStreams(js, eventbus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return &world{ns: ns, dir: dir}
}

func mustConnect(t *testing.T, ns *natsembed.Server) *nats.Conn {
	t.Helper()
	nc, err := ns.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func openDB(t testing.TB, dbURL, dir, service string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: dbURL, DataDir: dir, Service: service})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL, email TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

type busOpts struct {
	maxDeliver int
	backoff    time.Duration
	ackWait    time.Duration
}

// startBus runs a bus until the test ends and waits until it is ready.
func startBus(t *testing.T, connect func(string) (*nats.Conn, error), db *store.DB, service string, o busOpts, register func(*eventbus.Bus)) *eventbus.Bus {
	t.Helper()
	b, err := eventbus.New(eventbus.Config{Service: service, DB: db, Connect: connect,
		MaxDeliver: o.maxDeliver, RetryBackoff: o.backoff, AckWait: o.ackWait})
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
			t.Errorf("bus %s: %v", service, err)
		}
	})
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatalf("bus %s stopped: %v", service, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("bus %s not ready", service)
	}
	return b
}

// recordEffect is the consumer's "effect": one row per application.
func recordEffect(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO effects (event_id, email) VALUES ($1, $2)`, ev.GetMeta().GetEventId(), ev.GetEmail())
	return err
}

func countEffects(t testing.TB, db *store.DB, where string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM effects `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func emit(t testing.TB, b *eventbus.Bus, db *store.DB, evs ...eventbus.Event) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		return b.Emit(context.Background(), tx, "acc_test", evs...)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds (20 s at most).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func consumerSettled(t testing.TB, nc *nats.Conn, stream, consumer string) func() bool {
	js, _ := nc.JetStream()
	return func() bool {
		info, err := js.ConsumerInfo(stream, consumer)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	}
}

func streamMsgs(t testing.TB, nc *nats.Conn, stream string) uint64 {
	t.Helper()
	js, _ := nc.JetStream()
	info, err := js.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func technician(email string) *identityv1.TechnicianCreated {
	return &identityv1.TechnicianCreated{TechnicianId: "tech_" + email, Email: email}
}

func TestEventPublishedTwiceIsAppliedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t)
		nc := mustConnect(t, w.ns)
		prodDB := openDB(t, dbURL, w.dir, "identity")
		consDB := openDB(t, dbURL, w.dir, "seatbilling")
		prod := startBus(t, w.ns.Connect, prodDB, "identity", busOpts{}, nil)
		startBus(t, w.ns.Connect, consDB, "seatbilling", busOpts{}, func(b *eventbus.Bus) {
			eventbus.On(b, recordEffect)
		})

		ev := technician("twice@example.com")
		emit(t, prod, prodDB, ev)
		// The same event (same id) leaves the outbox a second time, as after a
		// relay crash between publish and delete: the stream's duplicate
		// window drops it.
		emit(t, prod, prodDB, ev)
		eventually(t, "the outbox to drain", func() bool { n, _ := prod.Outbox().Pending(context.Background()); return n == 0 })
		if got := streamMsgs(t, nc, "ROSTER_IDENTITY"); got != 1 {
			t.Fatalf("stream holds %d messages, want 1 (Nats-Msg-Id dedup)", got)
		}
		// A copy that escapes the duplicate window (another Nats-Msg-Id, as
		// after the window expired): the consumer's inbox drops it.
		raw := nats.NewMsg(eventbus.Subject("roster.identity.v1.TechnicianCreated", "acc_test"))
		js, _ := nc.JetStream()
		sm, err := js.GetLastMsg("ROSTER_IDENTITY", "roster.events.identity.>")
		if err != nil {
			t.Fatal(err)
		}
		raw.Header = sm.Header
		raw.Header.Set(nats.MsgIdHdr, "another-id")
		raw.Data = sm.Data
		if _, err := js.PublishMsg(raw); err != nil {
			t.Fatal(err)
		}
		if got := streamMsgs(t, nc, "ROSTER_IDENTITY"); got != 2 {
			t.Fatalf("stream holds %d messages, want 2", got)
		}
		eventually(t, "the consumer to settle", consumerSettled(t, nc, "ROSTER_IDENTITY", "seatbilling_from_identity"))
		if n := countEffects(t, consDB, ""); n != 1 {
			t.Fatalf("event applied %d times, want 1", n)
		}
	})
}

func TestCloudEventsHeadersAndTrace(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	w := newWorld(t)
	nc := mustConnect(t, w.ns)
	prodDB := openDB(t, "", w.dir, "identity")
	consDB := openDB(t, "", w.dir, "seatbilling")
	prod := startBus(t, w.ns.Connect, prodDB, "identity", busOpts{}, nil)
	traces := make(chan trace.SpanContext, 1)
	startBus(t, w.ns.Connect, consDB, "seatbilling", busOpts{}, func(b *eventbus.Bus) {
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
			traces <- trace.SpanContextFromContext(ctx)
			return nil
		})
	})

	ctx, span := tp.Tracer("test").Start(context.Background(), "POST /v1/accounts/acc_test/technicians")
	ctx = eventbus.WithCorrelation(ctx, "corr-1")
	ev := technician("trace@example.com")
	if err := prodDB.InTx(ctx, func(tx *sql.Tx) error { return prod.Emit(ctx, tx, "acc_test", ev) }); err != nil {
		t.Fatal(err)
	}
	span.End()

	select {
	case got := <-traces:
		if got.TraceID() != span.SpanContext().TraceID() {
			t.Fatalf("consumer span in trace %s, want the request's trace %s", got.TraceID(), span.SpanContext().TraceID())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("event not consumed")
	}
	js, _ := nc.JetStream()
	sm, err := js.GetLastMsg("ROSTER_IDENTITY", "roster.events.identity.acc_test.technician_created")
	if err != nil {
		t.Fatal(err)
	}
	meta := ev.GetMeta()
	want := map[string]string{
		"ce-specversion": "1.0",
		"ce-id":          meta.GetEventId(),
		"ce-type":        "roster.identity.v1.TechnicianCreated",
		"ce-source":      "roster/identity",
		"ce-subject":     "acc_test",
		"content-type":   "application/protobuf",
		nats.MsgIdHdr:    meta.GetEventId(),
	}
	for k, v := range want {
		if got := sm.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if sm.Header.Get("ce-time") == "" || sm.Header.Get("traceparent") == "" {
		t.Errorf("ce-time or traceparent missing: %v", sm.Header)
	}
	if meta.GetCorrelationId() != "corr-1" || meta.GetAccountId() != "acc_test" || meta.GetOccurredAt() == nil {
		t.Errorf("meta not stamped: %v", meta)
	}
}

func TestPoisonEventIsDeadLetteredWithoutBlockingOthers(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t)
		nc := mustConnect(t, w.ns)
		prodDB := openDB(t, dbURL, w.dir, "identity")
		consDB := openDB(t, dbURL, w.dir, "seatbilling")
		prod := startBus(t, w.ns.Connect, prodDB, "identity", busOpts{}, nil)
		var mu sync.Mutex
		attempts := 0
		startBus(t, w.ns.Connect, consDB, "seatbilling", busOpts{maxDeliver: 3, backoff: 500 * time.Millisecond},
			func(b *eventbus.Bus) {
				eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
					if ev.GetEmail() == "poison@example.com" {
						mu.Lock()
						attempts++
						mu.Unlock()
						// Its effects must roll back with the failure.
						if err := recordEffect(ctx, tx, ev); err != nil {
							return err
						}
						return errors.New("cannot apply this one")
					}
					return recordEffect(ctx, tx, ev)
				})
			})

		emit(t, prod, prodDB, technician("poison@example.com"))
		for i := range 5 {
			emit(t, prod, prodDB, technician(fmt.Sprintf("good%d@example.com", i)))
		}
		eventually(t, "the good events to be applied", func() bool {
			return countEffects(t, consDB, "WHERE email LIKE 'good%'") == 5
		})
		// The poison event needs three deliveries 0.5 s and 1 s apart: had it
		// blocked the stream, the good events would still be waiting.
		if n := streamMsgs(t, nc, "ROSTER_DEADLETTER"); n != 0 {
			t.Fatalf("poison dead-lettered before the good events were applied")
		}
		eventually(t, "the poison event on the dead-letter subject", func() bool {
			return streamMsgs(t, nc, "ROSTER_DEADLETTER") == 1
		})
		eventually(t, "the consumer to settle", func() bool {
			js, _ := nc.JetStream()
			info, err := js.ConsumerInfo("ROSTER_IDENTITY", "seatbilling_from_identity")
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		})
		mu.Lock()
		if attempts != 3 {
			t.Errorf("poison handled %d times, want MaxDeliver = 3", attempts)
		}
		mu.Unlock()
		if n := countEffects(t, consDB, "WHERE email = 'poison@example.com'"); n != 0 {
			t.Errorf("failed handler left %d effects", n)
		}
		dls, err := eventbus.ListDeadLetters(nc, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 1 || dls[0].Consumer != "seatbilling_from_identity" || dls[0].Type != "roster.identity.v1.TechnicianCreated" ||
			dls[0].Error != "cannot apply this one" || dls[0].Deliveries != 3 {
			t.Fatalf("dead letters = %+v", dls)
		}
	})
}

// Crash tests run a second copy of this test binary as the process that
// dies; childEnv tells it which part to play.
const childEnv = "ROSTER_EVENTBUS_CHILD"

func runChild() int {
	ctx := context.Background()
	role := os.Getenv(childEnv)
	db, err := store.Open(ctx, store.Config{URL: os.Getenv("CHILD_DB"), DataDir: os.Getenv("CHILD_DIR"), Service: os.Getenv("CHILD_SERVICE")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	connect := natsembed.Connector(os.Getenv("CHILD_NATS"))
	b, err := eventbus.New(eventbus.Config{Service: os.Getenv("CHILD_SERVICE"), DB: db, Connect: connect, AckWait: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch role {
	case "emit-and-die":
		// Commit an event to the outbox, then die before the relay runs.
		if err := b.Init(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			return b.Emit(ctx, tx, "acc_test", technician("outbox@example.com"))
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Exit(3)
	case "die-after-commit", "die-before-commit":
		eventbus.SetAfterCommit(b, func(string) {
			if role == "die-after-commit" {
				os.Exit(3)
			}
		})
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
			if err := recordEffect(ctx, tx, ev); err != nil {
				return err
			}
			if role == "die-before-commit" {
				os.Exit(3)
			}
			return nil
		})
		if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL, email TEXT NOT NULL)`); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = b.Run(ctx)
	}
	return 1
}

func runCrashingChild(t *testing.T, role, service, dbURL string, w *world) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "CHILD_DB="+dbURL, "CHILD_DIR="+w.dir,
		"CHILD_SERVICE="+service, "CHILD_NATS="+w.ns.ClientURL())
	cmd.Stderr = os.Stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("child %s ended with %v, want exit status 3 (killed at the chosen instant)", role, err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("child %s did not die", role)
	}
}

func TestOutboxEntrySurvivesCrashBeforePublish(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t)
		nc := mustConnect(t, w.ns)
		runCrashingChild(t, "emit-and-die", "identity", dbURL, w)

		db := openDB(t, dbURL, w.dir, "identity")
		if n := streamMsgs(t, nc, "ROSTER_IDENTITY"); n != 0 {
			t.Fatalf("stream has %d messages before the restart", n)
		}
		restarted := startBus(t, w.ns.Connect, db, "identity", busOpts{}, nil)
		eventually(t, "the committed event to reach the stream", func() bool {
			return streamMsgs(t, nc, "ROSTER_IDENTITY") == 1
		})
		eventually(t, "the outbox to drain", func() bool {
			n, _ := restarted.Outbox().Pending(context.Background())
			return n == 0
		})
	})
}

func TestConsumerKilledBeforeAckAppliesOnce(t *testing.T) {
	for _, role := range []string{"die-after-commit", "die-before-commit"} {
		t.Run(role, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, dbURL string) {
				w := newWorld(t)
				nc := mustConnect(t, w.ns)
				prodDB := openDB(t, dbURL, w.dir, "identity")
				prod := startBus(t, w.ns.Connect, prodDB, "identity", busOpts{}, nil)
				emit(t, prod, prodDB, technician("crash@example.com"))
				eventually(t, "the event on the stream", func() bool { return streamMsgs(t, nc, "ROSTER_IDENTITY") == 1 })

				runCrashingChild(t, role, "seatbilling", dbURL, w)

				consDB := openDB(t, dbURL, w.dir, "seatbilling")
				want := map[string]int{"die-after-commit": 1, "die-before-commit": 0}[role]
				if n := countEffects(t, consDB, ""); n != want {
					t.Fatalf("after the crash: %d effects, want %d", n, want)
				}
				js, _ := nc.JetStream()
				info, err := js.ConsumerInfo("ROSTER_IDENTITY", "seatbilling_from_identity")
				if err != nil || info.NumAckPending != 1 {
					t.Fatalf("the dead consumer's event should be unacknowledged: %+v %v", info, err)
				}
				startBus(t, w.ns.Connect, consDB, "seatbilling", busOpts{ackWait: 2 * time.Second}, func(b *eventbus.Bus) {
					eventbus.On(b, recordEffect)
				})
				eventually(t, "redelivery to be acknowledged", func() bool {
					info, err := js.ConsumerInfo("ROSTER_IDENTITY", "seatbilling_from_identity")
					return err == nil && info.NumAckPending == 0 && info.NumPending == 0
				})
				if n := countEffects(t, consDB, ""); n != 1 {
					t.Fatalf("event applied %d times, want exactly 1", n)
				}
			})
		})
	}
}
