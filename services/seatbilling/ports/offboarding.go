package ports

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/rpc"
	commonv1 "roster.dev/proto/roster/common/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
)

// ServePreviewSeatRelease answers identity's offboarding preview (O-3) on
// nc (rpc.PreviewSeatRelease, queue group "seatbilling"): what a disable
// does to the bill (S-4, S-5). It changes nothing.
func ServePreviewSeatRelease(nc *nats.Conn, a *app.Application, log *slog.Logger) (*nats.Subscription, error) {
	return rpc.Serve(nc, rpc.PreviewSeatRelease, "seatbilling", log,
		func() *seatbillingv1.PreviewSeatReleaseRequest { return &seatbillingv1.PreviewSeatReleaseRequest{} },
		func(ctx context.Context, req *seatbillingv1.PreviewSeatReleaseRequest) (*seatbillingv1.PreviewSeatReleaseReply, error) {
			if req.GetAccountId() == "" || req.GetTechnicianId() == "" {
				return &seatbillingv1.PreviewSeatReleaseReply{
					Outcome: seatbillingv1.PreviewSeatReleaseReply_OUTCOME_ERROR, Error: "account_id and technician_id are required",
				}, nil
			}
			ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
			defer cancel()
			p, err := a.PreviewSeatRelease.Handle(ctx, req.GetAccountId(), req.GetTechnicianId())
			switch {
			case errors.Is(err, domain.ErrNotFound):
				return &seatbillingv1.PreviewSeatReleaseReply{Outcome: seatbillingv1.PreviewSeatReleaseReply_OUTCOME_NO_SUBSCRIPTION, Error: err.Error()}, nil
			case err != nil:
				return nil, err
			}
			money := func(m domain.Money) *commonv1.Money { return &commonv1.Money{Amount: m.Amount, Currency: m.Currency} }
			return &seatbillingv1.PreviewSeatReleaseReply{
				Outcome: seatbillingv1.PreviewSeatReleaseReply_OUTCOME_OK, SeatFreed: p.SeatFreed,
				ChargeNow: money(p.ChargeNow), Refund: money(p.Refund),
				SeatsAvailableBefore: int32(p.AvailableBefore), SeatsAvailableAfter: int32(p.AvailableAfter),
				NextRenewal: money(p.NextRenewal), NextRenewalDate: p.NextRenewalDate.Format(time.DateOnly), Note: p.Note,
			}, nil
		})
}
