package ports

import (
	"context"
	"errors"
	"log/slog"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/rpc"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
)

// ServeScheduleLicenceRemoval answers identity's ScheduleLicenceRemoval
// requests on nc (rpc.ScheduleLicenceRemoval, queue group "seatbilling"),
// as ServeReserveSeat does: the caller's mistakes are ERROR or
// NO_SUBSCRIPTION replies, seatbilling's own failures rpc errors.
func ServeScheduleLicenceRemoval(nc *nats.Conn, a *app.Application, log *slog.Logger) (*nats.Subscription, error) {
	return rpc.Serve(nc, rpc.ScheduleLicenceRemoval, "seatbilling", log,
		func() *seatbillingv1.ScheduleLicenceRemovalRequest {
			return &seatbillingv1.ScheduleLicenceRemovalRequest{}
		},
		func(ctx context.Context, req *seatbillingv1.ScheduleLicenceRemovalRequest) (*seatbillingv1.ScheduleLicenceRemovalReply, error) {
			ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
			defer cancel()
			if req.GetCorrelationId() != "" {
				ctx = eventbus.WithCorrelation(ctx, req.GetCorrelationId())
			}
			if req.GetActor() != nil { // LicenceRemovalScheduled names who asked
				ctx = eventbus.WithActor(ctx, req.GetActor())
			}
			res, err := a.ScheduleLicenceRemoval.Handle(ctx, app.ScheduleLicenceRemoval{
				AccountID: req.GetAccountId(), TechnicianID: req.GetTechnicianId(),
			})
			switch {
			case errors.Is(err, domain.ErrNotFound):
				return &seatbillingv1.ScheduleLicenceRemovalReply{Outcome: seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_NO_SUBSCRIPTION, Error: err.Error()}, nil
			case errors.Is(err, domain.ErrMissingField):
				return &seatbillingv1.ScheduleLicenceRemovalReply{Outcome: seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_ERROR, Error: err.Error()}, nil
			case err != nil:
				return nil, err
			}
			rep := &seatbillingv1.ScheduleLicenceRemovalReply{}
			switch res.Outcome {
			case domain.RemovalScheduled:
				rep.Outcome = seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_SCHEDULED
			case domain.RemovalAlreadyScheduled:
				rep.Outcome = seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_ALREADY_SCHEDULED
			default:
				rep.Outcome = seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_NOT_OCCUPYING
				return rep, nil
			}
			rep.RemovalDate = domain.FormatDate(res.RemovalDate)
			return rep, nil
		})
}
