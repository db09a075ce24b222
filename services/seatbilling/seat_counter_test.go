package seatbilling_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/seatbilling/adapters"
	"roster.dev/services/seatbilling/domain"
	"roster.dev/services/seatbilling/migrations"
)

// wantSeatCount fails the test unless the account's seat counters (what
// GET subscription and every seat operation read) equal both want and the
// count of its seat rows (adapters.Store.CountSeats, count(*)).
func wantSeatCount(t *testing.T, st *adapters.Store, accountID, step string, want domain.SeatCount) {
	t.Helper()
	ctx := context.Background()
	_, kept, err := st.Subscription(ctx, accountID)
	if err != nil {
		t.Fatal(err)
	}
	counted, err := st.CountSeats(ctx, accountID)
	if err != nil {
		t.Fatal(err)
	}
	if kept != counted || kept != want {
		t.Fatalf("%s: counters %+v, count(*) %+v, want %+v", step, kept, counted, want)
	}
}

// Issue 18: the seat counters kept on the subscription row follow every
// change of a seat — assignment, release (S-4), licence removal and its
// application at cycle end (S-5, S-10), re-enable, a late confirmation
// after expiry, repeated events — and equal the count of the rows after
// each step.
func TestSeatCountersFollowEverySeatChange(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		st := adapters.NewStore(w.db)
		const acc = "acc_counters"
		w.openAccount(t, acc, 4)
		wantSeatCount(t, st, acc, "opened", domain.SeatCount{Occupied: 1})

		wantOutcome(t, "res_1", w.reserve(t, acc, "res_1", false), reserved)
		wantOutcome(t, "res_2", w.reserve(t, acc, "res_2", false), reserved)
		wantSeatCount(t, st, acc, "two reservations held", domain.SeatCount{Occupied: 1})

		w.publish(t, acc, technicianCreated("tech_1", "res_1"), technicianCreated("tech_2", "res_2"))
		w.settle(t)
		wantSeatCount(t, st, acc, "both assigned", domain.SeatCount{Occupied: 3})

		wantRemoval(t, "tech_1", w.scheduleRemoval(t, acc, "tech_1"), removalScheduled, "2026-11-30")
		wantRemoval(t, "tech_1 again", w.scheduleRemoval(t, acc, "tech_1"), removalAlreadyScheduled, "2026-11-30")
		wantSeatCount(t, st, acc, "tech_1's licence removal", domain.SeatCount{Occupied: 3, Pending: 1})

		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_1", Reason: "left"})
		w.settle(t)
		wantSeatCount(t, st, acc, "tech_1 disabled while pending", domain.SeatCount{Occupied: 2, Leaving: 1, Pending: 1})

		wantOutcome(t, "res_3", w.reserve(t, acc, "res_3", false), reserved)
		w.publish(t, acc, &identityv1.TechnicianEnabled{TechnicianId: "tech_1", ReservationId: "res_3"})
		w.settle(t)
		wantSeatCount(t, st, acc, "tech_1 enabled, still pending", domain.SeatCount{Occupied: 3, Pending: 1})

		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_2", Reason: "left"})
		w.settle(t)
		wantSeatCount(t, st, acc, "tech_2 disabled", domain.SeatCount{Occupied: 2, Pending: 1})

		// res_4 expires; its late confirmation still seats tech_4 in the
		// free seat. Delivered again (another event), and tech_2 disabled
		// again: nothing changes.
		wantOutcome(t, "res_4", w.reserve(t, acc, "res_4", false), reserved)
		w.clock.Advance(3 * time.Minute)
		wantSeatCount(t, st, acc, "res_4 expired", domain.SeatCount{Occupied: 2, Pending: 1})
		w.publish(t, acc, technicianCreated("tech_4", "res_4"))
		w.settle(t)
		wantSeatCount(t, st, acc, "tech_4 seated after expiry", domain.SeatCount{Occupied: 3, Pending: 1})
		w.publish(t, acc, technicianCreated("tech_4", "res_4"), &identityv1.TechnicianDisabled{TechnicianId: "tech_2", Reason: "left"})
		w.settle(t)
		wantSeatCount(t, st, acc, "repeated events", domain.SeatCount{Occupied: 3, Pending: 1})

		wantRemoval(t, "tech_4", w.scheduleRemoval(t, acc, "tech_4"), removalScheduled, "2026-11-30")
		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_4", Reason: "left"})
		w.settle(t)
		wantSeatCount(t, st, acc, "tech_4 removed and disabled", domain.SeatCount{Occupied: 2, Leaving: 1, Pending: 2})

		// The cycle ends: both removals apply (S-5, S-10), 4 seats become 2.
		w.clock.Set(time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC))
		if n := w.runDue(t); n != 1 {
			t.Fatalf("closed %d cycles, want 1", n)
		}
		wantSeatCount(t, st, acc, "cycle closed", domain.SeatCount{Occupied: 1})

		wantOutcome(t, "res_6", w.reserve(t, acc, "res_6", false), reserved)
		w.publish(t, acc, &identityv1.TechnicianEnabled{TechnicianId: "tech_2", ReservationId: "res_6"})
		w.settle(t)
		wantSeatCount(t, st, acc, "tech_2 enabled", domain.SeatCount{Occupied: 2})
	})
}

// Migration 0060 back-fills the counters of the subscriptions that exist
// when it runs from their seat rows.
func TestSeatCountersBackfilled(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		db := svctest.OpenDB(t, dbURL, t.TempDir(), "seatbilling")
		if err := db.Migrate(ctx, migrationsBefore(t, "0060")); err != nil {
			t.Fatal(err)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for _, acc := range []string{"acc_a", "acc_b", "acc_empty"} {
			exec(`INSERT INTO subscriptions (account_id, profile, plan, billing_period, billing_anchor, unit_price, currency,
				seats_total, cycle_start, cycle_end, created_at, updated_at)
				VALUES ($1, 'atera-msp', 'growth', 'monthly', '2026-11-01', 18900, 'usd', 10, '2026-11-01', '2026-11-30', 'x', 'x')`, acc)
		}
		seats := []struct {
			acc, tech, status string
			removal           any
		}{
			{"acc_a", "t1", "occupied", nil},
			{"acc_a", "t2", "occupied", "2026-11-30"},
			{"acc_a", "t3", "released", "2026-11-30"},
			{"acc_a", "t4", "released", nil},
			{"acc_b", "t1", "occupied", nil},
		}
		for _, s := range seats {
			exec(`INSERT INTO seats (account_id, technician_id, status, assigned_at, updated_at, removal_date)
				VALUES ($1, $2, $3, 'x', 'x', $4)`, s.acc, s.tech, s.status, s.removal)
		}
		if err := db.Migrate(ctx, migrations.FS); err != nil {
			t.Fatal(err)
		}
		st := adapters.NewStore(db)
		wantSeatCount(t, st, "acc_a", "acc_a", domain.SeatCount{Occupied: 2, Leaving: 1, Pending: 2})
		wantSeatCount(t, st, "acc_b", "acc_b", domain.SeatCount{Occupied: 1})
		wantSeatCount(t, st, "acc_empty", "acc_empty", domain.SeatCount{})
	})
}

// migrationsBefore is seatbilling's migrations whose names sort before
// version.
func migrationsBefore(t *testing.T, version string) fs.FS {
	t.Helper()
	files, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	out := fstest.MapFS{}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".sql") || f.Name() >= version {
			continue
		}
		b, err := fs.ReadFile(migrations.FS, f.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name()] = &fstest.MapFile{Data: b}
	}
	return out
}
