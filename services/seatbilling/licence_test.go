package seatbilling_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/rpc"
	"roster.dev/pkg/svc/svctest"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/ports"
)

const (
	removalScheduled        = seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_SCHEDULED
	removalAlreadyScheduled = seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_ALREADY_SCHEDULED
	removalNotOccupying     = seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_NOT_OCCUPYING
)

// The admin who asks, as identity passes them on.
var removalActor = &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_API_TOKEN, Id: "tok_admin"}

// scheduleRemoval asks for a licence removal over NATS request-reply, as
// identity does.
func (w *billingWorld) scheduleRemoval(t *testing.T, accountID, technicianID string) *seatbillingv1.ScheduleLicenceRemovalReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rep seatbillingv1.ScheduleLicenceRemovalReply
	err := rpc.Call(ctx, w.nats.NC, rpc.ScheduleLicenceRemoval, &seatbillingv1.ScheduleLicenceRemovalRequest{
		AccountId: accountID, TechnicianId: technicianID, CorrelationId: "corr_remove_" + technicianID, Actor: removalActor,
	}, &rep)
	if err != nil {
		t.Fatal(err)
	}
	return &rep
}

func wantRemoval(t *testing.T, what string, rep *seatbillingv1.ScheduleLicenceRemovalReply, want seatbillingv1.ScheduleLicenceRemovalReply_Outcome, date string) {
	t.Helper()
	if rep.GetOutcome() != want || rep.GetRemovalDate() != date {
		t.Fatalf("%s: %v, want %v on %q", what, rep, want, date)
	}
}

// runDue runs the cycle-end scheduler once and returns how many cycles it
// closed.
func (w *billingWorld) runDue(t *testing.T) int {
	t.Helper()
	n, err := w.service.RunDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// flows.md "Licence removal and cycle end", S-5, S-10: a removal marks the
// seat for the end of the cycle; the seat stays taken (not reusable), also
// once its technician is disabled; at cycle end the seats go, the renewal
// is charged for the seats left, and the cycle moves on, once however
// often (and however concurrently) the scheduler runs; a scheduler that
// was away catches up cycle by cycle.
func TestLicenceRemovalAtCycleEnd(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_licence"
		w.openAccount(t, acc, 3)
		for i, tech := range []string{"tech_1", "tech_2"} {
			res := "res_" + tech
			wantOutcome(t, res, w.reserve(t, acc, res, false), reserved)
			w.publish(t, acc, technicianCreated(tech, res))
			w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 2 + i, Available: 1 - i})
		}

		// S-5: the seat goes at the end of the cycle that holds today.
		wantRemoval(t, "tech_1", w.scheduleRemoval(t, acc, "tech_1"), removalScheduled, "2026-11-30")
		wantRemoval(t, "tech_1 again", w.scheduleRemoval(t, acc, "tech_1"), removalAlreadyScheduled, "2026-11-30")
		wantRemoval(t, "a technician without a seat", w.scheduleRemoval(t, acc, "tech_nobody"), removalNotOccupying, "")
		if rep := w.scheduleRemoval(t, "acc_unknown", "tech_1"); rep.GetOutcome() != seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_NO_SUBSCRIPTION {
			t.Fatalf("unknown account: %v", rep)
		}
		if rep := w.scheduleRemoval(t, acc, ""); rep.GetOutcome() != seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_ERROR || rep.GetError() == "" {
			t.Fatalf("no technician id: %v", rep)
		}
		w.settle(t)
		var scheduled seatbillingv1.LicenceRemovalScheduled
		w.lastEvent(t, acc, &scheduled)
		if scheduled.GetTechnicianId() != "tech_1" || scheduled.GetRemovalDate() != "2026-11-30" ||
			scheduled.GetMeta().GetCorrelationId() != "corr_remove_tech_1" || !proto.Equal(scheduled.GetMeta().GetActor(), removalActor) {
			t.Errorf("LicenceRemovalScheduled = %v", &scheduled)
		}
		// The technician keeps the seat until then: still used, and not
		// free for anyone else (a new technician buys a seat).
		sub := w.subscription(t, acc)
		if sub.Seats != (ports.Seats{Total: 3, Used: 3, Available: 0}) || sub.PendingReductions != 1 {
			t.Fatalf("after scheduling: seats %+v, pending %d", sub.Seats, sub.PendingReductions)
		}
		wantOutcome(t, "a new technician while tech_1's seat is pending", w.reserve(t, acc, "res_new", false), quoted)

		// tech_2 is scheduled too, then disabled before the cycle ends: the
		// seat is released (S-4's SeatReleased), yet neither used nor free,
		// and the count still drops at cycle end.
		wantRemoval(t, "tech_2", w.scheduleRemoval(t, acc, "tech_2"), removalScheduled, "2026-11-30")
		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_2", Reason: "disabled"})
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 2, Available: 0})
		if sub := w.subscription(t, acc); sub.PendingReductions != 2 {
			t.Fatalf("pending reductions %d, want 2", sub.PendingReductions)
		}
		wantOutcome(t, "a new technician after tech_2's disable", w.reserve(t, acc, "res_new_2", false), quoted)
		wantRemoval(t, "tech_2 disabled", w.scheduleRemoval(t, acc, "tech_2"), removalAlreadyScheduled, "2026-11-30")
		// Nothing is due before the cycle ends.
		if n := w.runDue(t); n != 0 {
			t.Fatalf("closed %d cycles before the cycle ended", n)
		}

		// The cycle ends. Schedulers on every replica run at once: the
		// cycle is closed once.
		w.clock.Advance(time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC).Sub(w.clock.Now()))
		var wg sync.WaitGroup
		closed := make(chan int, 4)
		for range 4 {
			wg.Go(func() {
				n, err := w.service.RunDue(context.Background())
				if err != nil {
					t.Error(err)
				}
				closed <- n
			})
		}
		wg.Wait()
		close(closed)
		total := 0
		for n := range closed {
			total += n
		}
		if total != 1 {
			t.Fatalf("concurrent schedulers closed %d cycles, want 1", total)
		}
		w.settle(t)
		sub = w.subscription(t, acc)
		if sub.Seats != (ports.Seats{Total: 1, Used: 1, Available: 0}) || sub.PendingReductions != 0 ||
			sub.CycleStart != "2026-12-01" || sub.CycleEnd != "2026-12-31" {
			t.Fatalf("after the cycle end: %+v", sub)
		}
		// S-10: the renewal is seats × unit for the seats left: 1 × 18900.
		charges := w.charges(t, acc, "").Data
		if len(charges) != 1 || charges[0].Amount != 18900 || charges[0].Reason != "renewal" || charges[0].TechnicianID != nil ||
			!charges[0].CreatedAt.Equal(time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC)) {
			t.Fatalf("charges: %+v", charges)
		}
		var expired seatbillingv1.LicenceExpired
		w.lastEvent(t, acc, &expired)
		if expired.GetMeta().GetActor().GetType() != commonv1.ActorType_ACTOR_TYPE_SYSTEM {
			t.Errorf("LicenceExpired actor %v, want system", expired.GetMeta().GetActor())
		}
		var released seatbillingv1.SeatReleased
		w.lastEvent(t, acc, &released)
		if released.GetTechnicianId() != "tech_1" || released.GetReason() != "licence_removed" {
			t.Errorf("SeatReleased = %v, want tech_1, licence_removed", &released)
		}
		var charged seatbillingv1.ChargeRecorded
		w.lastEvent(t, acc, &charged)
		if charged.GetChargeId() != charges[0].ID || charged.GetAmount().GetAmount() != 18900 || charged.GetReason() != "renewal" ||
			charged.GetMeta().GetCorrelationId() != expired.GetMeta().GetCorrelationId() {
			t.Errorf("ChargeRecorded = %v", &charged)
		}
		// tech_1's seat was released now; tech_2's when disabled: no
		// second SeatReleased for it. Both licences expired.
		wantEmitted := map[string]uint64{
			"subscription_created": 1, "seat_reserved": 2, "seat_assigned": 3, "licence_removal_scheduled": 2,
			"seat_released": 2, "licence_expired": 2, "charge_recorded": 1, "cycle_closed": 1,
		}
		if got := w.emitted(t, acc); !reflect.DeepEqual(got, wantEmitted) {
			t.Fatalf("emitted %v, want %v", got, wantEmitted)
		}

		// Again, for the same cycle: nothing.
		if n := w.runDue(t); n != 0 {
			t.Fatalf("a second run closed %d cycles", n)
		}
		w.settle(t)
		if got := w.emitted(t, acc); !reflect.DeepEqual(got, wantEmitted) {
			t.Fatalf("a second run emitted: %v", got)
		}
		if n := len(w.charges(t, acc, "").Data); n != 1 {
			t.Fatalf("%d charges after a second run", n)
		}
		if n := w.rows(t, "cycle_renewals", acc, ""); n != 1 {
			t.Fatalf("%d closed cycles recorded, want 1", n)
		}
		// The removed technicians have nothing left to remove.
		wantRemoval(t, "tech_1 after the cycle end", w.scheduleRemoval(t, acc, "tech_1"), removalNotOccupying, "")

		// Away for two cycles: December and January are closed one by one,
		// each renewed.
		w.clock.Advance(time.Date(2027, 2, 15, 9, 0, 0, 0, time.UTC).Sub(w.clock.Now()))
		if n := w.runDue(t); n != 2 {
			t.Fatalf("caught up %d cycles, want 2", n)
		}
		sub = w.subscription(t, acc)
		if sub.CycleStart != "2027-02-01" || sub.CycleEnd != "2027-02-28" || sub.Seats.Total != 1 {
			t.Fatalf("after catching up: %+v", sub)
		}
		charges = w.charges(t, acc, "").Data
		if len(charges) != 3 || charges[1].Amount != 18900 || charges[2].Amount != 18900 {
			t.Fatalf("charges after catching up: %+v", charges)
		}
	})
}
