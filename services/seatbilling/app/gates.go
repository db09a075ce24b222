package app

import (
	"context"
	"fmt"

	"roster.dev/pkg/profile"
	"roster.dev/services/seatbilling/domain"
)

// FeaturesHandler answers S-8's plan gates: is feature F on for this
// account, from the gates of its profile's data and its plan.
type FeaturesHandler struct {
	store SubscriptionReader
}

// Feature answers one feature; errors wrap domain.ErrNotFound for an
// account without a subscription and domain.ErrUnknownFeature for a
// feature the profile does not gate.
func (h FeaturesHandler) Feature(ctx context.Context, accountID, feature string) (domain.Gate, error) {
	sub, prof, err := h.load(ctx, accountID)
	if err != nil {
		return domain.Gate{}, err
	}
	g, err := domain.FeatureGate(prof.SeatBilling.Gates, prof.SeatBilling.Plans, sub.Plan, feature)
	if err != nil {
		return domain.Gate{}, fmt.Errorf("feature of %s: %w", accountID, err)
	}
	return g, nil
}

// All answers every feature the account's profile gates, by feature.
func (h FeaturesHandler) All(ctx context.Context, accountID string) ([]domain.Gate, error) {
	sub, prof, err := h.load(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return domain.FeatureGates(prof.SeatBilling.Gates, prof.SeatBilling.Plans, sub.Plan), nil
}

func (h FeaturesHandler) load(ctx context.Context, accountID string) (domain.Subscription, *profile.Profile, error) {
	sub, _, err := h.store.Subscription(ctx, accountID)
	if err != nil {
		return domain.Subscription{}, nil, fmt.Errorf("features: %w", err)
	}
	prof, err := profile.Get(sub.Profile)
	if err != nil {
		return domain.Subscription{}, nil, fmt.Errorf("features of %s: %w", accountID, err)
	}
	return sub, prof, nil
}
