package eventbus_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
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
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(pgtest.Run(m))
}

// openDB opens a service's database with the consumer's "effects" table.
func openDB(t testing.TB, dbURL, dir, service string) *store.DB {
	t.Helper()
	db := svctest.OpenDB(t, dbURL, dir, service)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL, email TEXT NOT NULL, applied BIGINT)`); err != nil {
		t.Fatal(err)
	}
	return db
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

func technician(email string) *identityv1.TechnicianCreated {
	return &identityv1.TechnicianCreated{TechnicianId: "tech_" + email, Email: email}
}

func TestEventPublishedTwiceIsAppliedOnce(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		prod := svctest.StartProducer(t, w, dbURL, "identity")
		consDB := openDB(t, dbURL, w.Dir, "seatbilling")
		svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect}, func(b *eventbus.Bus) {
			eventbus.On(b, recordEffect)
		})

		ev := technician("twice@example.com")
		prod.Emit(t, "acc_test", ev)
		// The same event (same id) leaves the outbox a second time, as after a
		// relay crash between publish and delete: the stream's duplicate
		// window drops it.
		prod.Emit(t, "acc_test", ev)
		svctest.Eventually(t, "the outbox to drain", svctest.OutboxDrained(prod.Bus))
		if got := svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY"); got != 1 {
			t.Fatalf("stream holds %d messages, want 1 (Nats-Msg-Id dedup)", got)
		}
		// A copy that escapes the duplicate window (another Nats-Msg-Id, as
		// after the window expired): the consumer's inbox drops it.
		raw := nats.NewMsg(eventbus.Subject("roster.identity.v1.TechnicianCreated", "acc_test"))
		js := w.JS
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
		if got := svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY"); got != 2 {
			t.Fatalf("stream holds %d messages, want 2", got)
		}
		svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
		if n := countEffects(t, consDB, ""); n != 1 {
			t.Fatalf("event applied %d times, want 1", n)
		}
	})
}

func TestCloudEventsHeadersAndTrace(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	w := svctest.NewNATS(t)
	prod := svctest.StartProducer(t, w, "", "identity")
	consDB := openDB(t, "", w.Dir, "seatbilling")
	traces := make(chan trace.SpanContext, 1)
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect}, func(b *eventbus.Bus) {
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
			traces <- trace.SpanContextFromContext(ctx)
			return nil
		})
	})

	ctx, span := tp.Tracer("test").Start(context.Background(), "POST /v1/accounts/acc_test/technicians")
	ctx = eventbus.WithCorrelation(ctx, "corr-1")
	ev := technician("trace@example.com")
	if err := prod.DB.InTx(ctx, func(tx *sql.Tx) error { return prod.Bus.Emit(ctx, tx, "acc_test", ev) }); err != nil {
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
	js := w.JS
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
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		prod := svctest.StartProducer(t, w, dbURL, "identity")
		consDB := openDB(t, dbURL, w.Dir, "seatbilling")
		var mu sync.Mutex
		attempts := 0
		svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, MaxDeliver: 3, RetryBackoff: 500 * time.Millisecond},
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

		prod.Emit(t, "acc_test", technician("poison@example.com"))
		for i := range 5 {
			prod.Emit(t, "acc_test", technician(fmt.Sprintf("good%d@example.com", i)))
		}
		svctest.Eventually(t, "the good events to be applied", func() bool {
			return countEffects(t, consDB, "WHERE email LIKE 'good%'") == 5
		})
		// The poison event needs three deliveries 0.5 s and 1 s apart: had it
		// blocked the stream, the good events would still be waiting.
		if n := svctest.StreamMsgs(t, w.JS, "ROSTER_DEADLETTER"); n != 0 {
			t.Fatalf("poison dead-lettered before the good events were applied")
		}
		svctest.Eventually(t, "the poison event on the dead-letter subject", func() bool {
			return svctest.StreamMsgs(t, w.JS, "ROSTER_DEADLETTER") == 1
		})
		svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
		mu.Lock()
		if attempts != 3 {
			t.Errorf("poison handled %d times, want MaxDeliver = 3", attempts)
		}
		mu.Unlock()
		if n := countEffects(t, consDB, "WHERE email = 'poison@example.com'"); n != 0 {
			t.Errorf("failed handler left %d effects", n)
		}
		dls, err := eventbus.ListDeadLetters(w.NC, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 1 || dls[0].Consumer != "seatbilling_from_identity" || dls[0].Type != "roster.identity.v1.TechnicianCreated" ||
			dls[0].Error != "cannot apply this one" || dls[0].Deliveries != 3 {
			t.Fatalf("dead letters = %+v", dls)
		}
	})
}

// An event that fails until an earlier one arrives is not dead-lettered
// while that earlier one may still be redelivered: after a consumer is
// killed holding an event unacked, JetStream redelivers it only after
// AckWait, while the events behind it reach the restarted consumer at
// once. With the default MaxDeliver their retries span twice AckWait.
// Found by TestChaosAllInOne (issue 11): FirstLogin was dead-lettered by
// rolepolicy ("technician not found") and the role never applied.
func TestEventWaitingForAnEarlierOneOutlastsAckWait(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		prod := svctest.StartProducer(t, w, dbURL, "identity")
		consDB := openDB(t, dbURL, w.Dir, "seatbilling")
		const ackWait = 2 * time.Second
		var mu sync.Mutex
		var first time.Time
		svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, AckWait: ackWait, RetryBackoff: 50 * time.Millisecond},
			func(b *eventbus.Bus) {
				eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
					mu.Lock()
					defer mu.Unlock()
					if first.IsZero() {
						first = time.Now()
					}
					// The earlier event comes back one AckWait after the
					// crash, and a little more.
					if time.Since(first) < ackWait+500*time.Millisecond {
						return errors.New("technician not found")
					}
					return recordEffect(ctx, tx, ev)
				})
			})
		prod.Emit(t, "acc_test", technician("late@example.com"))
		svctest.Eventually(t, "the event applied", func() bool {
			return countEffects(t, consDB, "WHERE email = 'late@example.com'") == 1 ||
				svctest.StreamMsgs(t, w.JS, "ROSTER_DEADLETTER") != 0
		})
		if n := svctest.StreamMsgs(t, w.JS, "ROSTER_DEADLETTER"); n != 0 {
			t.Fatalf("dead-lettered after %v of retries, within the AckWait of %v", time.Since(first).Round(time.Millisecond), ackWait)
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
	batch, _ := strconv.Atoi(os.Getenv("CHILD_BATCH"))
	b, err := eventbus.New(eventbus.Config{Service: os.Getenv("CHILD_SERVICE"), DB: db, Connect: connect, AckWait: 2 * time.Second, Batch: batch})
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
		if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL, email TEXT NOT NULL, applied BIGINT)`); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = b.Run(ctx)
	}
	return 1
}

func runCrashingChild(t *testing.T, role, service, dbURL string, w *svctest.World, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "CHILD_DB="+dbURL, "CHILD_DIR="+w.Dir,
		"CHILD_SERVICE="+service, "CHILD_NATS="+w.ClientURL())
	cmd.Env = append(cmd.Env, env...)
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
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		runCrashingChild(t, "emit-and-die", "identity", dbURL, w)

		db := openDB(t, dbURL, w.Dir, "identity")
		if n := svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY"); n != 0 {
			t.Fatalf("stream has %d messages before the restart", n)
		}
		restarted := svctest.StartBus(t, eventbus.Config{Service: "identity", DB: db, Connect: w.Connect}, nil)
		svctest.Eventually(t, "the committed event to reach the stream", func() bool {
			return svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == 1
		})
		svctest.Eventually(t, "the outbox to drain", svctest.OutboxDrained(restarted))
	})
}

func TestConsumerKilledBeforeAckAppliesOnce(t *testing.T) {
	for _, role := range []string{"die-after-commit", "die-before-commit"} {
		t.Run(role, func(t *testing.T) {
			svctest.EachBackend(t, func(t *testing.T, dbURL string) {
				w := svctest.NewNATS(t)
				prod := svctest.StartProducer(t, w, dbURL, "identity")
				prod.Emit(t, "acc_test", technician("crash@example.com"))
				svctest.Eventually(t, "the event on the stream", func() bool { return svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == 1 })

				runCrashingChild(t, role, "seatbilling", dbURL, w)

				consDB := openDB(t, dbURL, w.Dir, "seatbilling")
				want := map[string]int{"die-after-commit": 1, "die-before-commit": 0}[role]
				if n := countEffects(t, consDB, ""); n != want {
					t.Fatalf("after the crash: %d effects, want %d", n, want)
				}
				js := w.JS
				info, err := js.ConsumerInfo("ROSTER_IDENTITY", "seatbilling_from_identity")
				if err != nil || info.NumAckPending != 1 {
					t.Fatalf("the dead consumer's event should be unacknowledged: %+v %v", info, err)
				}
				svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, AckWait: 2 * time.Second}, func(b *eventbus.Bus) {
					eventbus.On(b, recordEffect)
				})
				svctest.Eventually(t, "redelivery to be acknowledged", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
				if n := countEffects(t, consDB, ""); n != 1 {
					t.Fatalf("event applied %d times, want exactly 1", n)
				}
			})
		})
	}
}

// A batch consumer killed after its batch's commit and before the acks,
// or inside the batch's transaction, applies every event exactly once
// after a restart: the inbox drops the committed ones when they come again.
func TestBatchConsumerKilledMidBatchAppliesOnce(t *testing.T) {
	for _, role := range []string{"die-after-commit", "die-before-commit"} {
		t.Run(role, func(t *testing.T) {
			svctest.EachBackend(t, func(t *testing.T, dbURL string) {
				w := svctest.NewNATS(t)
				prod := svctest.StartProducer(t, w, dbURL, "identity")
				var evs []eventbus.Event
				for j := range 20 {
					evs = append(evs, technician(fmt.Sprintf("k%02d@example.com", j)))
				}
				prod.Emit(t, "acc_test", evs...)
				svctest.Eventually(t, "the events on the stream", func() bool { return svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == 20 })

				runCrashingChild(t, role, "seatbilling", dbURL, w, "CHILD_BATCH=16")

				consDB := openDB(t, dbURL, w.Dir, "seatbilling")
				n := countEffects(t, consDB, "")
				if (role == "die-after-commit") != (n > 1) {
					t.Fatalf("after the crash: %d effects", n)
				}
				svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, AckWait: 2 * time.Second, Batch: 16},
					func(b *eventbus.Bus) { eventbus.On(b, recordEffect) })
				svctest.Eventually(t, "every event applied", func() bool { return countEffects(t, consDB, "") >= 20 })
				svctest.Eventually(t, "redeliveries acknowledged", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
				if n := countEffects(t, consDB, ""); n != 20 {
					t.Fatalf("%d effects, want each of the 20 events once", n)
				}
				var dup int
				if err := consDB.QueryRow(`SELECT count(*) FROM (SELECT event_id FROM effects GROUP BY event_id HAVING count(*) > 1) d`).Scan(&dup); err != nil || dup != 0 {
					t.Fatalf("%d events applied twice (%v)", dup, err)
				}
			})
		})
	}
}
