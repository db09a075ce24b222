package domain_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"roster.dev/services/audit/domain"
)

// every event type reads as an action on a target.
func TestActionAndTarget(t *testing.T) {
	tests := []struct {
		typ    string
		data   string
		action string
		target domain.Target
	}{
		{"roster.identity.v1.AccountCreated", `{"name":"Acme","admin_technician_id":"tech_1"}`, "account.created", domain.Target{Type: "account", ID: "acc_1"}},
		{"roster.identity.v1.TechnicianCreated", `{"technician_id":"tech_2"}`, "technician.created", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.identity.v1.InvitationSent", `{"technician_id":"tech_2","invitation_id":"inv_1"}`, "technician.invited", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.identity.v1.FirstLogin", `{"technician_id":"tech_2","method":"password"}`, "technician.first_login", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.identity.v1.TechnicianDisabled", `{"technician_id":"tech_2"}`, "technician.disabled", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.identity.v1.TechnicianEnabled", `{"technician_id":"tech_2"}`, "technician.enabled", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.identity.v1.EndUserCreated", `{"end_user_id":"eu_1","site_id":"site_1"}`, "end_user.created", domain.Target{Type: "end_user", ID: "eu_1"}},
		{"roster.identity.v1.EndUserDeactivated", `{"end_user_id":"eu_1"}`, "end_user.deactivated", domain.Target{Type: "end_user", ID: "eu_1"}},
		{"roster.seatbilling.v1.SubscriptionCreated", `{"plan":"pro"}`, "subscription.created", domain.Target{Type: "account", ID: "acc_1"}},
		{"roster.seatbilling.v1.SeatReserved", `{"reservation_id":"rsv_1"}`, "seat.reserved", domain.Target{Type: "seat_reservation", ID: "rsv_1"}},
		{"roster.seatbilling.v1.SeatAssigned", `{"technician_id":"tech_2","reservation_id":"rsv_1"}`, "seat.assigned", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.seatbilling.v1.SeatReleased", `{"technician_id":"tech_2"}`, "seat.released", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.seatbilling.v1.SeatPurchased", `{"technician_id":"tech_2","reservation_id":"rsv_1"}`, "seat.purchased", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.seatbilling.v1.SeatPurchased", `{"technician_id":"","reservation_id":"rsv_1"}`, "seat.purchased", domain.Target{Type: "account", ID: "acc_1"}},
		{"roster.seatbilling.v1.ChargeRecorded", `{"charge_id":"chg_1","technician_id":"tech_2"}`, "charge.recorded", domain.Target{Type: "charge", ID: "chg_1"}},
		{"roster.rolepolicy.v1.RoleCreated", `{"role_id":"role_1"}`, "role.created", domain.Target{Type: "role", ID: "role_1"}},
		{"roster.rolepolicy.v1.RoleAssigned", `{"technician_id":"tech_2","role_id":"role_1"}`, "role.assigned", domain.Target{Type: "technician", ID: "tech_2"}},
		// Types not in the table yet: derived.
		{"roster.identity.v1.LoginFailed", `{"technician_id":"tech_2"}`, "login.failed", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.identity.v1.PasswordResetRequested", `{}`, "password_reset.requested", domain.Target{Type: "account", ID: "acc_1"}},
		{"roster.identity.v1.SSOConfigured", `{}`, "sso.configured", domain.Target{Type: "account", ID: "acc_1"}},
		{"roster.identity.v1.TOTPEnrolled", `{"technician_id":"tech_2"}`, "totp.enrolled", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.identity.v1.SessionRevoked", `{"session_id":"ses_1","technician_id":"tech_2"}`, "session.revoked", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.rolepolicy.v1.PersonaDeleted", `{"persona_id":"per_1"}`, "persona.deleted", domain.Target{Type: "persona", ID: "per_1"}},
		{"roster.identity.v2.TechnicianCreated", `{"technician_id":"tech_2"}`, "technician.created", domain.Target{Type: "technician", ID: "tech_2"}},
		{"roster.identity.v1.Heartbeat", `{}`, "heartbeat", domain.Target{Type: "account", ID: "acc_1"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.data, func(t *testing.T) {
			r, err := domain.NewRecord(domain.Entry{EventID: "e1", EventType: tt.typ, AccountID: "acc_1", Data: json.RawMessage(tt.data)})
			if err != nil {
				t.Fatal(err)
			}
			if r.Action != tt.action || r.Target != tt.target {
				t.Fatalf("got %s on %+v, want %s on %+v", r.Action, r.Target, tt.action, tt.target)
			}
		})
	}
}

func TestNewRecord(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 999_999_999, time.FixedZone("X", -5*3600))
	r, err := domain.NewRecord(domain.Entry{EventID: "e1", EventType: "roster.identity.v1.TechnicianEnabled", AccountID: "acc_1", OccurredAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "aud_e1" {
		t.Errorf("id = %q, want aud_<event id>", r.ID)
	}
	if want := time.Date(2026, 3, 1, 15, 0, 0, 999_999_000, time.UTC); !r.Time.Equal(want) || r.Time.Location() != time.UTC {
		t.Errorf("time = %v, want %v (UTC, microseconds)", r.Time, want)
	}
	if r.Actor.Type != domain.ActorSystem || string(r.Data) != "{}" {
		t.Errorf("defaults: actor %+v, data %s; want system and {}", r.Actor, r.Data)
	}
	if r.Sequence != 0 || r.Hash != "" {
		t.Errorf("a new record is not sealed yet: %+v", r)
	}

	for name, e := range map[string]domain.Entry{
		"no event id":     {EventType: "roster.identity.v1.TechnicianEnabled", Data: json.RawMessage(`{}`)},
		"data not JSON":   {EventID: "e1", Data: json.RawMessage(`{"a"`)},
		"data not object": {EventID: "e1", Data: json.RawMessage(`[1]`)},
	} {
		if _, err := domain.NewRecord(e); err == nil || !(errors.Is(err, domain.ErrNoEventID) || errors.Is(err, domain.ErrDataInvalid)) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
