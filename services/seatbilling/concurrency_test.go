package seatbilling_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/adapters"
	"roster.dev/services/seatbilling/ports"
)

// S-6 with everything at once: requests for seats, with and without a
// confirmed purchase, race each other, the confirmations of some of them
// and the disabling of technicians. Whatever the interleaving, occupancy
// never exceeds the seats, every charge is a confirmed purchase's (its
// reservation, its technician, its quoted price), an unconfirmed purchase
// charges nothing, and nothing is overallocated.
func TestConcurrentAddsConfirmationsAndDisables(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_storm"
		w.openAccount(t, acc, 6)
		for i := range 5 {
			w.addTechnician(t, acc, fmt.Sprintf("tech_old_%d", i), false)
		}
		w.waitSeats(t, acc, ports.Seats{Total: 6, Used: 6, Available: 0})

		const n = 40
		var wg sync.WaitGroup
		start := make(chan struct{})
		replies := make([]*seatbillingv1.ReserveSeatReply, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				replies[i], errs[i] = w.tryReserve(acc, fmt.Sprintf("res_%02d", i), i%2 == 0)
			})
		}
		// Three old technicians leave while the requests race: their seats
		// may go to any of the unconfirmed requests, or to none.
		var disableErr error
		wg.Go(func() {
			<-start
			for i := range 3 {
				if err := w.tryPublish(acc, &identityv1.TechnicianDisabled{TechnicianId: fmt.Sprintf("tech_old_%d", i)}); err != nil {
					disableErr = err
				}
			}
		})
		close(start)
		wg.Wait()
		if disableErr != nil {
			t.Fatal(disableErr)
		}

		// identity creates a technician for every second successful
		// reservation only; the others are never confirmed.
		var confirmed []int
		purchases := map[string]bool{}
		for i, rep := range replies {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			o := rep.GetOutcome()
			if o == quoted {
				continue
			}
			if len(confirmed)%2 == 0 {
				confirmed = append(confirmed, i)
				if o == purchaseReserved {
					purchases[fmt.Sprintf("res_%02d", i)] = true
				}
			} else {
				confirmed = append(confirmed, -1)
			}
		}
		createErrs := make([]error, len(confirmed))
		for k, i := range confirmed {
			if i < 0 {
				continue
			}
			wg.Go(func() {
				createErrs[k] = w.tryPublish(acc, technicianCreated(fmt.Sprintf("tech_new_%02d", i), fmt.Sprintf("res_%02d", i)))
			})
		}
		wg.Wait()
		for _, err := range createErrs {
			if err != nil {
				t.Fatal(err)
			}
		}
		w.settle(t)

		sub := w.subscription(t, acc)
		if sub.Seats.Used > sub.Seats.Total || sub.Seats.Total != 6+len(purchases) {
			t.Fatalf("seats %+v with %d confirmed purchases", sub.Seats, len(purchases))
		}
		charges := w.charges(t, acc, "?limit=500").Data
		if len(charges) != len(purchases) {
			t.Fatalf("%d charges for %d confirmed purchases", len(charges), len(purchases))
		}
		for _, c := range charges {
			var res string
			if err := w.db.QueryRow(`SELECT reservation_id FROM charges WHERE id = $1`, c.ID).Scan(&res); err != nil {
				t.Fatal(err)
			}
			if !purchases[res] || c.Amount != growthQuote.GetAmount().GetAmount() || c.Reason != "seat_purchase" ||
				c.TechnicianID == nil || *c.TechnicianID != "tech_new_"+res[len("res_"):] {
				t.Errorf("charge %+v for reservation %s: not a confirmed purchase", c, res)
			}
			if n := w.rows(t, "reservations", acc, "reservation_id = $2 AND status = 'confirmed' AND purchase = 1", res); n != 1 {
				t.Errorf("charge %s: its reservation %s is not a confirmed purchase", c.ID, res)
			}
		}
		if n := w.rows(t, "overallocations", acc, ""); n != 0 {
			t.Errorf("%d overallocations", n)
		}
	})
}

// A batch of events takes its accounts' subscription locks first, in
// account order (eventbus.BeforeBatch); an account without a subscription
// yet (its AccountCreated is in the same batch) is skipped.
func TestLockSubscriptionsOfABatch(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		w.openAccount(t, "acc_lock_b", 3)
		w.openAccount(t, "acc_lock_a", 3)
		st := adapters.NewStore(w.db)
		ctx := context.Background()
		err := w.db.InTx(ctx, func(tx *sql.Tx) error {
			return st.LockSubscriptions(ctx, tx, []string{"acc_lock_a", "acc_lock_b", "acc_lock_new"})
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
