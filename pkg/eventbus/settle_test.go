package eventbus_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
)

// Read-your-writes (issue 18, settle.go): a write answers only once the
// events it committed are applied by every awaited consumer, and the
// events those consumers emitted by theirs — two hops here: identity's
// TechnicianCreated → seatbilling, which emits SeatAssigned → rolepolicy.
// A consumer of an Eventual service (audit) is not waited for: here it
// never applies anything, and the write still answers at once.
func TestWriteAnswersOnceItsEffectsAreApplied(t *testing.T) {
	w := svctest.NewNATS(t)
	idDB := openDB(t, "", w.Dir, "identity")
	id := svctest.StartBus(t, eventbus.Config{Service: "identity", DB: idDB, Connect: w.Connect}, nil)
	sbDB := openDB(t, "", w.Dir, "seatbilling")
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: sbDB, Connect: w.Connect}, func(b *eventbus.Bus) {
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
			if err := recordEffect(ctx, tx, ev); err != nil {
				return err
			}
			return b.Emit(ctx, tx, ev.GetMeta().GetAccountId(), &seatbillingv1.SeatAssigned{TechnicianId: ev.GetTechnicianId()})
		})
	})
	rpDB := openDB(t, "", w.Dir, "rolepolicy")
	svctest.StartBus(t, eventbus.Config{Service: "rolepolicy", DB: rpDB, Connect: w.Connect}, func(b *eventbus.Bus) {
		eventbus.On(b, func(ctx context.Context, tx *sql.Tx, ev *seatbillingv1.SeatAssigned) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO effects (event_id, email) VALUES ($1, $2)`, ev.GetMeta().GetEventId(), ev.GetTechnicianId())
			return err
		})
	})
	auditDB := openDB(t, "", w.Dir, "audit")
	svctest.StartBus(t, eventbus.Config{Service: "audit", DB: auditDB, Connect: w.Connect, Eventual: true, RetryBackoff: time.Hour},
		func(b *eventbus.Bus) {
			eventbus.OnAll(b, "identity", func(context.Context, *sql.Tx, eventbus.Event) error { return errors.New("the audit is down") })
		})

	waiter := startWaiter(t, w, 10*time.Second)
	srv := httptest.NewServer(waiter.Middleware(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		email := r.URL.Query().Get("email")
		err := idDB.InTx(r.Context(), func(tx *sql.Tx) error {
			return id.Emit(r.Context(), tx, "acc_settle", technician(email))
		})
		if err != nil {
			http.Error(rw, err.Error(), 500)
			return
		}
		rw.WriteHeader(http.StatusCreated)
	})))
	t.Cleanup(srv.Close)

	for i := range 20 {
		email := fmt.Sprintf("t%d@settle.test", i)
		res, err := http.Post(srv.URL+"?email="+email, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 201 || res.Header.Get(eventbus.HeaderConsistency) != "" {
			t.Fatalf("write %d: %d, %s: %q", i, res.StatusCode, eventbus.HeaderConsistency, res.Header.Get(eventbus.HeaderConsistency))
		}
		// No pause: both hops are applied already.
		if n := countEffects(t, sbDB, "WHERE email = $1", email); n != 1 {
			t.Fatalf("write %d: seatbilling applied it %d times", i, n)
		}
		if n := countEffects(t, rpDB, "WHERE email = $1", "tech_"+email); n != 1 {
			t.Fatalf("write %d: rolepolicy applied the second hop %d times", i, n)
		}
	}
}

// A write whose effects cannot be applied in time answers anyway at the
// deadline, saying so: Roster-Consistency: pending.
func TestWriteAnswersPendingAtTheDeadline(t *testing.T) {
	w := svctest.NewNATS(t)
	idDB := openDB(t, "", w.Dir, "identity")
	id := svctest.StartBus(t, eventbus.Config{Service: "identity", DB: idDB, Connect: w.Connect}, nil)
	sbDB := openDB(t, "", w.Dir, "seatbilling")
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: sbDB, Connect: w.Connect, RetryBackoff: time.Hour}, func(b *eventbus.Bus) {
		eventbus.On(b, func(context.Context, *sql.Tx, *identityv1.TechnicianCreated) error {
			return errors.New("seatbilling is failing")
		})
	})
	waiter := startWaiter(t, w, 300*time.Millisecond)
	srv := httptest.NewServer(waiter.Middleware(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if err := idDB.InTx(r.Context(), func(tx *sql.Tx) error {
			return id.Emit(r.Context(), tx, "acc_settle", technician("late@settle.test"))
		}); err != nil {
			http.Error(rw, err.Error(), 500)
			return
		}
		rw.WriteHeader(http.StatusCreated)
	})))
	t.Cleanup(srv.Close)
	res, err := http.Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 || res.Header.Get(eventbus.HeaderConsistency) != "pending" {
		t.Fatalf("%d, %s: %q", res.StatusCode, eventbus.HeaderConsistency, res.Header.Get(eventbus.HeaderConsistency))
	}
}

// startWaiter starts a Waiter on w that has read the consumers' registry.
func startWaiter(t *testing.T, w *svctest.World, timeout time.Duration) *eventbus.Waiter {
	t.Helper()
	nc, err := w.Connect("settle")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	waiter, err := eventbus.NewWaiter(nc, timeout, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(waiter.Close)
	if err := waiter.Refresh(); err != nil {
		t.Fatal(err)
	}
	return waiter
}
