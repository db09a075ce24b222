// Package profile loads the product profiles (rules.md: atera-it,
// atera-msp, roster): versioned data files shipped in the binary. Each
// service reads only its own section — identity the lifecycle, seatbilling
// the plans and gates, rolepolicy the role model — so adding a profile is a
// new data file, not code in several services.
package profile

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
)

//go:embed data/*.json
var files embed.FS

// Profile is one product profile.
type Profile struct {
	ID          string      `json:"id"`
	Version     int         `json:"version"`
	Description string      `json:"description"`
	Currency    string      `json:"currency"`
	Identity    Identity    `json:"identity"`
	SeatBilling SeatBilling `json:"seatbilling"`
	RolePolicy  RolePolicy  `json:"rolepolicy"`
}

// Identity is the lifecycle section (I-*).
type Identity struct {
	RequiredFields         []string `json:"required_fields"`
	InvitationTTLDays      int      `json:"invitation_ttl_days"`
	EraseDisabledAfterDays int      `json:"erase_disabled_after_days"`
	InitialStatus          string   `json:"initial_status"`
	// SeatOn is when identity asks seatbilling for a seat (S-2):
	// "creation" (the default) or "acceptance" of the invitation (atlan).
	SeatOn string `json:"seat_on,omitempty"`
	// ScimRequiresSSO: SCIM answers only once SSO is configured (S-8, atlan).
	ScimRequiresSSO bool `json:"scim_requires_sso,omitempty"`
}

// SeatOnAcceptance: a pending invitee holds no seat until accepting (S-2).
func (i Identity) SeatOnAcceptance() bool { return i.SeatOn == "acceptance" }

// SeatBilling is the plans section (S-*).
type SeatBilling struct {
	Plans    map[string]Plan     `json:"plans"`
	SeatFrom string              `json:"seat_from"`
	Gates    map[string][]string `json:"gates"`
	// SeparateSeatRoles are the roles whose seats the subscription shows
	// apart (atlan: Guest, S-2), though they cost a seat like any other.
	SeparateSeatRoles []string `json:"separate_seat_roles,omitempty"`
}

// SeatFromAcceptance: seatbilling seats a technician on the accepted
// invitation, not on creation (S-2, atlan).
func (s SeatBilling) SeatFromAcceptance() bool { return s.SeatFrom == "acceptance" }

// Plan prices are per seat per month in minor units (S-1).
type Plan struct {
	Name string `json:"name"`
	// Custom plans take the price per seat from the account.
	Custom        bool  `json:"custom"`
	Monthly       int64 `json:"monthly"`
	AnnualMonthly int64 `json:"annual_monthly"`
}

// RolePolicy is the role-model section (R-*).
type RolePolicy struct {
	RoleModel                  string       `json:"role_model"`
	Catalog                    []Permission `json:"catalog"`
	BuiltInRoles               []BuiltIn    `json:"built_in_roles"`
	RequestedRoleOnFirstLogin  string       `json:"requested_role_on_first_login"`
	AssignmentBeforeFirstLogin string       `json:"assignment_before_first_login"`
	// DataActions are the actions a purpose's data policy (mask, deny)
	// governs (R-9, base_roles model).
	DataActions []string `json:"data_actions,omitempty"`
	// UIAreas a persona may open.
	UIAreas []string `json:"ui_areas,omitempty"`
}

// Permission is one catalog entry.
type Permission struct {
	ID          string `json:"id"`
	Category    string `json:"category"`
	Description string `json:"description"`
}

// BuiltIn is a built-in role; "*" grants every permission.
type BuiltIn struct {
	Name               string   `json:"name"`
	Permissions        []string `json:"permissions"`
	SiteScoped         bool     `json:"site_scoped"`
	AssignToFirstAdmin bool     `json:"assign_to_first_admin,omitempty"`
	DefaultForNew      bool     `json:"default_for_new,omitempty"`
	// LayerCeiling, under the layered role model, is the most that
	// personas and purposes may grant a holder of this base role (atlan:
	// Guest is read-only); empty: no ceiling.
	LayerCeiling []string `json:"layer_ceiling,omitempty"`
}

var (
	loadOnce sync.Once
	profiles map[string]*Profile
	loadErr  error
)

func load() {
	profiles = map[string]*Profile{}
	entries, err := files.ReadDir("data")
	if err != nil {
		loadErr = err
		return
	}
	for _, e := range entries {
		b, err := files.ReadFile(path.Join("data", e.Name()))
		if err != nil {
			loadErr = err
			return
		}
		var p Profile
		if err := json.Unmarshal(b, &p); err != nil {
			loadErr = fmt.Errorf("profile %s: %w", e.Name(), err)
			return
		}
		if p.ID+".json" != e.Name() {
			loadErr = fmt.Errorf("profile %s declares id %q", e.Name(), p.ID)
			return
		}
		profiles[p.ID] = &p
	}
}

// Get returns a profile by id.
func Get(id string) (*Profile, error) {
	loadOnce.Do(load)
	if loadErr != nil {
		return nil, loadErr
	}
	p, ok := profiles[id]
	if !ok {
		return nil, fmt.Errorf("unknown profile %q (known: %s)", id, strings.Join(IDs(), ", "))
	}
	return p, nil
}

// IDs lists the known profiles.
func IDs() []string {
	loadOnce.Do(load)
	var ids []string
	for id := range profiles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// PlanIDs lists a profile's plans.
func (p *Profile) PlanIDs() []string {
	var ids []string
	for id := range p.SeatBilling.Plans {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
