package adapters

import (
	"context"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/problem"
	"roster.dev/pkg/rpc"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/identity/app"
)

// SSOGate asks seatbilling whether an account's plan includes single
// sign-on (S-8), over request-reply.
type SSOGate struct{ NC *nats.Conn }

var _ app.PlanGate = SSOGate{}

func (g SSOGate) FeatureEnabled(ctx context.Context, accountID, feature string) (bool, string, error) {
	var rep seatbillingv1.FeatureEnabledReply
	if err := rpc.Call(ctx, g.NC, rpc.FeatureEnabled, &seatbillingv1.FeatureEnabledRequest{AccountId: accountID, Feature: feature}, &rep); err != nil {
		return false, "", err
	}
	switch rep.GetOutcome() {
	case seatbillingv1.FeatureEnabledReply_OUTCOME_OK:
		return rep.GetEnabled(), rep.GetReason(), nil
	case seatbillingv1.FeatureEnabledReply_OUTCOME_NO_SUBSCRIPTION:
		return false, "", problem.New(http.StatusServiceUnavailable, "account-not-ready", "Account not ready",
			"the account was created moments ago and its subscription is still being opened; retry in a second").With("retry_after", 1)
	default:
		return false, "", fmt.Errorf("seatbilling feature_enabled %s: %s %s", feature, rep.GetOutcome(), rep.GetError())
	}
}
