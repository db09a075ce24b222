package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"roster.dev/pkg/store"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

// SaveRole replaces a role whole, provided it is still at version
// prev: the row is the guard, whatever the caller read. A name already
// taken in the account is domain.ErrDuplicateRoleName, a role changed
// meanwhile domain.ErrStaleVersion.
func (s *Store) SaveRole(ctx context.Context, tx *sql.Tx, r domain.Role, prev int64) error {
	perms, sites, folders, err := roleLists(r)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE roles SET name = $3, name_key = $4, permissions = $5, site_ids = $6,
			excluded_folder_ids = $7, version = $8, updated_at = $9
		WHERE account_id = $1 AND role_id = $2 AND version = $10`,
		r.AccountID, r.ID, r.Name, domain.NameKey(r.Name), perms, sites, folders, r.Version, store.Time(r.UpdatedAt), prev)
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("role %q in %s: %w", r.Name, r.AccountID, domain.ErrDuplicateRoleName)
	}
	if err != nil {
		return fmt.Errorf("save role %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("save role %s at version %d: %d rows, %v: %w", r.ID, prev, n, err, domain.ErrStaleVersion)
	}
	return nil
}

// DeleteRole deletes a role; the foreign key of role_assignments refuses
// it while a technician holds the role.
func (s *Store) DeleteRole(ctx context.Context, tx *sql.Tx, accountID, roleID string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM roles WHERE account_id = $1 AND role_id = $2`, accountID, roleID)
	if err != nil {
		return fmt.Errorf("delete role %s: %w", roleID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("delete role %s: %d rows, %v: %w", roleID, n, err, domain.ErrRoleNotFound)
	}
	return nil
}

// RoleUse counts the technicians holding a role (any status) and those
// whose requested or pre-assigned role it is and who have not logged in
// yet.
func (s *Store) RoleUse(ctx context.Context, tx *sql.Tx, accountID, roleID string) (assigned, pending int, err error) {
	err = s.in(tx).QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM role_assignments WHERE account_id = $1 AND role_id = $2),
			(SELECT COUNT(*) FROM technicians WHERE account_id = $1 AND requested_role_id = $2 AND first_login_at IS NULL)`,
		accountID, roleID).Scan(&assigned, &pending)
	if err != nil {
		return 0, 0, fmt.Errorf("count holders of %s: %w", roleID, err)
	}
	return assigned, pending, nil
}

// AddSite records a site; false when it was recorded before.
func (s *Store) AddSite(ctx context.Context, tx *sql.Tx, site domain.Site) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO sites (account_id, site_id, name, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, site.AccountID, site.ID, site.Name, store.Time(site.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("insert site %s: %w", site.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AddFolder records a folder of a known site; false when it was recorded
// before. A folder of a site this service does not know yet is
// domain.ErrSiteNotFound.
func (s *Store) AddFolder(ctx context.Context, tx *sql.Tx, f domain.Folder) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM sites WHERE account_id = $1 AND site_id = $2`, f.AccountID, f.SiteID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("folder %s: site %s: %w", f.ID, f.SiteID, domain.ErrSiteNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("insert folder %s: %w", f.ID, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO folders (account_id, folder_id, site_id, name, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, f.AccountID, f.ID, f.SiteID, f.Name, store.Time(f.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("insert folder %s: %w", f.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// MissingSites returns the ids among ids that are no site of the account,
// in the order given.
func (s *Store) MissingSites(ctx context.Context, tx *sql.Tx, accountID string, ids []string) ([]string, error) {
	return s.missing(ctx, tx, "sites", "site_id", accountID, ids)
}

// MissingFolders returns the ids among ids that are no folder of the
// account, in the order given.
func (s *Store) MissingFolders(ctx context.Context, tx *sql.Tx, accountID string, ids []string) ([]string, error) {
	return s.missing(ctx, tx, "folders", "folder_id", accountID, ids)
}

func (s *Store) missing(ctx context.Context, tx *sql.Tx, table, column, accountID string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []any{accountID}
	marks := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		marks[i] = "$" + strconv.Itoa(i+2)
	}
	rows, err := s.in(tx).QueryContext(ctx, `SELECT `+column+` FROM `+table+` WHERE account_id = $1 AND `+column+
		` IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", table, err)
	}
	defer rows.Close()
	found := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("query %s: %w", table, err)
		}
		found[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query %s: %w", table, err)
	}
	var out []string
	for _, id := range ids {
		if !found[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// IndexStates reads what the access index is built from: one account's
// state, or every account's when accountID is "" (the rebuild at start).
// Each table is read once, whatever the number of accounts.
func (s *Store) IndexStates(ctx context.Context, tx *sql.Tx, accountID string) ([]access.State, error) {
	q := s.in(tx)
	var order []string
	states := map[string]*access.State{}
	rows, err := q.QueryContext(ctx, `SELECT account_id, profile, created_at FROM accounts
		WHERE $1 = '' OR account_id = $1 ORDER BY account_id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("index: query accounts: %w", err)
	}
	for rows.Next() {
		var acc domain.Account
		var created string
		if err := rows.Scan(&acc.ID, &acc.Profile, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("index: read account: %w", err)
		}
		if acc.CreatedAt, err = store.ParseTime(created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("index: read account %s: %w", acc.ID, err)
		}
		order = append(order, acc.ID)
		states[acc.ID] = &access.State{Account: acc}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: query accounts: %w", err)
	}

	// of returns the state of a row's account; rows of an account read
	// after the accounts query are skipped (a concurrent setup).
	of := func(id string) *access.State { return states[id] }
	err = each(ctx, q, `SELECT `+roleColumns+` FROM roles WHERE $1 = '' OR account_id = $1`, accountID, func(r scanner) error {
		role, err := scanRole(r)
		if st := of(role.AccountID); err == nil && st != nil {
			st.Roles = append(st.Roles, role)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	err = each(ctx, q, `SELECT `+technicianColumns+technicianFrom+`WHERE $1 = '' OR t.account_id = $1`, accountID, func(r scanner) error {
		t, err := scanTechnician(r)
		if st := of(t.AccountID); err == nil && st != nil {
			st.Technicians = append(st.Technicians, t)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	err = each(ctx, q, `SELECT account_id, site_id, name, created_at FROM sites WHERE $1 = '' OR account_id = $1`, accountID, func(r scanner) error {
		var site domain.Site
		var created string
		if err := r.Scan(&site.AccountID, &site.ID, &site.Name, &created); err != nil {
			return err
		}
		var err error
		site.CreatedAt, err = store.ParseTime(created)
		if st := of(site.AccountID); err == nil && st != nil {
			st.Sites = append(st.Sites, site)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	err = each(ctx, q, `SELECT account_id, folder_id, site_id, name, created_at FROM folders WHERE $1 = '' OR account_id = $1`, accountID, func(r scanner) error {
		var f domain.Folder
		var created string
		if err := r.Scan(&f.AccountID, &f.ID, &f.SiteID, &f.Name, &created); err != nil {
			return err
		}
		var err error
		f.CreatedAt, err = store.ParseTime(created)
		if st := of(f.AccountID); err == nil && st != nil {
			st.Folders = append(st.Folders, f)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]access.State, 0, len(order))
	for _, id := range order {
		out = append(out, *states[id])
	}
	return out, nil
}

// each runs fn on every row of query (one argument).
func each(ctx context.Context, q querier, query, arg string, fn func(scanner) error) error {
	rows, err := q.QueryContext(ctx, query, arg)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

func roleLists(r domain.Role) (perms, sites, folders string, err error) {
	for _, l := range []struct {
		list []string
		into *string
	}{{r.Permissions, &perms}, {r.SiteIDs, &sites}, {r.ExcludedFolderIDs, &folders}} {
		b, err := json.Marshal(nonNil(l.list))
		if err != nil {
			return "", "", "", err
		}
		*l.into = string(b)
	}
	return perms, sites, folders, nil
}
