package domain

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"roster.dev/pkg/profile"
)

// ErrUnknownFeature: the profile gates no feature of that name (S-8).
var ErrUnknownFeature = errors.New("unknown feature")

// EveryPlan in a gate's plan list opens the feature on every plan.
const EveryPlan = "*"

// Gate is S-8's answer for one feature of one account.
type Gate struct {
	Feature string
	Enabled bool
	// Reason says which plan decided, in words fit for a 403 detail.
	Reason string
}

// FeatureGate decides S-8's "is feature F on for this plan" from a
// profile's data alone: gates maps each gated feature to the plan ids that
// include it ("*": every plan), plans gives their display names. No
// profile or plan is named in code, so a profile file alone changes who
// gets what.
func FeatureGate(gates map[string][]string, plans map[string]profile.Plan, planID, feature string) (Gate, error) {
	open, ok := gates[feature]
	if !ok {
		known := slices.Sorted(maps.Keys(gates))
		return Gate{}, fmt.Errorf("%w: %q (gated here: %s)", ErrUnknownFeature, feature, strings.Join(known, ", "))
	}
	name := planName(plans, planID)
	g := Gate{Feature: feature}
	switch {
	case slices.Contains(open, EveryPlan):
		g.Enabled, g.Reason = true, "every plan includes "+feature
	case slices.Contains(open, planID):
		g.Enabled, g.Reason = true, fmt.Sprintf("the %s plan includes %s", name, feature)
	case len(open) == 0:
		g.Reason = fmt.Sprintf("no plan includes %s", feature)
	default:
		names := make([]string, 0, len(open))
		for _, id := range open {
			names = append(names, planName(plans, id))
		}
		g.Reason = fmt.Sprintf("the %s plan does not include %s; it comes with %s", name, feature, strings.Join(names, ", "))
	}
	return g, nil
}

// FeatureGates is FeatureGate for every feature the profile gates, sorted
// by feature.
func FeatureGates(gates map[string][]string, plans map[string]profile.Plan, planID string) []Gate {
	out := make([]Gate, 0, len(gates))
	for _, f := range slices.Sorted(maps.Keys(gates)) {
		g, _ := FeatureGate(gates, plans, planID, f) // f is a key: no error
		out = append(out, g)
	}
	return out
}

func planName(plans map[string]profile.Plan, id string) string {
	if p, ok := plans[id]; ok && p.Name != "" {
		return p.Name
	}
	return id
}
