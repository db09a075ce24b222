package domain_test

import (
	"errors"
	"testing"
	"time"

	"roster.dev/services/seatbilling/domain"
)

// S-3, S-6: a free seat is reserved whatever the caller confirmed; with
// none, a confirmed request reserves a purchase and an unconfirmed one gets
// a quote.
func TestReserve(t *testing.T) {
	tests := []struct {
		name    string
		occ     domain.Occupancy
		confirm bool
		want    domain.Outcome
	}{
		{"one seat free", domain.Occupancy{Total: 2, Occupied: 1}, false, domain.OutcomeReserved},
		{"a free seat is used even when a purchase is confirmed", domain.Occupancy{Total: 2, Occupied: 1}, true, domain.OutcomeReserved},
		{"every seat occupied, no confirmation", domain.Occupancy{Total: 2, Occupied: 2}, false, domain.OutcomeQuote},
		{"every seat occupied, confirmed", domain.Occupancy{Total: 2, Occupied: 2}, true, domain.OutcomePurchaseReserved},
		{"the last seat held by a live reservation", domain.Occupancy{Total: 2, Occupied: 1, Held: 1}, false, domain.OutcomeQuote},
		{"the last seat held, confirmed", domain.Occupancy{Total: 2, Occupied: 1, Held: 1}, true, domain.OutcomePurchaseReserved},
		{"overallocated", domain.Occupancy{Total: 2, Occupied: 3}, false, domain.OutcomeQuote},
		{"freed seats (S-4) are reused", domain.Occupancy{Total: 5, Occupied: 3, Held: 1}, false, domain.OutcomeReserved},
		// S-5: a seat pending removal is not free for reuse, even once its
		// technician was disabled (Leaving).
		{"a released seat pending removal is not reused", domain.Occupancy{Total: 3, Occupied: 2, Leaving: 1}, false, domain.OutcomeQuote},
		{"a released seat pending removal, confirmed: bought", domain.Occupancy{Total: 3, Occupied: 2, Leaving: 1}, true, domain.OutcomePurchaseReserved},
		{"another seat freed besides the leaving one", domain.Occupancy{Total: 4, Occupied: 2, Leaving: 1}, false, domain.OutcomeReserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.Reserve(tt.occ, tt.confirm); got != tt.want {
				t.Errorf("Reserve(%+v, confirm=%v) = %s, want %s", tt.occ, tt.confirm, got, tt.want)
			}
		})
	}
}

func TestReservationLife(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	usd := domain.Money{Amount: 5040, Currency: "usd"}
	seat, err := domain.NewReservation("acc_1", "res_1", domain.OutcomeReserved, usd, now, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if seat.Purchase || seat.Amount != (domain.Money{}) || seat.Status != domain.ReservationHeld || !seat.ExpiresAt.Equal(now.Add(2*time.Minute)) {
		t.Errorf("reserved = %+v, want held until +2m, no purchase, no amount", seat)
	}
	buy, err := domain.NewReservation("acc_1", "res_2", domain.OutcomePurchaseReserved, usd, now, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !buy.Purchase || buy.Amount != usd || buy.Outcome() != domain.OutcomePurchaseReserved {
		t.Errorf("purchase reserved = %+v, want a purchase of 5040", buy)
	}
	if _, err := domain.NewReservation("acc_1", "res_3", domain.OutcomeQuote, usd, now, time.Minute); !errors.Is(err, domain.ErrInvalidReservation) {
		t.Errorf("a quote writes a reservation: %v", err)
	}
	if _, err := domain.NewReservation("acc_1", "", domain.OutcomeReserved, usd, now, time.Minute); !errors.Is(err, domain.ErrInvalidReservation) {
		t.Errorf("a reservation without id: %v", err)
	}

	tests := []struct {
		name       string
		r          domain.Reservation
		at         time.Time
		live, hold bool
	}{
		{"held, before expiry", seat, now.Add(time.Minute), true, true},
		{"held, at expiry", seat, now.Add(2 * time.Minute), false, false},
		{"held, after expiry", seat, now.Add(3 * time.Minute), false, false},
		{"purchase, before expiry: live but holds no existing seat", buy, now, true, false},
		{"confirmed", confirmed(seat), now, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Live(tt.at); got != tt.live {
				t.Errorf("Live = %v, want %v", got, tt.live)
			}
			if got := tt.r.HoldsSeat(tt.at); got != tt.hold {
				t.Errorf("HoldsSeat = %v, want %v", got, tt.hold)
			}
		})
	}
}

func confirmed(r domain.Reservation) domain.Reservation {
	r.Status, r.TechnicianID = domain.ReservationConfirmed, "tech_1"
	return r
}

// S-3, S-6 and the late confirmation: how a technician identity created or
// enabled takes a seat.
func TestSettle(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	usd := domain.Money{Amount: 5040, Currency: "usd"}
	seat, _ := domain.NewReservation("acc_1", "res_1", domain.OutcomeReserved, usd, now, 2*time.Minute)
	buy, _ := domain.NewReservation("acc_1", "res_2", domain.OutcomePurchaseReserved, usd, now, 2*time.Minute)
	later := now.Add(5 * time.Minute)
	tests := []struct {
		name  string
		r     domain.Reservation
		found bool
		occ   domain.Occupancy
		at    time.Time
		want  domain.Settlement
	}{
		// The live reservation is among Held: the seat it holds is its own.
		{"live reservation takes its held seat", seat, true, domain.Occupancy{Total: 2, Occupied: 1, Held: 1}, now, domain.SettleAssign},
		{"live purchase buys", buy, true, domain.Occupancy{Total: 2, Occupied: 2}, now, domain.SettleBuy},
		{"live purchase buys even if a seat freed meanwhile", buy, true, domain.Occupancy{Total: 2, Occupied: 1}, now, domain.SettleBuy},
		{"expired purchase still buys: the caller confirmed", buy, true, domain.Occupancy{Total: 2, Occupied: 2}, later, domain.SettleBuy},
		{"expired reservation, a seat still free", seat, true, domain.Occupancy{Total: 2, Occupied: 1}, later, domain.SettleAssign},
		{"expired reservation, its seat taken", seat, true, domain.Occupancy{Total: 2, Occupied: 1, Held: 1}, later, domain.SettleOverallocate},
		{"unknown reservation, a seat free", domain.Reservation{}, false, domain.Occupancy{Total: 3, Occupied: 1}, now, domain.SettleAssign},
		{"unknown reservation, none free", domain.Reservation{}, false, domain.Occupancy{Total: 2, Occupied: 2}, now, domain.SettleOverallocate},
		{"confirmed for another technician counts as none", confirmed(buy), true, domain.Occupancy{Total: 2, Occupied: 2}, now, domain.SettleOverallocate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.Settle(tt.r, tt.found, tt.occ, tt.at); got != tt.want {
				t.Errorf("Settle = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSeatPurchaseCharge(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r, _ := domain.NewReservation("acc_1", "res_2", domain.OutcomePurchaseReserved, domain.Money{Amount: 5040, Currency: "usd"}, now, time.Minute)
	got := domain.SeatPurchase(r, "tech_2", now.Add(time.Hour))
	// The id derives from the reservation: one charge per reservation.
	want := domain.Charge{
		ID: domain.ChargeID("acc_1", "seat_purchase", "res_2"), AccountID: "acc_1", Amount: domain.Money{Amount: 5040, Currency: "usd"},
		Reason: domain.ChargeSeatPurchase, TechnicianID: "tech_2", ReservationID: "res_2", CreatedAt: now.Add(time.Hour),
	}
	if got != want {
		t.Errorf("SeatPurchase = %+v, want %+v", got, want)
	}
}
