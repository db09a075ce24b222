package adapters

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/rpc"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/identity/app"
)

// Seats asks seatbilling for seats over NATS request-reply.
type Seats struct{ NC *nats.Conn }

var _ app.SeatReserver = Seats{}

func (s Seats) ReserveSeat(ctx context.Context, accountID, reservationID string, confirm bool) (app.SeatOutcome, *app.Quote, error) {
	var rep seatbillingv1.ReserveSeatReply
	err := rpc.Call(ctx, s.NC, rpc.ReserveSeat, &seatbillingv1.ReserveSeatRequest{
		AccountId: accountID, ReservationId: reservationID, ConfirmPurchase: confirm, CorrelationId: eventbus.CorrelationID(ctx),
	}, &rep)
	if err != nil {
		return 0, nil, err
	}
	switch rep.GetOutcome() {
	case seatbillingv1.ReserveSeatReply_OUTCOME_RESERVED:
		return app.SeatReserved, nil, nil
	case seatbillingv1.ReserveSeatReply_OUTCOME_PURCHASE_RESERVED:
		return app.SeatPurchaseReserved, nil, nil
	case seatbillingv1.ReserveSeatReply_OUTCOME_QUOTE:
		q := rep.GetQuote()
		return app.SeatQuote, &app.Quote{Amount: q.GetAmount().GetAmount(), Currency: q.GetAmount().GetCurrency(),
			DaysLeft: int(q.GetDaysLeft()), CycleDays: int(q.GetCycleDays()), CycleEnd: q.GetCycleEnd()}, nil
	case seatbillingv1.ReserveSeatReply_OUTCOME_NO_SUBSCRIPTION:
		return 0, nil, app.ErrSubscriptionNotReady
	default:
		return 0, nil, fmt.Errorf("seatbilling: %s", rep.GetError())
	}
}

var _ app.SeatCostPreviewer = Seats{}

// PreviewSeatRelease asks seatbilling what disabling the technician does
// to the bill (rpc.PreviewSeatRelease, O-3): identity prices nothing.
func (s Seats) PreviewSeatRelease(ctx context.Context, accountID, technicianID string) (*app.SeatCostPreview, error) {
	var rep seatbillingv1.PreviewSeatReleaseReply
	err := rpc.Call(ctx, s.NC, rpc.PreviewSeatRelease, &seatbillingv1.PreviewSeatReleaseRequest{AccountId: accountID, TechnicianId: technicianID}, &rep)
	if err != nil {
		return nil, err
	}
	switch rep.GetOutcome() {
	case seatbillingv1.PreviewSeatReleaseReply_OUTCOME_OK:
		return &app.SeatCostPreview{SeatFreed: rep.GetSeatFreed(), ChargeNow: rep.GetChargeNow().GetAmount(), Refund: rep.GetRefund().GetAmount(),
			Currency: rep.GetNextRenewal().GetCurrency(), SeatsAvailableNow: int(rep.GetSeatsAvailableBefore()),
			SeatsAvailableThen: int(rep.GetSeatsAvailableAfter()), NextRenewal: rep.GetNextRenewal().GetAmount(),
			NextRenewalDate: rep.GetNextRenewalDate(), Note: rep.GetNote()}, nil
	case seatbillingv1.PreviewSeatReleaseReply_OUTCOME_NO_SUBSCRIPTION:
		return nil, app.ErrSubscriptionNotReady
	default:
		return nil, fmt.Errorf("seatbilling: %s", rep.GetError())
	}
}
