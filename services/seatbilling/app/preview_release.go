package app

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"roster.dev/services/seatbilling/domain"
)

// SeatReleasePreview is what disabling a technician would do to the bill
// (S-4, S-5), for identity's offboarding preview (O-3).
type SeatReleasePreview struct {
	SeatFreed                       bool
	ChargeNow, Refund               domain.Money
	AvailableBefore, AvailableAfter int
	NextRenewal                     domain.Money
	NextRenewalDate                 time.Time
	Note                            string
}

// PreviewSeatReleaseHandler answers PreviewSeatRelease; it changes nothing.
type PreviewSeatReleaseHandler struct {
	store Store
}

// Handle previews the release of technicianID's seat: a disable charges
// nothing and refunds nothing; an occupied seat without a pending removal
// becomes free for reuse in the cycle (S-4); the next renewal is the same
// with or without the disable, since plain disabling never reduces the
// licence count (S-5).
func (h PreviewSeatReleaseHandler) Handle(ctx context.Context, accountID, technicianID string) (SeatReleasePreview, error) {
	sub, count, err := h.store.Subscription(ctx, accountID)
	if err != nil {
		return SeatReleasePreview{}, fmt.Errorf("preview seat release: %w", err)
	}
	var seat domain.Seat
	var found bool
	err = h.store.InTx(ctx, func(tx *sql.Tx) error {
		seat, found, err = h.store.Seat(ctx, tx, accountID, technicianID)
		return err
	})
	if err != nil {
		return SeatReleasePreview{}, err
	}
	renewal, err := sub.Renew(count.Pending)
	if err != nil {
		return SeatReleasePreview{}, err
	}
	usage := domain.UsageOf(sub.Seats, count.Occupied, count.Leaving)
	zero := domain.Money{Currency: sub.UnitPrice.Currency}
	p := SeatReleasePreview{ChargeNow: zero, Refund: zero, AvailableBefore: usage.Available, AvailableAfter: usage.Available,
		NextRenewal: renewal.Amount, NextRenewalDate: renewal.Next.Start}
	switch {
	case !found || seat.Status != domain.SeatOccupied:
		p.Note = "the technician holds no seat; nothing changes on the bill"
	case !seat.RemovalDate.IsZero():
		p.Note = "the seat's removal is already scheduled for the cycle end (S-5): it is not freed for reuse; no charge, no refund"
	default:
		p.SeatFreed, p.AvailableAfter = true, usage.Available+1
		p.Note = "the seat is freed for reuse in this cycle at no charge (S-4); no refund, and the next renewal is unchanged because disabling never reduces the licence count"
	}
	return p, nil
}
