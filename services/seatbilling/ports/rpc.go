package ports

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/rpc"
	commonv1 "roster.dev/proto/roster/common/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
)

// rpcTimeout bounds one ReserveSeat: the caller gives up after
// rpc.DefaultTimeout anyway, and a transaction must not wait on locks
// forever.
const rpcTimeout = 10 * time.Second

// ServeReserveSeat answers identity's ReserveSeat requests on nc
// (rpc.ReserveSeat, queue group "seatbilling": each request is answered by
// one replica). The caller's own mistakes — an unknown account, missing
// ids — are ERROR replies it can show; a failure of seatbilling itself is
// an rpc error (rpc.ErrRemote on the caller's side), which identity turns
// into a 5xx rather than a 402.
func ServeReserveSeat(nc *nats.Conn, a *app.Application, log *slog.Logger) (*nats.Subscription, error) {
	return rpc.Serve(nc, rpc.ReserveSeat, "seatbilling", log,
		func() *seatbillingv1.ReserveSeatRequest { return &seatbillingv1.ReserveSeatRequest{} },
		func(ctx context.Context, req *seatbillingv1.ReserveSeatRequest) (*seatbillingv1.ReserveSeatReply, error) {
			ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
			defer cancel()
			if req.GetCorrelationId() != "" {
				ctx = eventbus.WithCorrelation(ctx, req.GetCorrelationId())
			}
			res, err := a.ReserveSeat.Handle(ctx, app.ReserveSeat{
				AccountID:       req.GetAccountId(),
				ReservationID:   req.GetReservationId(),
				ConfirmPurchase: req.GetConfirmPurchase(),
			})
			switch {
			case errors.Is(err, domain.ErrNotFound):
				return &seatbillingv1.ReserveSeatReply{Outcome: seatbillingv1.ReserveSeatReply_OUTCOME_NO_SUBSCRIPTION, Error: err.Error()}, nil
			case errors.Is(err, domain.ErrInvalidReservation):
				return &seatbillingv1.ReserveSeatReply{Outcome: seatbillingv1.ReserveSeatReply_OUTCOME_ERROR, Error: err.Error()}, nil
			case err != nil:
				return nil, err
			}
			return reserveSeatReply(res), nil
		})
}

func reserveSeatReply(res app.ReserveSeatResult) *seatbillingv1.ReserveSeatReply {
	switch res.Outcome {
	case domain.OutcomeReserved:
		return &seatbillingv1.ReserveSeatReply{Outcome: seatbillingv1.ReserveSeatReply_OUTCOME_RESERVED}
	case domain.OutcomePurchaseReserved:
		return &seatbillingv1.ReserveSeatReply{Outcome: seatbillingv1.ReserveSeatReply_OUTCOME_PURCHASE_RESERVED}
	}
	q := res.Quote
	return &seatbillingv1.ReserveSeatReply{
		Outcome: seatbillingv1.ReserveSeatReply_OUTCOME_QUOTE,
		Quote: &seatbillingv1.Quote{
			Amount:    &commonv1.Money{Amount: q.Amount.Amount, Currency: q.Amount.Currency},
			DaysLeft:  int32(q.DaysLeft),
			CycleDays: int32(q.CycleDays),
			CycleEnd:  domain.FormatDate(q.CycleEnd),
		},
	}
}
