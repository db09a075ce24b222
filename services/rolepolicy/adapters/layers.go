package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"roster.dev/pkg/store"
	"roster.dev/services/rolepolicy/domain"
)

// Personas, purposes and persona assignments (R-9; migration 00005).

const personaColumns = `persona_id, account_id, name, grants, ui, version, created_at, updated_at`

func scanPersona(row scanner) (domain.Persona, error) {
	var p domain.Persona
	var grants, ui, created, updated string
	if err := row.Scan(&p.ID, &p.AccountID, &p.Name, &grants, &ui, &p.Version, &created, &updated); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(grants), &p.Grants); err != nil {
		return p, fmt.Errorf("persona %s grants: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(ui), &p.UI); err != nil {
		return p, fmt.Errorf("persona %s ui: %w", p.ID, err)
	}
	var err error
	if p.CreatedAt, err = store.ParseTime(created); err != nil {
		return p, err
	}
	p.UpdatedAt, err = store.ParseTime(updated)
	return p, err
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// PutPersona inserts p, or replaces it when it exists; a name taken in the
// account is domain.ErrDuplicateName.
func (s *Store) PutPersona(ctx context.Context, tx *sql.Tx, p domain.Persona) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO personas (`+personaColumns+`, name_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (persona_id) DO UPDATE SET name = $3, grants = $4, ui = $5, version = $6, updated_at = $8, name_key = $9`,
		p.ID, p.AccountID, p.Name, mustJSON(p.Grants), mustJSON(p.UI), p.Version, store.Time(p.CreatedAt), store.Time(p.UpdatedAt), domain.NameKey(p.Name))
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("persona %q: %w", p.Name, domain.ErrDuplicateName)
	}
	return err
}

// Personas lists an account's personas by name key; ids limits them to
// those (nil: all).
func (s *Store) Personas(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.Persona, error) {
	rows, err := s.in(tx).QueryContext(ctx, `SELECT `+personaColumns+` FROM personas WHERE account_id = $1 ORDER BY name_key`, accountID)
	if err != nil {
		return nil, fmt.Errorf("personas: %w", err)
	}
	defer rows.Close()
	out := []domain.Persona{}
	for rows.Next() {
		p, err := scanPersona(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Persona returns one persona or domain.ErrPersonaNotFound.
func (s *Store) Persona(ctx context.Context, tx *sql.Tx, accountID, id string) (domain.Persona, error) {
	p, err := scanPersona(s.in(tx).QueryRowContext(ctx, `SELECT `+personaColumns+` FROM personas WHERE account_id = $1 AND persona_id = $2`, accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("persona %s: %w", id, domain.ErrPersonaNotFound)
	}
	return p, err
}

// DeletePersona removes a persona and its assignments.
func (s *Store) DeletePersona(ctx context.Context, tx *sql.Tx, accountID, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM persona_assignments WHERE account_id = $1 AND persona_id = $2`, accountID, id); err != nil {
		return fmt.Errorf("delete persona assignments: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM personas WHERE account_id = $1 AND persona_id = $2`, accountID, id)
	if err != nil {
		return fmt.Errorf("delete persona: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("persona %s: %w", id, domain.ErrPersonaNotFound)
	}
	return nil
}

// SetPersonas replaces a technician's personas.
func (s *Store) SetPersonas(ctx context.Context, tx *sql.Tx, accountID, technicianID string, ids []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM persona_assignments WHERE account_id = $1 AND technician_id = $2`, accountID, technicianID); err != nil {
		return fmt.Errorf("clear personas: %w", err)
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT INTO persona_assignments (account_id, technician_id, persona_id) VALUES ($1, $2, $3)`,
			accountID, technicianID, id); err != nil {
			return fmt.Errorf("assign persona: %w", err)
		}
	}
	return nil
}

// TechnicianPersonas returns the personas a technician is assigned.
func (s *Store) TechnicianPersonas(ctx context.Context, tx *sql.Tx, accountID, technicianID string) ([]domain.Persona, error) {
	rows, err := s.in(tx).QueryContext(ctx, `SELECT p.persona_id, p.account_id, p.name, p.grants, p.ui, p.version, p.created_at, p.updated_at
		FROM personas p JOIN persona_assignments a ON a.persona_id = p.persona_id
		WHERE a.account_id = $1 AND a.technician_id = $2 ORDER BY p.name_key`, accountID, technicianID)
	if err != nil {
		return nil, fmt.Errorf("technician personas: %w", err)
	}
	defer rows.Close()
	out := []domain.Persona{}
	for rows.Next() {
		p, err := scanPersona(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

const purposeColumns = `purpose_id, account_id, name, classifications, members, actions, data_policy, version, created_at, updated_at`

func scanPurpose(row scanner) (domain.Purpose, error) {
	var p domain.Purpose
	var cls, members, actions, policy, created, updated string
	if err := row.Scan(&p.ID, &p.AccountID, &p.Name, &cls, &members, &actions, &policy, &p.Version, &created, &updated); err != nil {
		return p, err
	}
	for _, f := range []struct {
		s string
		v any
	}{{cls, &p.Classifications}, {members, &p.Members}, {actions, &p.Actions}, {policy, &p.DataPolicy}} {
		if err := json.Unmarshal([]byte(f.s), f.v); err != nil {
			return p, fmt.Errorf("purpose %s: %w", p.ID, err)
		}
	}
	var err error
	if p.CreatedAt, err = store.ParseTime(created); err != nil {
		return p, err
	}
	p.UpdatedAt, err = store.ParseTime(updated)
	return p, err
}

// PutPurpose inserts p, or replaces it when it exists.
func (s *Store) PutPurpose(ctx context.Context, tx *sql.Tx, p domain.Purpose) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO purposes (`+purposeColumns+`, name_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (purpose_id) DO UPDATE SET name = $3, classifications = $4, members = $5, actions = $6, data_policy = $7,
		version = $8, updated_at = $10, name_key = $11`,
		p.ID, p.AccountID, p.Name, mustJSON(p.Classifications), mustJSON(p.Members), mustJSON(p.Actions), mustJSON(p.DataPolicy),
		p.Version, store.Time(p.CreatedAt), store.Time(p.UpdatedAt), domain.NameKey(p.Name))
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("purpose %q: %w", p.Name, domain.ErrDuplicateName)
	}
	return err
}

// Purposes lists an account's purposes by name key.
func (s *Store) Purposes(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.Purpose, error) {
	rows, err := s.in(tx).QueryContext(ctx, `SELECT `+purposeColumns+` FROM purposes WHERE account_id = $1 ORDER BY name_key`, accountID)
	if err != nil {
		return nil, fmt.Errorf("purposes: %w", err)
	}
	defer rows.Close()
	out := []domain.Purpose{}
	for rows.Next() {
		p, err := scanPurpose(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Purpose returns one purpose or domain.ErrPurposeNotFound.
func (s *Store) Purpose(ctx context.Context, tx *sql.Tx, accountID, id string) (domain.Purpose, error) {
	p, err := scanPurpose(s.in(tx).QueryRowContext(ctx, `SELECT `+purposeColumns+` FROM purposes WHERE account_id = $1 AND purpose_id = $2`, accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("purpose %s: %w", id, domain.ErrPurposeNotFound)
	}
	return p, err
}

// DeletePurpose removes a purpose.
func (s *Store) DeletePurpose(ctx context.Context, tx *sql.Tx, accountID, id string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM purposes WHERE account_id = $1 AND purpose_id = $2`, accountID, id)
	if err != nil {
		return fmt.Errorf("delete purpose: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("purpose %s: %w", id, domain.ErrPurposeNotFound)
	}
	return nil
}

// KnownTechnicians returns which of ids are technicians of the account.
func (s *Store) KnownTechnicians(ctx context.Context, tx *sql.Tx, accountID string, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, id := range ids {
		var one int
		err := s.in(tx).QueryRowContext(ctx, `SELECT 1 FROM technicians WHERE account_id = $1 AND technician_id = $2`, accountID, id).Scan(&one)
		if err == nil {
			known[id] = true
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	return known, nil
}
