package ports

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/rpc"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
)

// ServeFeatureEnabled answers the other services' plan-gate questions on
// nc (rpc.FeatureEnabled, queue group "seatbilling"; S-8): the caller's
// mistakes and an account seatbilling does not know are outcomes, its own
// failures rpc errors.
func ServeFeatureEnabled(nc *nats.Conn, a *app.Application, log *slog.Logger) (*nats.Subscription, error) {
	return rpc.Serve(nc, rpc.FeatureEnabled, "seatbilling", log,
		func() *seatbillingv1.FeatureEnabledRequest { return &seatbillingv1.FeatureEnabledRequest{} },
		func(ctx context.Context, req *seatbillingv1.FeatureEnabledRequest) (*seatbillingv1.FeatureEnabledReply, error) {
			if req.GetAccountId() == "" || req.GetFeature() == "" {
				return &seatbillingv1.FeatureEnabledReply{
					Outcome: seatbillingv1.FeatureEnabledReply_OUTCOME_ERROR, Error: "account_id and feature are required",
				}, nil
			}
			ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
			defer cancel()
			g, err := a.Features.Feature(ctx, req.GetAccountId(), req.GetFeature())
			switch {
			case errors.Is(err, domain.ErrNotFound):
				return &seatbillingv1.FeatureEnabledReply{Outcome: seatbillingv1.FeatureEnabledReply_OUTCOME_NO_SUBSCRIPTION, Error: err.Error()}, nil
			case errors.Is(err, domain.ErrUnknownFeature):
				return &seatbillingv1.FeatureEnabledReply{Outcome: seatbillingv1.FeatureEnabledReply_OUTCOME_UNKNOWN_FEATURE, Error: err.Error()}, nil
			case err != nil:
				return nil, err
			}
			return &seatbillingv1.FeatureEnabledReply{
				Outcome: seatbillingv1.FeatureEnabledReply_OUTCOME_OK, Enabled: g.Enabled, Reason: g.Reason,
			}, nil
		})
}

// Feature is one plan gate of an account (S-8).
type Feature struct {
	Feature string `json:"feature"`
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason"`
}

// FeatureList is GET …/features: every gate of the account's profile, by
// feature. Not paged: a profile gates a handful of features.
type FeatureList struct {
	Data []Feature `json:"data"`
}

// listFeatures: GET /v1/accounts/{acc}/features.
func (h *HTTP) listFeatures(w http.ResponseWriter, r *http.Request) {
	acc := chi.URLParam(r, "acc")
	gates, err := h.app.Features.All(r.Context(), acc)
	if err != nil {
		httpx.Error(w, r, h.log, problemFor(err, acc))
		return
	}
	out := FeatureList{Data: make([]Feature, 0, len(gates))}
	for _, g := range gates {
		out.Data = append(out.Data, Feature{Feature: g.Feature, Enabled: g.Enabled, Reason: g.Reason})
	}
	httpx.JSON(w, http.StatusOK, out)
}
