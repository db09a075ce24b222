package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/profile"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy/domain"
)

// LayerStore keeps personas, purposes and persona assignments.
type LayerStore interface {
	PutPersona(ctx context.Context, tx *sql.Tx, p domain.Persona) error
	Personas(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.Persona, error)
	Persona(ctx context.Context, tx *sql.Tx, accountID, id string) (domain.Persona, error)
	DeletePersona(ctx context.Context, tx *sql.Tx, accountID, id string) error
	SetPersonas(ctx context.Context, tx *sql.Tx, accountID, technicianID string, ids []string) error
	TechnicianPersonas(ctx context.Context, tx *sql.Tx, accountID, technicianID string) ([]domain.Persona, error)
	PutPurpose(ctx context.Context, tx *sql.Tx, p domain.Purpose) error
	Purposes(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.Purpose, error)
	Purpose(ctx context.Context, tx *sql.Tx, accountID, id string) (domain.Purpose, error)
	DeletePurpose(ctx context.Context, tx *sql.Tx, accountID, id string) error
	KnownTechnicians(ctx context.Context, tx *sql.Tx, accountID string, ids []string) (map[string]bool, error)
}

// Layers are the use cases of the layered role model: personas,
// purposes, and the access check across base role, persona and purpose.
// They answer from the database, not the in-memory index of R-7.
type Layers struct {
	*App
	layers LayerStore
	// profiles caches each account's profile (account id → *profile.Profile):
	// it never changes, and the access routes ask for it on every check,
	// which R-7 answers without the database.
	profiles sync.Map
}

// NewLayers returns the layered use cases over a.
func NewLayers(a *App, st LayerStore) *Layers { return &Layers{App: a, layers: st} }

// Layered reports whether the account's profile has the layered role
// model: the one place that reads it.
func (l *Layers) Layered(ctx context.Context, accountID string) (bool, error) {
	_, err := l.profileOf(ctx, accountID)
	if errors.Is(err, domain.ErrLayersUnavailable) {
		return false, nil
	}
	return err == nil, err
}

func (l *Layers) profileOf(ctx context.Context, accountID string) (*profile.Profile, error) {
	p, err := l.accountProfile(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if p.RolePolicy.RoleModel != domain.LayeredRoleModel {
		return nil, fmt.Errorf("profile %s: %w", p.ID, domain.ErrLayersUnavailable)
	}
	return p, nil
}

// accountProfile is the account's profile, from the cache once read.
func (l *Layers) accountProfile(ctx context.Context, accountID string) (*profile.Profile, error) {
	if p, ok := l.profiles.Load(accountID); ok {
		return p.(*profile.Profile), nil
	}
	acc, err := l.store.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	p, err := profile.Get(acc.Profile)
	if err != nil {
		return nil, fmt.Errorf("account %s: %v", acc.ID, err)
	}
	l.profiles.Store(accountID, p)
	return p, nil
}

func newLayerID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// PersonaView is a persona as the API shows it.
type PersonaView struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Grants    []domain.Grant `json:"grants"`
	UI        []string       `json:"ui"`
	Version   int64          `json:"version"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

func viewPersona(p domain.Persona) PersonaView {
	return PersonaView{ID: p.ID, Name: p.Name, Grants: p.Grants, UI: nonNil(p.UI), Version: p.Version, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// PurposeView is a purpose as the API shows it.
type PurposeView struct {
	ID              string             `json:"id"`
	Name            string             `json:"name"`
	Classifications []string           `json:"classifications"`
	Members         []string           `json:"members"`
	Actions         []string           `json:"actions"`
	DataPolicy      *domain.DataPolicy `json:"data_policy"`
	Version         int64              `json:"version"`
	CreatedAt       time.Time          `json:"created_at"`
	UpdatedAt       time.Time          `json:"updated_at"`
}

func viewPurpose(p domain.Purpose) PurposeView {
	return PurposeView{ID: p.ID, Name: p.Name, Classifications: nonNil(p.Classifications), Members: nonNil(p.Members),
		Actions: nonNil(p.Actions), DataPolicy: p.DataPolicy, Version: p.Version, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func specJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// SavePersona creates a persona (id "") or replaces one whole,
// under the Idempotency-Key for a creation.
func (l *Layers) SavePersona(ctx context.Context, accountID, id string, spec domain.PersonaSpec, idemKey string, body []byte) (idempotency.Result, error) {
	p, err := l.profileOf(ctx, accountID)
	if err != nil {
		return idempotency.Result{}, err
	}
	if spec, err = domain.CheckPersona(p.RolePolicy, spec); err != nil {
		return idempotency.Result{}, err
	}
	route := "POST /personas"
	if id != "" {
		route, idemKey = "PUT /personas/"+id, ""
	}
	return idempotency.Do(ctx, l.db, idempotency.Request{Scope: accountID + ":" + route, Key: idemKey, Body: body}, func(tx *sql.Tx) (int, any, error) {
		now := l.clock()
		per, status, change := domain.Persona{ID: newLayerID("persona_"), AccountID: accountID, Version: 1, CreatedAt: now}, http.StatusCreated, "created"
		if id != "" {
			if per, err = l.layers.Persona(ctx, tx, accountID, id); err != nil {
				return 0, nil, err
			}
			per.Version++
			status, change = http.StatusOK, "updated"
		}
		per.PersonaSpec, per.UpdatedAt = spec, now
		if err := l.layers.PutPersona(ctx, tx, per); err != nil {
			return 0, nil, err
		}
		v := viewPersona(per)
		if err := l.events.Emit(ctx, tx, accountID, &rolepolicyv1.PersonaChanged{PersonaId: per.ID, Name: per.Name, Change: change, SpecJson: specJSON(v)}); err != nil {
			return 0, nil, err
		}
		return status, v, nil
	})
}

// Personas lists the account's personas.
func (l *Layers) Personas(ctx context.Context, accountID string) ([]PersonaView, error) {
	if _, err := l.profileOf(ctx, accountID); err != nil {
		return nil, err
	}
	ps, err := l.layers.Personas(ctx, nil, accountID)
	out := make([]PersonaView, 0, len(ps))
	for _, p := range ps {
		out = append(out, viewPersona(p))
	}
	return out, err
}

// Persona returns one persona.
func (l *Layers) Persona(ctx context.Context, accountID, id string) (PersonaView, error) {
	if _, err := l.profileOf(ctx, accountID); err != nil {
		return PersonaView{}, err
	}
	p, err := l.layers.Persona(ctx, nil, accountID, id)
	return viewPersona(p), err
}

// DeletePersona deletes a persona; its holders lose it.
func (l *Layers) DeletePersona(ctx context.Context, accountID, id string) error {
	if _, err := l.profileOf(ctx, accountID); err != nil {
		return err
	}
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := l.layers.Persona(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		if err := l.layers.DeletePersona(ctx, tx, accountID, id); err != nil {
			return err
		}
		return l.events.Emit(ctx, tx, accountID, &rolepolicyv1.PersonaChanged{PersonaId: id, Name: p.Name, Change: "deleted"})
	})
}

// checkTechnicians names the ids of field that are no technicians of the
// account.
func (l *Layers) checkTechnicians(ctx context.Context, tx *sql.Tx, accountID, field string, ids []string) ([]domain.FieldProblem, error) {
	known, err := l.layers.KnownTechnicians(ctx, tx, accountID, ids)
	if err != nil {
		return nil, err
	}
	var bad []domain.FieldProblem
	for _, id := range ids {
		if !known[id] {
			bad = append(bad, domain.FieldProblem{Field: field, Detail: "names no technician of the account: " + id})
		}
	}
	return bad, nil
}

// SavePurpose creates a purpose (id "") or replaces one whole;
// members and exceptions must be technicians of the account.
func (l *Layers) SavePurpose(ctx context.Context, accountID, id string, spec domain.PurposeSpec, idemKey string, body []byte) (idempotency.Result, error) {
	p, err := l.profileOf(ctx, accountID)
	if err != nil {
		return idempotency.Result{}, err
	}
	if spec, err = domain.CheckPurpose(p.RolePolicy, spec); err != nil {
		return idempotency.Result{}, err
	}
	bad, err := l.checkTechnicians(ctx, nil, accountID, "members", spec.Members)
	if err != nil {
		return idempotency.Result{}, err
	}
	if spec.DataPolicy != nil {
		more, err := l.checkTechnicians(ctx, nil, accountID, "data_policy.except", spec.DataPolicy.Except)
		if err != nil {
			return idempotency.Result{}, err
		}
		bad = append(bad, more...)
	}
	if len(bad) > 0 {
		return idempotency.Result{}, &domain.InvalidError{Fields: bad}
	}
	route := "POST /purposes"
	if id != "" {
		route, idemKey = "PUT /purposes/"+id, ""
	}
	return idempotency.Do(ctx, l.db, idempotency.Request{Scope: accountID + ":" + route, Key: idemKey, Body: body}, func(tx *sql.Tx) (int, any, error) {
		now := l.clock()
		pur, status, change := domain.Purpose{ID: newLayerID("purpose_"), AccountID: accountID, Version: 1, CreatedAt: now}, http.StatusCreated, "created"
		if id != "" {
			if pur, err = l.layers.Purpose(ctx, tx, accountID, id); err != nil {
				return 0, nil, err
			}
			pur.Version++
			status, change = http.StatusOK, "updated"
		}
		pur.PurposeSpec, pur.UpdatedAt = spec, now
		if err := l.layers.PutPurpose(ctx, tx, pur); err != nil {
			return 0, nil, err
		}
		v := viewPurpose(pur)
		if err := l.events.Emit(ctx, tx, accountID, &rolepolicyv1.PurposeChanged{PurposeId: pur.ID, Name: pur.Name, Change: change, SpecJson: specJSON(v)}); err != nil {
			return 0, nil, err
		}
		return status, v, nil
	})
}

// Purposes lists the account's purposes.
func (l *Layers) Purposes(ctx context.Context, accountID string) ([]PurposeView, error) {
	if _, err := l.profileOf(ctx, accountID); err != nil {
		return nil, err
	}
	ps, err := l.layers.Purposes(ctx, nil, accountID)
	out := make([]PurposeView, 0, len(ps))
	for _, p := range ps {
		out = append(out, viewPurpose(p))
	}
	return out, err
}

// Purpose returns one purpose.
func (l *Layers) Purpose(ctx context.Context, accountID, id string) (PurposeView, error) {
	if _, err := l.profileOf(ctx, accountID); err != nil {
		return PurposeView{}, err
	}
	p, err := l.layers.Purpose(ctx, nil, accountID, id)
	return viewPurpose(p), err
}

// DeletePurpose deletes a purpose.
func (l *Layers) DeletePurpose(ctx context.Context, accountID, id string) error {
	if _, err := l.profileOf(ctx, accountID); err != nil {
		return err
	}
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		p, err := l.layers.Purpose(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		if err := l.layers.DeletePurpose(ctx, tx, accountID, id); err != nil {
			return err
		}
		return l.events.Emit(ctx, tx, accountID, &rolepolicyv1.PurposeChanged{PurposeId: id, Name: p.Name, Change: "deleted"})
	})
}

// assign replaces a technician's personas with the known ones of ids and
// returns the unknown ones.
func (l *Layers) assign(ctx context.Context, tx *sql.Tx, accountID, technicianID string, ids []string) ([]string, []string, error) {
	all, err := l.layers.Personas(ctx, tx, accountID)
	if err != nil {
		return nil, nil, err
	}
	var known, unknown []string
	for _, id := range ids {
		if slices.ContainsFunc(all, func(p domain.Persona) bool { return p.ID == id }) {
			known = append(known, id)
		} else {
			unknown = append(unknown, id)
		}
	}
	slices.Sort(known)
	known = slices.Compact(known)
	return known, unknown, l.layers.SetPersonas(ctx, tx, accountID, technicianID, known)
}

// SetTechnicianPersonas is PUT …/technicians/{id}/personas: the personas
// replace the ones held; an id of no persona is a 422 naming it.
func (l *Layers) SetTechnicianPersonas(ctx context.Context, accountID, technicianID string, ids []string) ([]PersonaView, error) {
	if _, err := l.profileOf(ctx, accountID); err != nil {
		return nil, err
	}
	err := l.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := l.store.Technician(ctx, tx, accountID, technicianID); err != nil {
			return err
		}
		known, unknown, err := l.assign(ctx, tx, accountID, technicianID, ids)
		if err != nil {
			return err
		}
		if len(unknown) > 0 {
			return &domain.InvalidError{Fields: []domain.FieldProblem{{Field: "persona_ids", Detail: "name no persona of the account: " + strings.Join(unknown, ", ")}}}
		}
		return l.events.Emit(ctx, tx, accountID, &rolepolicyv1.PersonasAssigned{TechnicianId: technicianID, PersonaIds: known})
	})
	if err != nil {
		return nil, err
	}
	ps, err := l.layers.TechnicianPersonas(ctx, nil, accountID, technicianID)
	out := make([]PersonaView, 0, len(ps))
	for _, p := range ps {
		out = append(out, viewPersona(p))
	}
	return out, err
}

// ApplyRequestedPersonas is identity's PersonasRequested (invite time):
// the known personas are assigned; unknown ids are recorded on the event
// and logged, as the invitation cannot be refused any more.
func (l *Layers) ApplyRequestedPersonas(ctx context.Context, tx *sql.Tx, accountID, technicianID string, ids []string) error {
	known, unknown, err := l.assign(ctx, tx, accountID, technicianID, ids)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		l.log.WarnContext(ctx, "personas requested at invite time do not exist", "account_id", accountID, "technician_id", technicianID, "unknown", unknown)
	}
	return l.events.Emit(ctx, tx, accountID, &rolepolicyv1.PersonasAssigned{TechnicianId: technicianID, PersonaIds: known, UnknownPersonaIds: unknown})
}

// subject loads a technician's three layers.
func (l *Layers) subject(ctx context.Context, accountID, technicianID string) (domain.Subject, error) {
	t, err := l.store.Technician(ctx, nil, accountID, technicianID)
	if err != nil {
		return domain.Subject{}, err
	}
	role, err := l.store.Role(ctx, accountID, t.RoleID)
	if err != nil {
		return domain.Subject{}, err
	}
	personas, err := l.layers.TechnicianPersonas(ctx, nil, accountID, technicianID)
	if err != nil {
		return domain.Subject{}, err
	}
	purposes, err := l.layers.Purposes(ctx, nil, accountID)
	if err != nil {
		return domain.Subject{}, err
	}
	s := domain.Subject{TechnicianID: technicianID, Status: t.Status, BaseRole: role, Personas: personas, Purposes: purposes}
	if p, err := l.accountProfile(ctx, accountID); err != nil {
		return domain.Subject{}, err
	} else if role.BuiltIn {
		for _, b := range p.RolePolicy.BuiltInRoles {
			if strings.EqualFold(b.Name, role.Name) && len(b.LayerCeiling) > 0 {
				s.Ceiling = b.LayerCeiling
			}
		}
	}
	return s, nil
}

// LayeredCheck is POST …/access/check on a layered account.
type LayeredCheck struct {
	TechnicianID string       `json:"technician_id"`
	Action       string       `json:"action"`
	Asset        domain.Asset `json:"asset"`
}

// CheckLayered answers allowed, denied or masked with the layer that
// decided. Unknown technicians and actions are 422s naming them.
func (l *Layers) CheckLayered(ctx context.Context, accountID string, q LayeredCheck) (domain.Verdict, error) {
	p, err := l.profileOf(ctx, accountID)
	if err != nil {
		return domain.Verdict{}, err
	}
	var bad []domain.FieldProblem
	if strings.TrimSpace(q.TechnicianID) == "" {
		bad = append(bad, domain.FieldProblem{Field: "technician_id", Detail: "is required"})
	}
	if !slices.ContainsFunc(p.RolePolicy.Catalog, func(c profile.Permission) bool { return c.ID == q.Action }) {
		bad = append(bad, domain.FieldProblem{Field: "action", Detail: "must be an action of the catalog (GET /v1/permissions?profile=" + p.ID + ")"})
	}
	if strings.TrimSpace(q.Asset.Connection) == "" || strings.TrimSpace(q.Asset.Type) == "" {
		bad = append(bad, domain.FieldProblem{Field: "asset", Detail: "needs connection and type"})
	}
	if len(bad) > 0 {
		return domain.Verdict{}, &domain.InvalidError{Fields: bad}
	}
	s, err := l.subject(ctx, accountID, q.TechnicianID)
	if errors.Is(err, domain.ErrTechnicianNotFound) {
		return domain.Verdict{}, &domain.InvalidError{Fields: []domain.FieldProblem{{Field: "technician_id", Detail: "names no technician of the account"}}}
	}
	if err != nil {
		return domain.Verdict{}, err
	}
	return domain.Decide(s, q.Action, q.Asset, p.RolePolicy.DataActions), nil
}

// LayeredAccess is a user's grants across the three layers.
type LayeredAccess struct {
	TechnicianID string `json:"technician_id"`
	Status       string `json:"status"`
	// Denied: every action is denied (deactivated or pending).
	Denied   bool                `json:"denied"`
	BaseRole BaseRoleAccess      `json:"base_role"`
	Personas []PersonaView       `json:"personas"`
	Purposes []PurposeAccessView `json:"purposes"`
}

// BaseRoleAccess is the base role and the actions it grants on every asset.
type BaseRoleAccess struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
	// LayerCeiling: the most personas and purposes grant this role (a
	// Guest is read-only); absent: no ceiling.
	LayerCeiling []string `json:"layer_ceiling,omitempty"`
}

// PurposeAccessView is how one purpose bears on the user: the actions it
// grants them as a member, and its data policy's effect on them (allow:
// exempt, mask, deny, or null without a policy).
type PurposeAccessView struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	Classifications []string `json:"classifications"`
	Member          bool     `json:"member"`
	Actions         []string `json:"actions"`
	DataPolicy      *string  `json:"data_policy"`
}

// EffectiveLayered lists a user's grants across the three layers.
func (l *Layers) EffectiveLayered(ctx context.Context, accountID, technicianID string) (LayeredAccess, error) {
	if _, err := l.profileOf(ctx, accountID); err != nil {
		return LayeredAccess{}, err
	}
	s, err := l.subject(ctx, accountID, technicianID)
	if err != nil {
		return LayeredAccess{}, err
	}
	out := LayeredAccess{TechnicianID: technicianID, Status: string(s.Status), Denied: s.Status != domain.StatusActive,
		BaseRole: BaseRoleAccess{ID: s.BaseRole.ID, Name: s.BaseRole.Name, Actions: nonNil(s.BaseRole.Permissions), LayerCeiling: s.Ceiling},
		Personas: []PersonaView{}, Purposes: []PurposeAccessView{}}
	for _, p := range s.Personas {
		out.Personas = append(out.Personas, viewPersona(p))
	}
	for _, p := range s.Purposes {
		member := slices.Contains(p.Members, technicianID)
		v := PurposeAccessView{ID: p.ID, Name: p.Name, Classifications: nonNil(p.Classifications), Member: member, Actions: []string{}}
		if member {
			v.Actions = nonNil(p.Actions)
		}
		if p.DataPolicy != nil {
			effect := p.DataPolicy.Action
			if member || slices.Contains(p.DataPolicy.Except, technicianID) {
				effect = domain.EffectAllow
			}
			v.DataPolicy = &effect
		}
		out.Purposes = append(out.Purposes, v)
	}
	return out, nil
}
