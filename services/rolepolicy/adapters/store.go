// Package adapters holds the rolepolicy SQL store. The same SQL runs on
// SQLite and PostgreSQL (pkg/store): $n placeholders, INTEGER 0/1 for
// booleans, store.Time text for timestamps, JSON text for lists.
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

// Store is the SQL store of the rolepolicy service.
type Store struct {
	db *store.DB
}

// NewStore returns the store over the service's database.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

// AddAccount records acc; it reports false when the account was recorded
// before, which makes setting up an account happen once.
func (s *Store) AddAccount(ctx context.Context, tx *sql.Tx, acc domain.Account) (bool, error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO accounts (account_id, profile, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		acc.ID, acc.Profile, store.Time(acc.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("insert account %s: %w", acc.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert account %s: %w", acc.ID, err)
	}
	return n == 1, nil
}

// NextCustomRole counts a custom role created in the account and returns
// its number (1 for the first): custom role ids derive from it.
func (s *Store) NextCustomRole(ctx context.Context, tx *sql.Tx, accountID string) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `UPDATE accounts SET custom_roles_created = custom_roles_created + 1
		WHERE account_id = $1 RETURNING custom_roles_created`, accountID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("account %s: %w", accountID, domain.ErrAccountNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("count custom role of %s: %w", accountID, err)
	}
	return n, nil
}

// AddRole inserts a new role; a name already taken in the account (compared
// case-insensitively) is domain.ErrDuplicateRoleName.
func (s *Store) AddRole(ctx context.Context, tx *sql.Tx, r domain.Role) error {
	perms, sites, folders, err := roleLists(r)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO roles (role_id, account_id, name, name_key, built_in, site_scopable,
			default_for_new, first_admin, permissions, site_ids, excluded_folder_ids, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		r.ID, r.AccountID, r.Name, domain.NameKey(r.Name), boolInt(r.BuiltIn), boolInt(r.SiteScopable),
		boolInt(r.DefaultForNew), boolInt(r.FirstAdmin), perms, sites, folders,
		r.Version, store.Time(r.CreatedAt), store.Time(r.UpdatedAt))
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("role %q in %s: %w", r.Name, r.AccountID, domain.ErrDuplicateRoleName)
	}
	if err != nil {
		return fmt.Errorf("insert role %q in %s: %w", r.Name, r.AccountID, err)
	}
	return nil
}

// Assign gives a technician a role, replacing the one they held.
func (s *Store) Assign(ctx context.Context, tx *sql.Tx, a domain.Assignment) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO role_assignments (account_id, technician_id, role_id, assigned_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, technician_id) DO UPDATE SET role_id = excluded.role_id, assigned_at = excluded.assigned_at`,
		a.AccountID, a.TechnicianID, a.RoleID, store.Time(a.AssignedAt))
	if err != nil {
		return fmt.Errorf("assign %s to %s: %w", a.RoleID, a.TechnicianID, err)
	}
	return nil
}

// Account returns an account, or domain.ErrAccountNotFound.
func (s *Store) Account(ctx context.Context, accountID string) (domain.Account, error) {
	var acc domain.Account
	var created string
	err := s.db.QueryRowContext(ctx, `SELECT account_id, profile, created_at FROM accounts WHERE account_id = $1`,
		accountID).Scan(&acc.ID, &acc.Profile, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Account{}, fmt.Errorf("account %s: %w", accountID, domain.ErrAccountNotFound)
	}
	if err != nil {
		return domain.Account{}, fmt.Errorf("read account %s: %w", accountID, err)
	}
	if acc.CreatedAt, err = store.ParseTime(created); err != nil {
		return domain.Account{}, fmt.Errorf("read account %s: %w", accountID, err)
	}
	return acc, nil
}

const roleColumns = `role_id, account_id, name, built_in, site_scopable, default_for_new, first_admin,
	permissions, site_ids, excluded_folder_ids, version, created_at, updated_at`

// Roles lists an account's roles ordered by name key, starting after the
// given key ("" starts at the first: names are never empty).
func (s *Store) Roles(ctx context.Context, accountID, after string, limit int) ([]domain.Role, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+roleColumns+` FROM roles
		WHERE account_id = $1 AND name_key > $2 ORDER BY name_key LIMIT $3`, accountID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("query roles: %w", err)
	}
	defer rows.Close()
	roles := []domain.Role{}
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query roles: %w", err)
	}
	return roles, nil
}

// Role returns one of an account's roles, or domain.ErrRoleNotFound (also
// for a role of another account).
func (s *Store) Role(ctx context.Context, accountID, roleID string) (domain.Role, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+roleColumns+` FROM roles WHERE account_id = $1 AND role_id = $2`,
		accountID, roleID)
	r, err := scanRole(row)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Role{}, fmt.Errorf("role %s: %w", roleID, domain.ErrRoleNotFound)
	}
	return r, err
}

type scanner interface{ Scan(dest ...any) error }

func scanRole(row scanner) (domain.Role, error) {
	var (
		r                                         domain.Role
		builtIn, scopable, defaultNew, firstAdmin int64
		perms, sites, folders, created, updated   string
	)
	err := row.Scan(&r.ID, &r.AccountID, &r.Name, &builtIn, &scopable, &defaultNew, &firstAdmin,
		&perms, &sites, &folders, &r.Version, &created, &updated)
	if err != nil {
		return domain.Role{}, fmt.Errorf("read role: %w", err)
	}
	r.BuiltIn, r.SiteScopable, r.DefaultForNew, r.FirstAdmin = builtIn != 0, scopable != 0, defaultNew != 0, firstAdmin != 0
	for _, f := range []struct {
		text string
		into *[]string
	}{{perms, &r.Permissions}, {sites, &r.SiteIDs}, {folders, &r.ExcludedFolderIDs}} {
		if err := json.Unmarshal([]byte(f.text), f.into); err != nil {
			return domain.Role{}, fmt.Errorf("read role %s: %w", r.ID, err)
		}
		*f.into = nonNil(*f.into)
	}
	if r.CreatedAt, err = store.ParseTime(created); err != nil {
		return domain.Role{}, fmt.Errorf("read role %s: %w", r.ID, err)
	}
	if r.UpdatedAt, err = store.ParseTime(updated); err != nil {
		return domain.Role{}, fmt.Errorf("read role %s: %w", r.ID, err)
	}
	return r, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
