package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/natsembed"
	"roster.dev/pkg/outbox"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// childEnv makes this test binary play the relay that dies
// (runChild).
const childEnv = "ROSTER_OUTBOX_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(pgtest.Run(m))
}

func technician(email string) *identityv1.TechnicianCreated {
	return &identityv1.TechnicianCreated{TechnicianId: "tech_" + email, Email: email}
}

// startProducer runs identity's bus on db whose relay polls once an
// hour: only a Kick sends what a test emits.
func startProducer(t *testing.T, w *svctest.World, db *store.DB, tune func(*outbox.Outbox)) *eventbus.Bus {
	t.Helper()
	return svctest.StartBus(t, eventbus.Config{Service: "identity", DB: db, Connect: w.Connect}, func(b *eventbus.Bus) {
		b.Outbox().PollInterval = time.Hour
		if tune != nil {
			tune(b.Outbox())
		}
	})
}

func emit(t *testing.T, db *store.DB, b *eventbus.Bus, events ...eventbus.Event) {
	t.Helper()
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return b.Emit(ctx, tx, "acc_test", events...) }); err != nil {
		t.Fatal(err)
	}
}

// streamed subscribes to what the stream of identity's events stores, from
// now on (a JetStream ordered consumer: a message arrives once stored).
func streamed(t *testing.T, w *svctest.World) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 1024)
	sub, err := w.JS.ChanSubscribe(eventbus.EventSubjects("identity"), ch, nats.OrderedConsumer(), nats.DeliverNew())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

func next(t *testing.T, ch <-chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("nothing reached the stream in 20 s")
		return nil
	}
}

// A committed event reaches the stream because its commit kicked the
// relay: the relay's poll is an hour away.
func TestKickSendsWithoutWaitingForThePoll(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		db := svctest.OpenDB(t, dbURL, w.Dir, "identity")
		prod := startProducer(t, w, db, nil)
		ch := streamed(t, w)
		for i := range 3 {
			ev := technician(fmt.Sprintf("kick%d@example.com", i))
			emit(t, db, prod, ev)
			m := next(t, ch)
			if got, want := m.Header.Get(nats.MsgIdHdr), ev.GetMeta().GetEventId(); got != want {
				t.Fatalf("stream got %s, want event %s", got, want)
			}
		}
		svctest.Eventually(t, "the outbox to drain", svctest.OutboxDrained(prod))
	})
}

// Rows go to the stream in the order they were written, across batches.
func TestRelayKeepsOrderAcrossBatches(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		db := svctest.OpenDB(t, dbURL, w.Dir, "identity")
		prod := startProducer(t, w, db, func(o *outbox.Outbox) { o.BatchSize = 50 })
		ch := streamed(t, w)
		var ids []string
		for tx := range 3 {
			var evs []eventbus.Event
			for i := range 70 {
				evs = append(evs, technician(fmt.Sprintf("order%d-%d@example.com", tx, i)))
			}
			emit(t, db, prod, evs...)
			for _, ev := range evs {
				ids = append(ids, ev.GetMeta().GetEventId())
			}
		}
		for n, want := range ids {
			if got := next(t, ch).Header.Get(nats.MsgIdHdr); got != want {
				t.Fatalf("message %d on the stream is %s, want %s", n, got, want)
			}
		}
		svctest.Eventually(t, "the outbox to drain", svctest.OutboxDrained(prod))
	})
}

// A publish that fails keeps its row, the rows acknowledged beside it are
// deleted, and the relay retries the failed one with backoff until the
// stream takes it.
func TestFailedPublishKeepsItsRowAndIsRetried(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		db := svctest.OpenDB(t, dbURL, w.Dir, "identity")
		prod := startProducer(t, w, db, nil)
		ctx := context.Background()
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			// No stream holds roster.later.>, yet.
			if err := prod.Outbox().Add(tx, "roster.later.x", message.NewMessage("later-1", []byte("later"))); err != nil {
				return err
			}
			return prod.Emit(ctx, tx, "acc_test", technician("beside@example.com"))
		})
		if err != nil {
			t.Fatal(err)
		}
		svctest.Eventually(t, "the event beside the failed row on the stream, its row deleted", func() bool {
			n, err := prod.Outbox().Pending(ctx)
			return err == nil && n == 1 && svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == 1
		})
		if _, err := w.JS.AddStream(&nats.StreamConfig{Name: "LATER", Subjects: []string{"roster.later.>"}}); err != nil {
			t.Fatal(err)
		}
		svctest.Eventually(t, "the retried row on the new stream", func() bool {
			return svctest.StreamMsgs(t, w.JS, "LATER") == 1
		})
		svctest.Eventually(t, "the outbox to drain", svctest.OutboxDrained(prod))
		m, err := w.JS.GetLastMsg("LATER", "roster.later.x")
		if err != nil || string(m.Data) != "later" || m.Header.Get(nats.MsgIdHdr) != "later-1" {
			t.Fatalf("retried message: %+v %v", m, err)
		}
	})
}

// oldRow is a row of the watermill outbox (head 22ee28f: watermill's
// forwarder envelope written by watermill-sql's publisher) and the
// message the watermill relay put on the stream for it.
type oldRow struct {
	Row struct {
		UUID     string `json:"uuid"`
		Payload  string `json:"payload"`
		Metadata string `json:"metadata"`
	} `json:"row"`
	Published struct {
		Subject string      `json:"subject"`
		Header  nats.Header `json:"header"`
		Data    []byte      `json:"data"`
	} `json:"published"`
}

// A row left in the outbox by the watermill relay is sent after the
// upgrade as that relay sent it, and its consumer applies it.
func TestRowOfTheWatermillOutboxIsRelayed(t *testing.T) {
	raw, err := os.ReadFile("testdata/watermill-row.json")
	if err != nil {
		t.Fatal(err)
	}
	var old oldRow
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		db := svctest.OpenDB(t, dbURL, w.Dir, "identity")
		if err := outbox.New(db, nil).Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO roster_outbox (uuid, payload, metadata) VALUES ($1, $2, $3)`,
			old.Row.UUID, []byte(old.Row.Payload), old.Row.Metadata); err != nil {
			t.Fatal(err)
		}
		applied := make(chan *identityv1.TechnicianCreated, 1)
		svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: svctest.OpenDB(t, dbURL, w.Dir, "seatbilling"), Connect: w.Connect},
			func(b *eventbus.Bus) {
				eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
					applied <- ev
					return nil
				})
			})
		prod := startProducer(t, w, db, nil)
		select {
		case ev := <-applied:
			if ev.GetEmail() != "old-envelope@example.com" || ev.GetMeta().GetEventId() != old.Published.Header.Get(nats.MsgIdHdr) {
				t.Fatalf("applied %v", ev)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the old row's event was not applied")
		}
		svctest.Eventually(t, "the outbox to drain", svctest.OutboxDrained(prod))
		m, err := w.JS.GetLastMsg("ROSTER_IDENTITY", eventbus.EventSubjects("identity"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != old.Published.Subject || string(m.Data) != string(old.Published.Data) {
			t.Errorf("sent %s %x, the watermill relay sent %s %x", m.Subject, m.Data, old.Published.Subject, old.Published.Data)
		}
		for k, v := range old.Published.Header {
			if got := m.Header.Values(k); len(got) != 1 || got[0] != v[0] {
				t.Errorf("header %s = %q, the watermill relay sent %q", k, got, v)
			}
		}
		for k := range m.Header {
			if _, ok := old.Published.Header[k]; !ok {
				t.Errorf("header %s, which the watermill relay did not send", k)
			}
		}
	})
}

// A relay killed after JetStream acknowledged a batch and before it
// deleted the rows sends them again after the restart; the stream drops
// the copy and the consumer applies the event once.
func TestRelayKilledBetweenAckAndDeleteSendsAgain(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		runChild := exec.Command(os.Args[0], "-test.run=^$")
		runChild.Env = append(os.Environ(), childEnv+"=ack-and-die", "CHILD_DB="+dbURL, "CHILD_DIR="+w.Dir, "CHILD_NATS="+w.ClientURL())
		runChild.Stderr = os.Stderr
		if err := runChild.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- runChild.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("child ended with %v, want exit status 3 (killed between ack and delete)", err)
			}
		case <-time.After(60 * time.Second):
			_ = runChild.Process.Kill()
			t.Fatal("child did not die")
		}

		db := svctest.OpenDB(t, dbURL, w.Dir, "identity")
		if n := svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY"); n != 1 {
			t.Fatalf("stream holds %d messages after the crash, want 1", n)
		}
		ctx := context.Background()
		if n, err := outbox.New(db, nil).Pending(ctx); err != nil || n != 1 {
			t.Fatalf("outbox holds %d rows after the crash (%v), want the acknowledged one still", n, err)
		}
		// A core subscription sees every publish, the copies the stream drops
		// included.
		sent, err := w.NC.SubscribeSync(eventbus.EventSubjects("identity"))
		if err != nil {
			t.Fatal(err)
		}
		consDB := svctest.OpenDB(t, dbURL, w.Dir, "seatbilling")
		if _, err := consDB.Exec(`CREATE TABLE effects (event_id TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect}, func(b *eventbus.Bus) {
			eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO effects (event_id) VALUES ($1)`, ev.GetMeta().GetEventId())
				return err
			})
		})
		restarted := startProducer(t, w, db, nil)
		m, err := sent.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("the row was not sent again: %v", err)
		}
		svctest.Eventually(t, "the outbox to drain", svctest.OutboxDrained(restarted))
		svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
		if n := svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY"); n != 1 {
			t.Fatalf("stream holds %d messages, want 1 (the copy dropped by Nats-Msg-Id)", n)
		}
		var n int
		if err := consDB.QueryRow(`SELECT count(*) FROM effects WHERE event_id = $1`, m.Header.Get(nats.MsgIdHdr)).Scan(&n); err != nil || n != 1 {
			t.Fatalf("event applied %d times (%v), want once", n, err)
		}
	})
}

// runChild plays identity's bus that emits one event and dies once
// JetStream acknowledged it, before its row is deleted.
func runChild() int {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: os.Getenv("CHILD_DB"), DataDir: os.Getenv("CHILD_DIR"), Service: "identity"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, err := eventbus.New(eventbus.Config{Service: "identity", DB: db, Connect: natsembed.Connector(os.Getenv("CHILD_NATS"))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	outbox.SetAfterAck(b.Outbox(), func() { os.Exit(3) })
	if err := b.Init(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return b.Emit(ctx, tx, "acc_test", technician("twice@example.com")) }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = b.Run(ctx)
	return 1
}

// An outbox table created by watermill-sql (offset SERIAL, 32 bits) gets
// a 64-bit offset, its rows kept.
func TestInitWidensTheOffsetOfAWatermillTable(t *testing.T) {
	db := svctest.OpenDB(t, pgtest.DSN(t), t.TempDir(), "identity")
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE roster_outbox ("offset" SERIAL PRIMARY KEY, "uuid" VARCHAR(36) NOT NULL,
		"payload" BYTEA DEFAULT NULL, "metadata" JSON DEFAULT NULL, "acked" BOOLEAN NOT NULL DEFAULT FALSE,
		"created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO roster_outbox (uuid, payload, metadata) VALUES ('kept', '\x00', '{}')`); err != nil {
		t.Fatal(err)
	}
	o := outbox.New(db, nil)
	for range 2 { // a second start finds it done
		if err := o.Init(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var col, seq string
	if err := db.QueryRow(`SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
		AND table_name = 'roster_outbox' AND column_name = 'offset'`).Scan(&col); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT data_type FROM information_schema.sequences WHERE sequence_schema = current_schema()
		AND sequence_name = 'roster_outbox_offset_seq'`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if col != "bigint" || seq != "bigint" {
		t.Fatalf("offset column %s, sequence %s; want bigint", col, seq)
	}
	if _, err := db.Exec(`SELECT setval('roster_outbox_offset_seq', 3000000000)`); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		return o.Add(tx, "roster.events.identity.acc_test.technician_created", message.NewMessage("big", []byte("x")))
	}); err != nil {
		t.Fatalf("a row past 2^31: %v", err)
	}
	if n, err := o.Pending(ctx); err != nil || n != 2 {
		t.Fatalf("%d rows (%v), want the kept one and the new one", n, err)
	}
}

// Writers in more concurrent transactions than the pool has connections
// all add their rows: Add never waits for a connection of its own (it once
// prepared its statement on one, and the transactions holding them all
// waited for each other; found by services/audit/adapters' tests).
func TestConcurrentWritersAdd(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		db := svctest.OpenDB(t, dbURL, t.TempDir(), "identity")
		o := outbox.New(db, nil)
		ctx := context.Background()
		if err := o.Init(ctx); err != nil {
			t.Fatal(err)
		}
		const writers, each = 12, 10
		errs := make(chan error, writers*each)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					errs <- db.InTx(ctx, func(tx *sql.Tx) error {
						return o.Add(tx, "roster.events.identity.acc_test.technician_created", message.NewMessage(fmt.Sprintf("w%d-%d", w, i), []byte("x")))
					})
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("writers still blocked after 60 s")
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n, err := o.Pending(ctx); err != nil || n != writers*each {
			t.Fatalf("%d rows (%v), want %d", n, err, writers*each)
		}
	})
}

// The relays of two replicas on one outbox table (PostgreSQL, or one
// SQLite file) send every row of both, each event stored once.
func TestRelaysOfReplicasShareTheTable(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		var dbs []*store.DB
		var buses []*eventbus.Bus
		for range 2 {
			db := svctest.OpenDB(t, dbURL, w.Dir, "identity")
			dbs = append(dbs, db)
			buses = append(buses, startProducer(t, w, db, func(o *outbox.Outbox) { o.BatchSize = 16 }))
		}
		const txs, perTx = 10, 20
		var wg sync.WaitGroup
		for r := range buses {
			wg.Go(func() {
				for i := range txs {
					var evs []eventbus.Event
					for j := range perTx {
						evs = append(evs, technician(fmt.Sprintf("r%d-%d-%d@example.com", r, i, j)))
					}
					ctx := context.Background()
					if err := dbs[r].InTx(ctx, func(tx *sql.Tx) error { return buses[r].Emit(ctx, tx, "acc_test", evs...) }); err != nil {
						t.Error(err) // not Fatal: this is not the test's goroutine
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		svctest.Eventually(t, "both outboxes to drain", svctest.OutboxDrained(buses...))
		if n := svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY"); n != 2*txs*perTx {
			t.Fatalf("stream holds %d events, want %d", n, 2*txs*perTx)
		}
	})
}
