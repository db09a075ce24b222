package eventbus_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/inbox"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// applications numbers the effects in the order they were applied (a
// rolled-back application leaves a gap): a table has no order of its own.
var applications atomic.Int64

// batchEffect records an effect, numbered, and the transaction it ran in.
func batchEffect(txs *sync.Map) eventbus.Handler[*identityv1.TechnicianCreated] {
	return func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
		txs.Store(fmt.Sprintf("%p", tx), true)
		_, err := tx.ExecContext(ctx, `INSERT INTO effects (event_id, email, applied) VALUES ($1, $2, $3)`,
			ev.GetMeta().GetEventId(), ev.GetEmail(), applications.Add(1))
		return err
	}
}

// Config.Batch: a burst of events is applied in far fewer transactions
// than events, each event exactly once and in stream order; on both
// databases.
func TestBatchConsumerAppliesEachEventOnceInOrder(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		prod := svctest.StartProducer(t, w, dbURL, "identity")
		const n = 600
		for i := 0; i < n; i += 50 {
			var evs []eventbus.Event
			for j := i; j < i+50; j++ {
				evs = append(evs, technician(fmt.Sprintf("b%04d@example.com", j)))
			}
			prod.Emit(t, "acc_test", evs...)
		}
		svctest.Eventually(t, "the burst on the stream", func() bool { return svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == n })

		consDB := openDB(t, dbURL, w.Dir, "seatbilling")
		var txs sync.Map
		svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: 64}, func(b *eventbus.Bus) {
			eventbus.On(b, batchEffect(&txs))
		})
		svctest.Eventually(t, "every event applied", func() bool { return countEffects(t, consDB, "") >= n })
		svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
		if got := countEffects(t, consDB, ""); got != n {
			t.Fatalf("%d effects, want %d", got, n)
		}
		rows, err := consDB.Query(`SELECT email FROM effects ORDER BY email`)
		if err != nil {
			t.Fatal(err)
		}
		var sorted []string
		for rows.Next() {
			var e string
			_ = rows.Scan(&e)
			sorted = append(sorted, e)
		}
		rows.Close()
		// Stream order: the effects table was filled in emission order.
		ordered, err := consDB.Query(`SELECT email FROM effects ORDER BY applied`)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for ordered.Next() {
			var e string
			_ = ordered.Scan(&e)
			if e != sorted[i] {
				t.Fatalf("effect %d is %s, want %s (stream order)", i, e, sorted[i])
			}
			i++
		}
		ordered.Close()
		commits := 0
		txs.Range(func(any, any) bool { commits++; return true })
		if commits > n/8 {
			t.Fatalf("%d events took %d transactions: not batched", n, commits)
		}
		t.Logf("%d events in %d transactions", n, commits)
	})
}

// A failing event in a batch does not fail the others: the batch falls
// back to one transaction per event, the others are applied once, and the
// failing one goes to the dead-letter subject after its deliveries.
func TestBatchWithAPoisonEvent(t *testing.T) {
	w := svctest.NewNATS(t)
	prod := svctest.StartProducer(t, w, "", "identity")
	var evs []eventbus.Event
	for j := range 40 {
		evs = append(evs, technician(fmt.Sprintf("p%02d@example.com", j)))
	}
	prod.Emit(t, "acc_test", evs...)
	svctest.Eventually(t, "the events on the stream", func() bool { return svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == 40 })
	consDB := openDB(t, "", w.Dir, "seatbilling")
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: 16,
		MaxDeliver: 3, RetryBackoff: 10 * time.Millisecond}, func(b *eventbus.Bus) {
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
			if ev.GetEmail() == "p17@example.com" {
				return errors.New("cannot apply this one")
			}
			return recordEffect(ctx, tx, ev)
		})
	})
	svctest.Eventually(t, "the poison event dead-lettered", func() bool {
		return svctest.StreamMsgs(t, w.JS, "ROSTER_DEADLETTER") == 1
	})
	svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
	if n := countEffects(t, consDB, ""); n != 39 {
		t.Fatalf("%d effects, want the 39 good events once each", n)
	}
	if n := countEffects(t, consDB, "WHERE email = 'p17@example.com'"); n != 0 {
		t.Fatalf("the poison event left %d effects", n)
	}
}

// An install whose consumer is a push consumer (the versions that consumed
// through watermill-nats) goes on where it stopped once the pull consumer
// takes over: the events applied and acked are not delivered again, those
// applied and not yet acked come again and the inbox drops them, nothing is
// skipped.
func TestPullConsumerTakesOverThePushConsumer(t *testing.T) {
	w := svctest.NewNATS(t)
	prod := svctest.StartProducer(t, w, "", "identity")
	consDB := openDB(t, "", w.Dir, "seatbilling")
	name := eventbus.ConsumerName("seatbilling", "identity")
	if err := inbox.Init(context.Background(), consDB); err != nil {
		t.Fatal(err)
	}
	for j := range 30 {
		prod.Emit(t, "acc_test", technician(fmt.Sprintf("t%02d@example.com", j)))
	}
	svctest.Eventually(t, "the first events on the stream", func() bool { return svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == 30 })

	// The push consumer as the old versions created it; it applied 25
	// events and acked 20 of them when the service stopped.
	_, err := w.JS.AddConsumer("ROSTER_IDENTITY", &nats.ConsumerConfig{
		Durable: name, DeliverSubject: "roster.deliver." + name, DeliverGroup: name,
		FilterSubject: "roster.events.identity.>", DeliverPolicy: nats.DeliverAllPolicy,
		AckPolicy: nats.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 1024,
	})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := w.NC.QueueSubscribeSync("roster.deliver."+name, name)
	if err != nil {
		t.Fatal(err)
	}
	for j := range 25 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ev := &identityv1.TechnicianCreated{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Fatal(err)
		}
		err = consDB.InTx(context.Background(), func(tx *sql.Tx) error {
			if _, err := inbox.Claim(context.Background(), tx, name, ev.GetMeta().GetEventId()); err != nil {
				return err
			}
			return recordEffect(context.Background(), tx, ev)
		})
		if err != nil {
			t.Fatal(err)
		}
		if j < 20 {
			if err := m.AckSync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}

	for j := 30; j < 80; j++ {
		prod.Emit(t, "acc_test", technician(fmt.Sprintf("t%02d@example.com", j)))
	}
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: 32}, func(b *eventbus.Bus) {
		eventbus.On(b, recordEffect)
	})
	svctest.Eventually(t, "the rest applied", func() bool { return countEffects(t, consDB, "") >= 80 })
	svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
	if n := countEffects(t, consDB, ""); n != 80 {
		t.Fatalf("%d effects, want 80", n)
	}
	info, err := w.JS.ConsumerInfo("ROSTER_IDENTITY", name)
	if err != nil || info.Config.DeliverSubject != "" {
		t.Fatalf("consumer after the takeover: %+v %v, want a pull consumer", info, err)
	}
	if info.Delivered.Stream != 80 || info.Delivered.Consumer != 60 {
		t.Fatalf("the pull consumer delivered %d events up to stream sequence %d, want the 60 after the 20 acked",
			info.Delivered.Consumer, info.Delivered.Stream)
	}
}

// A failed event holds back the later events of its technician, and only
// those: a technician's disable is applied after its creation, which
// failed twice first, while another technician's events go on.
func TestFailedEventHoldsBackItsTechniciansLaterEvents(t *testing.T) {
	w := svctest.NewNATS(t)
	prod := svctest.StartProducer(t, w, "", "identity")
	consDB := openDB(t, "", w.Dir, "seatbilling")
	var failures atomic.Int64
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: 16,
		RetryBackoff: 20 * time.Millisecond}, func(b *eventbus.Bus) {
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
			if ev.GetTechnicianId() == "tech_t" && failures.Add(1) <= 2 {
				return errors.New("not yet")
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO effects (event_id, email, applied) VALUES ($1, $2, $3)`,
				ev.GetMeta().GetEventId(), ev.GetTechnicianId()+" created", applications.Add(1))
			return err
		})
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianDisabled) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO effects (event_id, email, applied) VALUES ($1, $2, $3)`,
				ev.GetMeta().GetEventId(), ev.GetTechnicianId()+" disabled", applications.Add(1))
			return err
		})
	})
	prod.Emit(t, "acc_test",
		&identityv1.TechnicianCreated{TechnicianId: "tech_t"},
		&identityv1.TechnicianDisabled{TechnicianId: "tech_t"},
		&identityv1.TechnicianCreated{TechnicianId: "tech_u"},
		&identityv1.TechnicianDisabled{TechnicianId: "tech_u"})
	svctest.Eventually(t, "every event applied", func() bool { return countEffects(t, consDB, "") >= 4 })
	svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
	order := map[string]int64{}
	rows, err := consDB.Query(`SELECT email, applied FROM effects`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var what string
		var n int64
		if err := rows.Scan(&what, &n); err != nil {
			t.Fatal(err)
		}
		order[what] = n
	}
	rows.Close()
	if len(order) != 4 {
		t.Fatalf("effects %v, want each of the 4 events once", order)
	}
	if order["tech_t disabled"] < order["tech_t created"] {
		t.Fatalf("tech_t disabled before its creation was applied: %v", order)
	}
	if order["tech_u disabled"] > order["tech_t created"] {
		t.Fatalf("tech_u's events waited for tech_t's: %v", order)
	}
}

// BeforeBatch runs first in a batch's transaction with the batch's
// accounts, each once, sorted: where a service takes its account locks in
// one order.
func TestBeforeBatchGetsTheBatchsAccountsInOrder(t *testing.T) {
	w := svctest.NewNATS(t)
	prod := svctest.StartProducer(t, w, "", "identity")
	var evs []eventbus.Event
	for i := range 12 {
		acc := []string{"acc_c", "acc_a", "acc_c", "acc_b"}[i%4]
		ev := technician(fmt.Sprintf("%d.%s@example.com", i, acc))
		eventbus.Stamp(context.Background(), acc, ev)
		evs = append(evs, ev)
	}
	prod.Emit(t, "", evs...)
	svctest.Eventually(t, "the events on the stream", func() bool { return svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == 12 })
	consDB := openDB(t, "", w.Dir, "seatbilling")
	var mu sync.Mutex
	var calls [][]string
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: 16}, func(b *eventbus.Bus) {
		eventbus.On(b, recordEffect)
		eventbus.BeforeBatch(b, func(ctx context.Context, tx *sql.Tx, accountIDs []string) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, accountIDs)
			return nil
		})
	})
	svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
	mu.Lock()
	defer mu.Unlock()
	if len(calls) == 0 {
		t.Fatal("BeforeBatch never called")
	}
	for _, ids := range calls {
		if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Fatalf("BeforeBatch calls %v, want each call's accounts sorted, each once", calls)
		}
	}
}

// A handler that panics fails its event like an error: retried, then
// dead-lettered; the process and the other events go on.
func TestPanickingHandlerFailsOnlyItsEvent(t *testing.T) {
	w := svctest.NewNATS(t)
	prod := svctest.StartProducer(t, w, "", "identity")
	consDB := openDB(t, "", w.Dir, "seatbilling")
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: 16,
		MaxDeliver: 2, RetryBackoff: 10 * time.Millisecond}, func(b *eventbus.Bus) {
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
			if ev.GetEmail() == "panic@example.com" {
				panic("boom")
			}
			return recordEffect(ctx, tx, ev)
		})
	})
	prod.Emit(t, "acc_test", technician("a@example.com"), technician("panic@example.com"), technician("b@example.com"))
	svctest.Eventually(t, "the panicking event dead-lettered", func() bool { return svctest.StreamMsgs(t, w.JS, "ROSTER_DEADLETTER") == 1 })
	svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
	if n := countEffects(t, consDB, ""); n != 2 {
		t.Fatalf("%d effects, want the 2 other events", n)
	}
}
