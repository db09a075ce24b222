package domain

import (
	"regexp"
	"strings"
	"time"

	"roster.dev/pkg/problem"
)

// Item kinds with a rule of their own in O-1…O-3; any other kind declares
// what disabling its owner does (OwnedItem.OnDisable).
const (
	KindTicket   = "ticket"
	KindReport   = "report"
	KindAsset    = "asset"
	KindAPIToken = "api_token"
)

// Ticket statuses and report folders (O-1).
const (
	TicketOpen     = "open"
	TicketPending  = "pending"
	TicketResolved = "resolved"
	TicketClosed   = "closed"
	FolderPersonal = "personal"
	FolderShared   = "shared"
)

// Actions of an offboarding (api.md "Offboarding and ownership").
const (
	ActionUnassign = "unassign"
	ActionDelete   = "delete"
	ActionArchive  = "archive"
	ActionReassign = "reassign"
	ActionRevoke   = "revoke"
	ActionKeep     = "keep"
	// ActionRestore: an archived report given back on re-enable (O-3).
	ActionRestore = "restore"
)

// Instruction event types, one per action that asks the owning system to
// act (docs/events.md "Offboarding instructions").
const (
	InstrReassigned = "OwnershipReassigned"
	InstrUnassigned = "ItemUnassigned"
	InstrArchived   = "ReportArchived"
	InstrDeleted    = "ReportDeleted"
	InstrRevoked    = "TokenRevoked"
	InstrRestored   = "ReportRestored"
	InstrItemDelete = "ItemDeleted"
)

// Offboarding policies: the profile's rules on disable.
const (
	PolicyAtera  = "atera"  // O-1
	PolicyAtlan  = "atlan"  // O-2
	PolicyRoster = "roster" // O-3
)

// Offboarding statuses.
const (
	OffboardingInProgress = "in_progress"
	OffboardingCompleted  = "completed"
)

// ArchiveWindow is how long an archived personal report stays restorable
// (O-3).
const ArchiveWindow = 30 * 24 * time.Hour

// PolicyFor is the offboarding policy of a profile id: the atera profiles
// (atera-it, atera-msp) follow O-1, atlan O-2, every other profile O-3.
func PolicyFor(profileID string) string {
	switch {
	case strings.HasPrefix(profileID, "atera"):
		return PolicyAtera
	case strings.HasPrefix(profileID, "atlan"):
		return PolicyAtlan
	default:
		return PolicyRoster
	}
}

// OwnedItem is one entry of the ownership registry (O-4).
type OwnedItem struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	OwnerID string `json:"owner_id"`
	// Status of a ticket: open, pending, resolved, closed.
	Status string `json:"status,omitempty"`
	// Folder of a report: personal, shared.
	Folder string `json:"folder,omitempty"`
	// OnDisable is the declared action of a kind without a rule of its
	// own: keep, unassign, reassign, delete, revoke.
	OnDisable     string     `json:"on_disable,omitempty"`
	ArchivedUntil *time.Time `json:"archived_until,omitempty"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// kindRE: a kind is one NATS subject token (roster.offboarding.<acc>.<kind>).
var kindRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,39}$`)

// MaxItemID bounds an item id's length.
const MaxItemID = 200

// Validate checks one item of a registration; field names are prefixed
// with at (items[3]).
func (it *OwnedItem) Validate(at string) []problem.FieldError {
	var errs []problem.FieldError
	bad := func(f, d string) { errs = append(errs, problem.FieldError{Field: at + "." + f, Detail: d}) }
	it.Kind = strings.TrimSpace(it.Kind)
	if !kindRE.MatchString(it.Kind) {
		bad("kind", "must be lower case letters, digits, '_' or '-' (at most 40), starting with a letter")
	}
	if it.ID == "" || len(it.ID) > MaxItemID || strings.ContainsAny(it.ID, "\x00\r\n") {
		bad("id", "is required: at most 200 characters, one line")
	}
	switch it.Kind {
	case KindTicket:
		switch it.Status {
		case TicketOpen, TicketPending, TicketResolved, TicketClosed:
		default:
			bad("status", "a ticket's status must be open, pending, resolved or closed")
		}
		if it.Folder != "" {
			bad("folder", "only reports have a folder")
		}
	case KindReport:
		if it.Folder != FolderPersonal && it.Folder != FolderShared {
			bad("folder", "a report's folder must be personal or shared")
		}
		if it.Status != "" {
			bad("status", "only tickets have a status")
		}
	case KindAsset, KindAPIToken:
		if it.Status != "" || it.Folder != "" {
			bad("status", "only tickets have a status and reports a folder")
		}
	default:
		switch it.OnDisable {
		case ActionKeep, ActionUnassign, ActionReassign, ActionDelete, ActionRevoke:
		default:
			bad("on_disable", "a kind other than ticket, report, asset and api_token must declare on_disable: keep, unassign, reassign, delete or revoke")
		}
	}
	if isBuiltInKind(it.Kind) && it.OnDisable != "" {
		bad("on_disable", "ticket, report, asset and api_token follow the profile's rules (O-1…O-3); on_disable is for other kinds")
	}
	return errs
}

func isBuiltInKind(k string) bool {
	return k == KindTicket || k == KindReport || k == KindAsset || k == KindAPIToken
}

// Action is what an offboarding does to one item.
type Action struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Action string `json:"action"`
	// To is the new owner of a reassigned item.
	To string `json:"to,omitempty"`
	// Instruction is the event the owning system receives ("" for keep).
	Instruction string `json:"instruction,omitempty"`
}

// Decide is the action of policy on an item owned by the technician being
// disabled; successor is who takes reassigned items ("" when nobody: the
// item is unassigned and reported).
//
//   - O-1 (atera): open and pending tickets unassigned, resolved and closed
//     kept; personal reports deleted, shared kept; assets kept.
//   - O-2 (atlan): assets keep their owner (listed as orphans until
//     reassigned); tickets and reports kept.
//   - O-3 (roster): personal reports archived (restorable for
//     ArchiveWindow); every other item reassigned to the successor, or
//     unassigned when there is none.
//   - Every policy: API tokens revoked (I-7, O-2); another kind follows
//     its declared OnDisable, reassign falling back to unassign.
func Decide(policy string, it OwnedItem, successor string) Action {
	a := Action{Kind: it.Kind, ID: it.ID}
	set := func(action string) Action {
		a.Action = action
		switch action {
		case ActionUnassign:
			a.Instruction = InstrUnassigned
		case ActionReassign:
			if successor == "" {
				a.Action, a.Instruction = ActionUnassign, InstrUnassigned
			} else {
				a.To, a.Instruction = successor, InstrReassigned
			}
		case ActionArchive:
			a.Instruction = InstrArchived
		case ActionDelete:
			a.Instruction = InstrDeleted
			if it.Kind != KindReport {
				a.Instruction = InstrItemDelete
			}
		case ActionRevoke:
			a.Instruction = InstrRevoked
		}
		return a
	}
	if it.Kind == KindAPIToken {
		return set(ActionRevoke)
	}
	if !isBuiltInKind(it.Kind) {
		return set(it.OnDisable)
	}
	switch policy {
	case PolicyAtera:
		switch {
		case it.Kind == KindTicket && (it.Status == TicketOpen || it.Status == TicketPending):
			return set(ActionUnassign)
		case it.Kind == KindReport && it.Folder == FolderPersonal:
			return set(ActionDelete)
		}
		return set(ActionKeep)
	case PolicyAtlan:
		return set(ActionKeep)
	default:
		if it.Kind == KindReport && it.Folder == FolderPersonal {
			return set(ActionArchive)
		}
		return set(ActionReassign)
	}
}

// OffboardingSummary counts a plan's actions by kind and action.
type OffboardingSummary map[string]map[string]int

// Add counts a.
func (s OffboardingSummary) Add(a Action) {
	m := s[a.Kind]
	if m == nil {
		m = map[string]int{}
		s[a.Kind] = m
	}
	m[a.Action]++
}
