package domain_test

import (
	"errors"
	"strings"
	"testing"

	"roster.dev/pkg/profile"
	"roster.dev/services/seatbilling/domain"
)

// S-8 for every plan of the shipped profiles: atera gates CSV import of end
// users to IT Expert, Master, Enterprise and MSP Growth, Power, Superpower,
// SSO to Enterprise / Superpower, and offers no SCIM for technicians;
// roster gates nothing.
func TestFeatureGatesOfTheProfiles(t *testing.T) {
	const csv, sso, scim = "csv_import_end_users", "sso", "scim_technicians"
	tests := []struct {
		profile, plan       string
		csv, sso, scim      bool
		reasonSSO, reasonCS string
	}{
		{"atera-it", "professional", false, false, false, "the Professional plan does not include sso; it comes with Enterprise",
			"the Professional plan does not include csv_import_end_users; it comes with Expert, Master, Enterprise"},
		{"atera-it", "expert", true, false, false, "the Expert plan does not include sso; it comes with Enterprise", "the Expert plan includes csv_import_end_users"},
		{"atera-it", "master", true, false, false, "the Master plan does not include sso; it comes with Enterprise", "the Master plan includes csv_import_end_users"},
		{"atera-it", "enterprise", true, true, false, "the Enterprise plan includes sso", "the Enterprise plan includes csv_import_end_users"},
		{"atera-msp", "pro", false, false, false, "the Pro plan does not include sso; it comes with Superpower",
			"the Pro plan does not include csv_import_end_users; it comes with Growth, Power, Superpower"},
		{"atera-msp", "growth", true, false, false, "the Growth plan does not include sso; it comes with Superpower", "the Growth plan includes csv_import_end_users"},
		{"atera-msp", "power", true, false, false, "the Power plan does not include sso; it comes with Superpower", "the Power plan includes csv_import_end_users"},
		{"atera-msp", "superpower", true, true, false, "the Superpower plan includes sso", "the Superpower plan includes csv_import_end_users"},
		{"roster", "pro", true, true, true, "every plan includes sso", "every plan includes csv_import_end_users"},
		{"roster", "growth", true, true, true, "every plan includes sso", "every plan includes csv_import_end_users"},
		{"roster", "power", true, true, true, "every plan includes sso", "every plan includes csv_import_end_users"},
		{"roster", "superpower", true, true, true, "every plan includes sso", "every plan includes csv_import_end_users"},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+tt.plan, func(t *testing.T) {
			p, err := profile.Get(tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			covered[tt.profile+"/"+tt.plan] = true
			gates := domain.FeatureGates(p.SeatBilling.Gates, p.SeatBilling.Plans, tt.plan)
			want := map[string]bool{csv: tt.csv, sso: tt.sso, scim: tt.scim}
			if len(gates) != len(want) {
				t.Fatalf("gates %+v, want the three of %v", gates, want)
			}
			for i, g := range gates {
				if i > 0 && gates[i-1].Feature >= g.Feature {
					t.Errorf("gates not sorted by feature: %+v", gates)
				}
				if e, ok := want[g.Feature]; !ok || e != g.Enabled {
					t.Errorf("%s enabled = %v, want %v", g.Feature, g.Enabled, e)
				}
				one, err := domain.FeatureGate(p.SeatBilling.Gates, p.SeatBilling.Plans, tt.plan, g.Feature)
				if err != nil || one != g {
					t.Errorf("FeatureGate(%s) = %+v, %v; want %+v", g.Feature, one, err, g)
				}
				switch g.Feature {
				case sso:
					if g.Reason != tt.reasonSSO {
						t.Errorf("sso reason %q, want %q", g.Reason, tt.reasonSSO)
					}
				case csv:
					if g.Reason != tt.reasonCS {
						t.Errorf("csv reason %q, want %q", g.Reason, tt.reasonCS)
					}
				case scim:
					if !tt.scim && g.Reason != "no plan includes scim_technicians" {
						t.Errorf("scim reason %q", g.Reason)
					}
				}
			}
		})
	}
	// Every plan of every shipped profile is in the table.
	for _, id := range []string{"atera-it", "atera-msp", "roster"} {
		p, err := profile.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, plan := range p.PlanIDs() {
			if !covered[id+"/"+plan] {
				t.Errorf("no gate case for %s/%s", id, plan)
			}
		}
	}
}

// The gates are data: a profile nobody wrote code for gates what its data
// says, and a feature it does not gate is an error naming those it does.
func TestFeatureGateIsData(t *testing.T) {
	gates := map[string][]string{"sso": {"gold"}, "audit_export": {"*"}}
	plans := map[string]profile.Plan{"gold": {Name: "Gold"}, "tin": {Name: "Tin"}}
	tests := []struct {
		plan, feature string
		enabled       bool
		reason        string
	}{
		{"gold", "sso", true, "the Gold plan includes sso"},
		{"tin", "sso", false, "the Tin plan does not include sso; it comes with Gold"},
		{"tin", "audit_export", true, "every plan includes audit_export"},
		// A plan the data does not name is shown by its id.
		{"lead", "sso", false, "the lead plan does not include sso; it comes with Gold"},
	}
	for _, tt := range tests {
		g, err := domain.FeatureGate(gates, plans, tt.plan, tt.feature)
		if err != nil || g.Enabled != tt.enabled || g.Reason != tt.reason || g.Feature != tt.feature {
			t.Errorf("FeatureGate(%s, %s) = %+v, %v; want %v %q", tt.plan, tt.feature, g, err, tt.enabled, tt.reason)
		}
	}
	_, err := domain.FeatureGate(gates, plans, "gold", "scim_technicians")
	if !errors.Is(err, domain.ErrUnknownFeature) || !strings.Contains(err.Error(), "audit_export, sso") {
		t.Errorf("unknown feature: %v", err)
	}
}
