package domain

import (
	"strings"
	"unicode"
)

// Target types that are not named after an id field.
const (
	TargetAccount = "account"
)

// kind is how one event type reads in the audit trail.
type kind struct {
	action string
	// target is the target type; idField the event field holding its id.
	// With no idField, or the field empty, the target is the account.
	target, idField string
}

// kinds is the action and target of every event type Roster emits today
// (docs/audit.md). Other types get a derived action and target (ActionOf,
// TargetOf), so a new event is audited before anyone edits this table.
var kinds = map[string]kind{
	"roster.identity.v1.AccountCreated":         {"account.created", TargetAccount, ""},
	"roster.identity.v1.TechnicianCreated":      {"technician.created", "technician", "technician_id"},
	"roster.identity.v1.InvitationSent":         {"technician.invited", "technician", "technician_id"},
	"roster.identity.v1.InvitationAccepted":     {"invitation.accepted", "technician", "technician_id"},
	"roster.identity.v1.AcceptanceHeld":         {"invitation.acceptance_held", "technician", "technician_id"},
	"roster.identity.v1.InvitationRevoked":      {"invitation.revoked", "technician", "technician_id"},
	"roster.identity.v1.PersonasRequested":      {"personas.requested", "technician", "technician_id"},
	"roster.identity.v1.FirstLogin":             {"technician.first_login", "technician", "technician_id"},
	"roster.identity.v1.TechnicianLoggedIn":     {"login.succeeded", "technician", "technician_id"},
	"roster.identity.v1.TechnicianDisabled":     {"technician.disabled", "technician", "technician_id"},
	"roster.identity.v1.TechnicianEnabled":      {"technician.enabled", "technician", "technician_id"},
	"roster.identity.v1.EndUserCreated":         {"end_user.created", "end_user", "end_user_id"},
	"roster.identity.v1.EndUserDeactivated":     {"end_user.deactivated", "end_user", "end_user_id"},
	"roster.seatbilling.v1.SubscriptionCreated": {"subscription.created", TargetAccount, ""},
	"roster.seatbilling.v1.SeatReserved":        {"seat.reserved", "seat_reservation", "reservation_id"},
	"roster.seatbilling.v1.SeatAssigned":        {"seat.assigned", "technician", "technician_id"},
	"roster.seatbilling.v1.SeatReleased":        {"seat.released", "technician", "technician_id"},
	"roster.seatbilling.v1.SeatPurchased":       {"seat.purchased", "technician", "technician_id"},
	"roster.seatbilling.v1.ChargeRecorded":      {"charge.recorded", "charge", "charge_id"},
	"roster.rolepolicy.v1.RoleCreated":          {"role.created", "role", "role_id"},
	"roster.rolepolicy.v1.RoleAssigned":         {"role.assigned", "technician", "technician_id"},
	"roster.rolepolicy.v1.PersonaChanged":       {"persona.changed", "persona", "persona_id"},
	"roster.rolepolicy.v1.PurposeChanged":       {"purpose.changed", "purpose", "purpose_id"},
	"roster.rolepolicy.v1.PersonasAssigned":     {"personas.assigned", "technician", "technician_id"},
}

// targetFields are the id fields an event of an unknown type is searched
// for, most specific first: the first one present names the target
// (technician_id → technician). Without any, the target is the account.
var targetFields = []string{
	"technician_id", "end_user_id", "role_id", "charge_id", "invitation_id",
	"reservation_id", "session_id", "token_id", "persona_id", "purpose_id", "site_id",
}

// ActionOf is the audit action of an event type: the table's name for
// the types Roster emits today; for any other type, derived from the
// message name: every word but the last, snake_case, then a dot and the
// last word (LoginFailed → login.failed, PasswordResetRequested →
// password_reset.requested, Heartbeat → heartbeat).
func ActionOf(eventType string) string {
	if k, ok := kinds[eventType]; ok {
		return k.action
	}
	name := eventType[strings.LastIndexByte(eventType, '.')+1:]
	words := splitWords(name)
	switch len(words) {
	case 0:
		return "unknown"
	case 1:
		return words[0]
	}
	last := len(words) - 1
	return strings.Join(words[:last], "_") + "." + words[last]
}

// TargetOf is what an event of this type was done to, read from its fields
// (snake_case JSON names); the account when no field names anything more
// specific.
func TargetOf(eventType, accountID string, fields map[string]any) Target {
	if k, ok := kinds[eventType]; ok {
		if id, _ := fields[k.idField].(string); k.idField != "" && id != "" {
			return Target{Type: k.target, ID: id}
		}
		return Target{Type: TargetAccount, ID: accountID}
	}
	for _, f := range targetFields {
		if id, _ := fields[f].(string); id != "" {
			return Target{Type: strings.TrimSuffix(f, "_id"), ID: id}
		}
	}
	return Target{Type: TargetAccount, ID: accountID}
}

// splitWords splits a CamelCase name into lower-case words, keeping
// acronyms whole: SSOConfigured → sso, configured.
func splitWords(name string) []string {
	var words []string
	rs := []rune(name)
	start := 0
	for i := 1; i <= len(rs); i++ {
		boundary := i == len(rs) ||
			(unicode.IsUpper(rs[i]) && (!unicode.IsUpper(rs[i-1]) ||
				(i+1 < len(rs) && unicode.IsLower(rs[i+1]))))
		if boundary {
			if w := strings.ToLower(string(rs[start:i])); w != "" {
				words = append(words, w)
			}
			start = i
		}
	}
	return words
}
