package seatbilling_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/svc/svctest"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/ports"
)

// The clock of the seat tests: 8 of November's 30 days are left, so one
// growth seat (18900 a month) costs 18900 × 8 / 30 = 5040 (S-3).
var seatTestNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const (
	reserved         = seatbillingv1.ReserveSeatReply_OUTCOME_RESERVED
	purchaseReserved = seatbillingv1.ReserveSeatReply_OUTCOME_PURCHASE_RESERVED
	quoted           = seatbillingv1.ReserveSeatReply_OUTCOME_QUOTE
)

// wantOutcome fails the test unless rep has outcome want.
func wantOutcome(t *testing.T, what string, rep *seatbillingv1.ReserveSeatReply, want seatbillingv1.ReserveSeatReply_Outcome) {
	t.Helper()
	if rep.GetOutcome() != want {
		t.Fatalf("%s: %v, want %v", what, rep, want)
	}
}

// growthQuote is the quote of one growth seat on seatTestNow.
var growthQuote = &seatbillingv1.Quote{
	Amount: &commonv1.Money{Amount: 5040, Currency: "usd"}, DaysLeft: 8, CycleDays: 30, CycleEnd: "2026-11-30",
}

// flows.md "Add a technician", S-2, S-3, S-4, S-6: reserve a free seat,
// confirm it; quote when full; reserve a purchase and confirm it (one
// seat more, one prorated charge); expiry frees a held seat; a disabled
// technician's seat is reused at no charge.
func TestAddTechnicianSeatFlow(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_flow"
		w.openAccount(t, acc, 2) // the first admin occupies one of the two

		// A free seat: reserved, and the same reservation asked again
		// answers the same and holds nothing more.
		wantOutcome(t, "res_1", w.reserve(t, acc, "res_1", false), reserved)
		wantOutcome(t, "res_1 again", w.reserve(t, acc, "res_1", false), reserved)
		wantOutcome(t, "res_1 again, confirming", w.reserve(t, acc, "res_1", true), reserved)
		w.settle(t)
		if n := w.emitted(t, acc)["seat_reserved"]; n != 1 {
			t.Fatalf("%d SeatReserved, want 1", n)
		}
		var sr seatbillingv1.SeatReserved
		w.lastEvent(t, acc, &sr)
		if sr.GetReservationId() != "res_1" || sr.GetPurchase() || !sr.GetExpiresAt().AsTime().Equal(seatTestNow.Add(2*time.Minute)) ||
			sr.GetMeta().GetCorrelationId() != "corr_res_1" {
			t.Errorf("SeatReserved = %v, want res_1, no purchase, expiring at +2m, correlated", &sr)
		}
		// Held is not used: S-7's used counts occupied seats.
		if got := w.subscription(t, acc).Seats; got != (ports.Seats{Total: 2, Used: 1, Available: 1}) {
			t.Errorf("seats while res_1 is held = %+v", got)
		}

		// TechnicianCreated confirms it: the technician occupies the seat.
		w.publish(t, acc, technicianCreated("tech_1", "res_1"))
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 2, Used: 2, Available: 0})
		var assigned seatbillingv1.SeatAssigned
		w.lastEvent(t, acc, &assigned)
		if assigned.GetTechnicianId() != "tech_1" || assigned.GetReservationId() != "res_1" {
			t.Errorf("SeatAssigned = %v, want tech_1 with res_1", &assigned)
		}

		// S-3: full, not confirmed → the quote of one seat now, nothing written.
		rep := w.reserve(t, acc, "res_2", false)
		wantOutcome(t, "res_2 unconfirmed", rep, quoted)
		if !proto.Equal(rep.GetQuote(), growthQuote) {
			t.Errorf("quote = %v, want %v", rep.GetQuote(), growthQuote)
		}
		if n := w.rows(t, "reservations", acc, "reservation_id = $2", "res_2"); n != 0 {
			t.Errorf("a quote wrote %d reservations", n)
		}

		// Confirmed → a purchase reservation; S-6: no seat added and no
		// charge until identity confirms it.
		wantOutcome(t, "res_2 confirmed", w.reserve(t, acc, "res_2", true), purchaseReserved)
		wantOutcome(t, "res_2 confirmed again", w.reserve(t, acc, "res_2", true), purchaseReserved)
		w.settle(t)
		w.lastEvent(t, acc, &sr)
		if sr.GetReservationId() != "res_2" || !sr.GetPurchase() {
			t.Errorf("SeatReserved = %v, want the purchase res_2", &sr)
		}
		if got := w.subscription(t, acc).Seats; got != (ports.Seats{Total: 2, Used: 2, Available: 0}) {
			t.Errorf("seats with a purchase reserved = %+v, want 2 of 2", got)
		}
		if l := w.charges(t, acc, ""); len(l.Data) != 0 {
			t.Errorf("charges before confirmation: %+v", l.Data)
		}

		// TechnicianCreated buys it: one seat more, one charge of 5040.
		w.publish(t, acc, technicianCreated("tech_2", "res_2"))
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 3, Available: 0})
		var purchased seatbillingv1.SeatPurchased
		w.lastEvent(t, acc, &purchased)
		if purchased.GetTechnicianId() != "tech_2" || purchased.GetReservationId() != "res_2" || purchased.GetSeatsTotal() != 3 {
			t.Errorf("SeatPurchased = %v, want tech_2, res_2, 3 seats", &purchased)
		}
		var charged seatbillingv1.ChargeRecorded
		w.lastEvent(t, acc, &charged)
		if !proto.Equal(charged.GetAmount(), growthQuote.GetAmount()) || charged.GetReason() != "seat_purchase" ||
			charged.GetTechnicianId() != "tech_2" || !strings.HasPrefix(charged.GetChargeId(), "chg_") {
			t.Errorf("ChargeRecorded = %v, want chg_… of 5040 usd for tech_2", &charged)
		}
		status, _, body := svctest.Get(t, w.url+"/v1/accounts/"+acc+"/charges", billingOperator)
		want := fmt.Sprintf(`{"data": [{"id": %q, "amount": 5040, "currency": "usd", "reason": "seat_purchase",
			"technician_id": "tech_2", "add_on_id": null, "created_at": "2026-11-23T10:00:00Z"}], "next_cursor": null}`, charged.GetChargeId())
		if status != 200 || !jsonEqual(t, body, want) {
			t.Errorf("GET charges = %d %s\nwant %s", status, body, want)
		}

		// S-4: disabling frees the seat; the total stays.
		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_1", Reason: "left"})
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 2, Available: 1})
		var released seatbillingv1.SeatReleased
		w.lastEvent(t, acc, &released)
		if released.GetTechnicianId() != "tech_1" || released.GetReason() != "disabled" {
			t.Errorf("SeatReleased = %v, want tech_1, disabled", &released)
		}

		// Expiry: res_3 holds the freed seat, so res_4 is quoted; once
		// res_3 expires unconfirmed, the seat is free again.
		wantOutcome(t, "res_3", w.reserve(t, acc, "res_3", false), reserved)
		wantOutcome(t, "res_4 while res_3 holds the seat", w.reserve(t, acc, "res_4", false), quoted)
		w.clock.Advance(2*time.Minute - time.Microsecond)
		wantOutcome(t, "res_4 just before res_3 expires", w.reserve(t, acc, "res_4", false), quoted)
		w.clock.Advance(time.Microsecond)
		wantOutcome(t, "res_4 once res_3 expired", w.reserve(t, acc, "res_4", false), reserved)
		// An expired reservation asked again is decided afresh: its seat is gone.
		wantOutcome(t, "res_3 after expiry", w.reserve(t, acc, "res_3", false), quoted)

		// S-4: the replacement takes the freed seat and pays nothing.
		w.publish(t, acc, technicianCreated("tech_4", "res_4"))
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 3, Available: 0})
		if l := w.charges(t, acc, ""); len(l.Data) != 1 {
			t.Errorf("%d charges, want only the purchase: %+v", len(l.Data), l.Data)
		}
		wantEmitted := map[string]uint64{
			"subscription_created": 1, "seat_reserved": 4, "seat_assigned": 4,
			"seat_purchased": 1, "charge_recorded": 1, "seat_released": 1,
		}
		if got := w.emitted(t, acc); !reflect.DeepEqual(got, wantEmitted) {
			t.Errorf("emitted %v, want %v", got, wantEmitted)
		}
		if n := w.rows(t, "overallocations", acc, ""); n != 0 {
			t.Errorf("%d overallocations, want none", n)
		}
	})
}

// A confirmation that comes after its reservation expired still seats the
// technician: in a free seat if there is one, by buying the seat of a
// purchase reservation at the price quoted then, and otherwise in a seat
// that does not exist, recorded as an overallocation. A confirmation seen
// twice seats and charges once; TechnicianEnabled confirms like
// TechnicianCreated and takes the technician's released seat row again.
func TestLateAndRepeatedConfirmations(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_late"
		w.openAccount(t, acc, 3)

		// Expired, a seat still free: assigned.
		wantOutcome(t, "res_a", w.reserve(t, acc, "res_a", false), reserved)
		w.clock.Advance(3 * time.Minute)
		w.publish(t, acc, technicianCreated("tech_a", "res_a"))
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 2, Available: 1})

		// Expired, its seat taken by res_c meanwhile: seated anyway, recorded.
		wantOutcome(t, "res_b", w.reserve(t, acc, "res_b", false), reserved)
		w.clock.Advance(3 * time.Minute)
		wantOutcome(t, "res_c", w.reserve(t, acc, "res_c", false), reserved)
		w.publish(t, acc, technicianCreated("tech_b", "res_b"), technicianCreated("tech_c", "res_c"))
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 4, Available: 0})
		if n := w.rows(t, "overallocations", acc, "technician_id = $2 AND reservation_id = $3", "tech_b", "res_b"); n != 1 {
			t.Errorf("%d overallocations of tech_b, want 1", n)
		}
		if n := w.rows(t, "overallocations", acc, ""); n != 1 {
			t.Errorf("%d overallocations, want only tech_b's", n)
		}

		// An expired purchase is bought at the price quoted when reserved
		// (5040 on Nov 23), not today's (Nov 26: 5 days left, 3150).
		wantOutcome(t, "res_d", w.reserve(t, acc, "res_d", true), purchaseReserved)
		w.clock.Advance(3 * 24 * time.Hour)
		created := technicianCreated("tech_d", "res_d")
		w.publish(t, acc, created)
		// The same technician announced again under another event id:
		// no second seat, no second charge.
		again := proto.Clone(created).(*identityv1.TechnicianCreated)
		again.Meta.EventId = ""
		w.publish(t, acc, again)
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 4, Used: 5, Available: 0})
		l := w.charges(t, acc, "")
		if len(l.Data) != 1 || l.Data[0].Amount != 5040 || *l.Data[0].TechnicianID != "tech_d" {
			t.Fatalf("charges = %+v, want one of 5040 for tech_d", l.Data)
		}

		// TechnicianEnabled: tech_a, disabled, comes back with a purchase.
		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_a"})
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 4, Used: 4, Available: 0})
		rep := w.reserve(t, acc, "res_e", false)
		wantOutcome(t, "res_e", rep, quoted)
		if rep.GetQuote().GetAmount().GetAmount() != 3150 || rep.GetQuote().GetDaysLeft() != 5 {
			t.Errorf("quote on Nov 26 = %v, want 3150 for 5 days", rep.GetQuote())
		}
		wantOutcome(t, "res_e confirmed", w.reserve(t, acc, "res_e", true), purchaseReserved)
		w.publish(t, acc, &identityv1.TechnicianEnabled{TechnicianId: "tech_a", ReservationId: "res_e"})
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 5, Used: 5, Available: 0})
		if n := w.rows(t, "seats", acc, "technician_id = $2", "tech_a"); n != 1 {
			t.Errorf("tech_a has %d seat rows, want its one seat taken again", n)
		}
		// Both charges carry Nov 26's time (the clock has not moved since
		// tech_d's was recorded): the ledger orders them by id.
		l = w.charges(t, acc, "")
		byTech := map[string]int64{}
		for _, c := range l.Data {
			byTech[*c.TechnicianID] = c.Amount
		}
		if len(l.Data) != 2 || byTech["tech_a"] != 3150 || byTech["tech_d"] != 5040 {
			t.Errorf("charges = %+v, want a second of 3150 for tech_a", l.Data)
		}
		// Disabling tech_a again changes nothing. (Disabling someone who
		// never had a seat waits for the TechnicianCreated that seats them:
		// TestDisableBeforeItsCreationStillFreesTheSeat.)
		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_a"})
		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_a"})
		w.settle(t)
		if n := w.emitted(t, acc)["seat_released"]; n != 2 {
			t.Errorf("%d SeatReleased, want tech_a's two (before and after its re-enable)", n)
		}
	})
}

// ReserveSeat's answers to a caller's mistakes are ERROR replies.
func TestReserveSeatErrors(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		w.openAccount(t, "acc_err", 2)
		tests := []struct {
			name, account, reservation, mention string
			outcome                             seatbillingv1.ReserveSeatReply_Outcome
		}{
			// Not an error of the caller: AccountCreated may still be on its way.
			{"unknown account", "acc_nobody", "res_1", "not found", seatbillingv1.ReserveSeatReply_OUTCOME_NO_SUBSCRIPTION},
			{"no reservation id", "acc_err", "", "reservation_id", seatbillingv1.ReserveSeatReply_OUTCOME_ERROR},
			{"no account id", "", "res_1", "account_id", seatbillingv1.ReserveSeatReply_OUTCOME_ERROR},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rep := w.reserve(t, tt.account, tt.reservation, true)
				if rep.GetOutcome() != tt.outcome || !strings.Contains(rep.GetError(), tt.mention) {
					t.Errorf("reply = %v, want %v mentioning %q", rep, tt.outcome, tt.mention)
				}
			})
		}
		if n := w.rows(t, "reservations", "acc_err", ""); n != 0 {
			t.Errorf("%d reservations written", n)
		}
	})
}

// S-6: 50 concurrent requests for the one free seat of an account: exactly
// one gets it, the 49 others a quote; then 50 concurrent confirmed
// requests on the full account reserve 50 purchases and charge nothing.
func TestConcurrentReservationsNeverOversubscribe(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_race"
		w.openAccount(t, acc, 2)

		fire := func(prefix string, confirm bool) map[seatbillingv1.ReserveSeatReply_Outcome]int {
			const n = 50
			var wg sync.WaitGroup
			replies := make([]*seatbillingv1.ReserveSeatReply, n)
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					replies[i], errs[i] = w.tryReserve(acc, fmt.Sprintf("%s_%02d", prefix, i), confirm)
				})
			}
			close(start)
			wg.Wait()
			count := map[seatbillingv1.ReserveSeatReply_Outcome]int{}
			for i, rep := range replies {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				count[rep.GetOutcome()]++
				if rep.GetOutcome() == quoted && !proto.Equal(rep.GetQuote(), growthQuote) {
					t.Errorf("quote %v, want %v", rep.GetQuote(), growthQuote)
				}
			}
			return count
		}

		got := fire("res_race", false)
		if want := map[seatbillingv1.ReserveSeatReply_Outcome]int{reserved: 1, quoted: 49}; !reflect.DeepEqual(got, want) {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
		if n := w.rows(t, "reservations", acc, ""); n != 1 {
			t.Errorf("%d reservations stored, want 1", n)
		}

		got = fire("res_buy", true)
		if want := map[seatbillingv1.ReserveSeatReply_Outcome]int{purchaseReserved: 50}; !reflect.DeepEqual(got, want) {
			t.Fatalf("confirmed outcomes %v, want %v", got, want)
		}
		w.settle(t)
		if n := w.emitted(t, acc)["seat_reserved"]; n != 51 {
			t.Errorf("%d SeatReserved, want 51", n)
		}
		if n := w.rows(t, "charges", acc, ""); n != 0 {
			t.Errorf("%d charges without confirmation (S-6)", n)
		}
		if got := w.subscription(t, acc).Seats; got != (ports.Seats{Total: 2, Used: 1, Available: 1}) {
			t.Errorf("seats = %+v, want unchanged until confirmations", got)
		}
	})
}

// A crash can reorder a technician's events: TechnicianDisabled applied
// before the TechnicianCreated that seats the technician (held unacked by a
// killed consumer, redelivered after AckWait) left the seat occupied by a
// disabled technician for good, billed (found by TestChaosAllInOne, issue
// 11). The disable now waits, retried, until the seat exists, then frees it.
func TestDisableBeforeItsCreationStillFreesTheSeat(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_reordered"
		w.openAccount(t, acc, 3)
		wantOutcome(t, "res_x", w.reserve(t, acc, "res_x", false), reserved)
		// identity created (version 1), then disabled (version 2).
		created, disabled := technicianCreated("tech_x", "res_x"), &identityv1.TechnicianDisabled{TechnicianId: "tech_x", Reason: "left"}
		eventbus.Stamp(context.Background(), acc, created).AggregateVersion = 1
		eventbus.Stamp(context.Background(), acc, disabled).AggregateVersion = 2
		w.publish(t, acc, disabled)
		time.Sleep(300 * time.Millisecond) // a retry or two of the disable
		w.publish(t, acc, created)
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 1, Available: 2})
		if n := w.rows(t, "seats", acc, "technician_id = $2 AND status = 'released'", "tech_x"); n != 1 {
			t.Fatalf("tech_x's seat is not released (%d released rows)", n)
		}
	})
}

// Issue 18, item 5: identity disables a seated technician (version 2) and
// enables them again (version 3); the enable reaches seatbilling first, as
// when a crash or a failed delivery reorders them. The late disable is
// ignored: the technician keeps the seat, as identity left them enabled.
func TestEnableBeforeTheDisableItFollowedKeepsTheSeat(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_reenabled"
		ctx := context.Background()
		w.openAccount(t, acc, 3)
		wantOutcome(t, "res_y", w.reserve(t, acc, "res_y", false), reserved)
		created := technicianCreated("tech_y", "res_y")
		eventbus.Stamp(ctx, acc, created).AggregateVersion = 1
		w.publish(t, acc, created)
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 2, Available: 1}) // the admin's and tech_y's

		disabled := &identityv1.TechnicianDisabled{TechnicianId: "tech_y", Reason: "left"}
		enabled := &identityv1.TechnicianEnabled{TechnicianId: "tech_y"}
		eventbus.Stamp(ctx, acc, disabled).AggregateVersion = 2
		eventbus.Stamp(ctx, acc, enabled).AggregateVersion = 3
		w.publish(t, acc, enabled)
		w.publish(t, acc, disabled)
		w.settle(t)
		w.waitSeats(t, acc, ports.Seats{Total: 3, Used: 2, Available: 1})
		if n := w.rows(t, "seats", acc, "technician_id = $2 AND status = 'released'", "tech_y"); n != 0 {
			t.Fatalf("tech_y's seat was released by the late disable (%d released rows)", n)
		}
	})
}
