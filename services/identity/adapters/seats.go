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
