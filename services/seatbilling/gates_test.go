package seatbilling_test

import (
	"net/http"
	"strings"
	"testing"

	"roster.dev/pkg/svc/svctest"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
)

// S-8 through the service: the request-reply subject the other services
// ask (roster.rpc.seatbilling.feature_enabled) and GET …/features answer
// the same gates, from the account's profile and plan, for atera-it,
// atera-msp and roster accounts.
func TestPlanGates(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		tests := []struct {
			account, profile, plan string
			price                  int64
			csv, sso, scim         bool
		}{
			{"acc_it_professional", "atera-it", "professional", 0, false, false, false},
			{"acc_it_expert", "atera-it", "expert", 0, true, false, false},
			{"acc_it_master", "atera-it", "master", 0, true, false, false},
			{"acc_it_enterprise", "atera-it", "enterprise", 30000, true, true, false},
			{"acc_msp_pro", "atera-msp", "pro", 0, false, false, false},
			{"acc_msp_growth", "atera-msp", "growth", 0, true, false, false},
			{"acc_msp_power", "atera-msp", "power", 0, true, false, false},
			{"acc_msp_superpower", "atera-msp", "superpower", 31500, true, true, false},
			{"acc_roster_pro", "roster", "pro", 0, true, true, true},
			{"acc_roster_superpower", "roster", "superpower", 9900, true, true, true},
		}
		for _, tt := range tests {
			w.openAt(t, tt.account, tt.profile, tt.plan, "monthly", tt.price, "2026-11-01", 2)
		}
		for _, tt := range tests {
			t.Run(tt.profile+"/"+tt.plan, func(t *testing.T) {
				want := map[string]bool{"csv_import_end_users": tt.csv, "sso": tt.sso, "scim_technicians": tt.scim}
				listed := w.features(t, tt.account)
				if len(listed) != len(want) {
					t.Fatalf("GET features = %+v, want %v", listed, want)
				}
				for feature, enabled := range want {
					rep := w.featureEnabled(t, tt.account, feature)
					if rep.GetOutcome() != seatbillingv1.FeatureEnabledReply_OUTCOME_OK || rep.GetEnabled() != enabled || rep.GetReason() == "" {
						t.Errorf("FeatureEnabled(%s) = %v, want enabled %v with a reason", feature, rep, enabled)
					}
					if f := listed[feature]; f.Enabled != enabled || f.Reason != rep.GetReason() {
						t.Errorf("GET features %s = %+v, want %v and the reply's reason %q", feature, f, enabled, rep.GetReason())
					}
				}
			})
		}

		t.Run("errors", func(t *testing.T) {
			for _, tt := range []struct {
				name, account, feature string
				want                   seatbillingv1.FeatureEnabledReply_Outcome
			}{
				{"unknown feature", "acc_msp_growth", "teleportation", seatbillingv1.FeatureEnabledReply_OUTCOME_UNKNOWN_FEATURE},
				{"unknown account", "acc_nobody", "sso", seatbillingv1.FeatureEnabledReply_OUTCOME_NO_SUBSCRIPTION},
				{"no feature", "acc_msp_growth", "", seatbillingv1.FeatureEnabledReply_OUTCOME_ERROR},
				{"no account", "", "sso", seatbillingv1.FeatureEnabledReply_OUTCOME_ERROR},
			} {
				rep := w.featureEnabled(t, tt.account, tt.feature)
				if rep.GetOutcome() != tt.want || rep.GetError() == "" || rep.GetEnabled() {
					t.Errorf("%s: %v, want %v with an error", tt.name, rep, tt.want)
				}
			}
			if rep := w.featureEnabled(t, "acc_msp_growth", "teleportation"); !strings.Contains(rep.GetError(), "csv_import_end_users, scim_technicians, sso") {
				t.Errorf("unknown feature does not name the gated ones: %q", rep.GetError())
			}
			status, _, body := svctest.Get(t, w.url+"/v1/accounts/acc_nobody/features", billingOperator)
			if status != http.StatusNotFound {
				t.Errorf("GET features of an unknown account = %d %s", status, body)
			}
		})
	})
}

// GET …/features is behind billing:read; another account's token gets 404.
func TestFeaturesRouteNeedsBillingRead(t *testing.T) {
	tokens := map[string]apiToken{
		"tok_read":  {accountID: "acc_gates", scopes: []string{"billing:read"}},
		"tok_tech":  {accountID: "acc_gates", scopes: []string{"technicians:read"}},
		"tok_other": {accountID: "acc_other", scopes: []string{"billing:read"}},
	}
	w := newBillingWorld(t, "", seatTestNow, tokens)
	w.openAccount(t, "acc_gates", 2)
	for token, want := range map[string]int{"tok_read": 200, "tok_tech": 403, "tok_other": 404, "": 401} {
		if status, _, body := svctest.Get(t, w.url+"/v1/accounts/acc_gates/features", token); status != want {
			t.Errorf("token %q: %d %s, want %d", token, status, body, want)
		}
	}
}
