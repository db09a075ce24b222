package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

const techColumns = `id, account_id, email, first_name, last_name, phone, status, requested_role, created_at,
	disabled_at, last_login_at, role_id, role_name, is_admin, licence_removal_date, erased_at, last_active_at`

type scanner interface{ Scan(dest ...any) error }

func scanTechnician(row scanner) (domain.Technician, error) {
	var t domain.Technician
	var requested, created, roleID, roleName string
	var disabled, lastLogin, licenceRemoval, erased, lastActive sql.NullString
	var admin int
	if err := row.Scan(&t.ID, &t.AccountID, &t.Email, &t.FirstName, &t.LastName, &t.Phone, &t.Status, &requested, &created,
		&disabled, &lastLogin, &roleID, &roleName, &admin, &licenceRemoval, &erased, &lastActive); err != nil {
		return t, err
	}
	if licenceRemoval.Valid {
		t.LicenceRemovalDate = &licenceRemoval.String
	}
	var err error
	if t.CreatedAt, err = store.ParseTime(created); err != nil {
		return t, err
	}
	t.DisabledAt = parseNullTime(disabled)
	t.LastLoginAt = parseNullTime(lastLogin)
	t.LastActiveAt = parseNullTime(lastActive)
	if requested != "" {
		t.RequestedRole = &requested
	}
	if roleName != "" {
		t.Role = &roleName
	}
	if roleID != "" {
		t.RoleID = &roleID
	}
	t.IsAdmin = admin == 1
	t.Erased = erased.Valid
	t.SiteIDs = []string{}
	return t, nil
}

func parseNullTime(s sql.NullString) *time.Time {
	if !s.Valid || s.String == "" {
		return nil
	}
	t, err := store.ParseTime(s.String)
	if err != nil {
		return nil
	}
	return &t
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return store.Time(*t)
}

// Technician returns one technician of the account (never another
// account's: every query is scoped, L-7).
func (s Store) Technician(ctx context.Context, q app.Querier, accountID, id string) (domain.Technician, error) {
	t, err := scanTechnician(q.QueryRowContext(ctx, `SELECT `+techColumns+` FROM technicians WHERE account_id = $1 AND id = $2`, accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, app.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("technician %s: %w", id, err)
	}
	return t, s.loadSites(ctx, q, []*domain.Technician{&t})
}

// TechnicianByEmail returns the technician holding email in the account.
func (s Store) TechnicianByEmail(ctx context.Context, q app.Querier, accountID, email string) (domain.Technician, error) {
	t, err := scanTechnician(q.QueryRowContext(ctx, `SELECT `+techColumns+` FROM technicians WHERE account_id = $1 AND email_key = $2`,
		accountID, domain.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return t, app.ErrNotFound
	}
	return t, err
}

func (s Store) loadSites(ctx context.Context, q app.Querier, ts []*domain.Technician) error {
	if len(ts) == 0 {
		return nil
	}
	byID := map[string]*domain.Technician{}
	args := make([]any, len(ts))
	marks := make([]string, len(ts))
	for i, t := range ts {
		byID[t.ID] = t
		args[i] = t.ID
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	rows, err := q.QueryContext(ctx, `SELECT technician_id, site_id FROM technician_sites WHERE technician_id IN (`+strings.Join(marks, ",")+`) ORDER BY site_id`, args...)
	if err != nil {
		return fmt.Errorf("technician sites: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tid, sid string
		if err := rows.Scan(&tid, &sid); err != nil {
			return err
		}
		byID[tid].SiteIDs = append(byID[tid].SiteIDs, sid)
	}
	return rows.Err()
}

// insertTechnician stores a new technician with its sites and seat
// reservation.
func (s Store) insertTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician, reservationID string) error {
	requested, roleName, admin := "", "", 0
	if t.RequestedRole != nil {
		requested = *t.RequestedRole
	}
	if t.Role != nil {
		roleName = *t.Role
	}
	if t.IsAdmin {
		admin = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO technicians (id, account_id, email, email_key, first_name, last_name, phone, status,
		requested_role, created_at, updated_at, reservation_id, role_name, is_admin)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13)`,
		t.ID, t.AccountID, t.Email, domain.EmailKey(t.Email), t.FirstName, t.LastName, t.Phone, t.Status, requested,
		store.Time(t.CreatedAt), reservationID, roleName, admin)
	if err != nil {
		return fmt.Errorf("insert technician: %w", err)
	}
	for _, site := range t.SiteIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO technician_sites (technician_id, site_id) VALUES ($1, $2)`, t.ID, site); err != nil {
			return fmt.Errorf("technician site: %w", err)
		}
	}
	return nil
}

// AddTechnician stores a technician created with a seat reservation.
func (s Store) AddTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician, reservationID string) error {
	return s.insertTechnician(ctx, tx, t, reservationID)
}

// UpdateTechnician stores the mutable fields of t.
func (s Store) UpdateTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE technicians SET email = $1, email_key = $2, first_name = $3, last_name = $4, phone = $5,
		status = $6, disabled_at = $7, updated_at = $8 WHERE account_id = $9 AND id = $10`,
		t.Email, domain.EmailKey(t.Email), t.FirstName, t.LastName, t.Phone, t.Status, nullTime(t.DisabledAt), store.Time(now), t.AccountID, t.ID)
	if err != nil {
		return fmt.Errorf("update technician: %w", err)
	}
	return nil
}

// LockAccount serialises the account's cross-row rule checks (I-9) until tx
// ends: it takes the account row's write lock on PostgreSQL; SQLite
// transactions hold the database's write lock already.
func (s Store) LockAccount(ctx context.Context, tx *sql.Tx, accountID string) error {
	res, err := tx.ExecContext(ctx, `UPDATE accounts SET lock_version = lock_version + 1 WHERE id = $1`, accountID)
	if err != nil {
		return fmt.Errorf("lock account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return app.ErrNotFound
	}
	return nil
}

// ActiveAdmins counts technicians not disabled holding the Admin role.
func (s Store) ActiveAdmins(ctx context.Context, tx *sql.Tx, accountID string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM technicians WHERE account_id = $1 AND is_admin = 1 AND status <> 'disabled'`, accountID).Scan(&n)
	return n, err
}

// ListTechnicians returns a page of the account's technicians, in creation
// order (ids are time-ordered), after the cursor id.
func (s Store) ListTechnicians(ctx context.Context, f app.TechnicianFilter) ([]domain.Technician, error) {
	where := []string{"account_id = $1"}
	args := []any{f.AccountID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.HideDisabled {
		where = append(where, "status <> 'disabled'")
	}
	if f.Role != "" {
		add("lower(role_name) = ?", strings.ToLower(f.Role))
	}
	if f.Email != "" {
		add("email_key = ?", domain.EmailKey(f.Email))
	}
	if f.SiteID != "" {
		add("id IN (SELECT technician_id FROM technician_sites WHERE site_id = ?)", f.SiteID)
	}
	if f.Query != "" {
		q := "%" + strings.ToLower(f.Query) + "%"
		add("(email_key LIKE ? OR lower(first_name || ' ' || last_name) LIKE ?)", q) // one placeholder, used twice
	}
	if f.InactiveSince != nil {
		add("(last_active_at IS NULL OR last_active_at < ?)", store.Time(*f.InactiveSince))
	}
	if f.ActiveSince != nil {
		add("last_active_at >= ?", store.Time(*f.ActiveSince))
	}
	if f.After != "" {
		add("id > ?", f.After)
	}
	args = append(args, f.Limit)
	rows, err := s.DB.QueryContext(ctx, `SELECT `+techColumns+` FROM technicians WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list technicians: %w", err)
	}
	defer rows.Close()
	var out []domain.Technician
	for rows.Next() {
		t, err := scanTechnician(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ptrs := make([]*domain.Technician, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	return out, s.loadSites(ctx, s.DB, ptrs)
}

// MissingSites returns the ids among ids that are not sites of the account.
func (s Store) MissingSites(ctx context.Context, q app.Querier, accountID string, ids []string) ([]string, error) {
	var missing []string
	for _, id := range ids {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sites WHERE account_id = $1 AND id = $2`, accountID, id).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// ApplyRoleAssigned updates the role projection (rolepolicy's RoleAssigned).
func (s Store) ApplyRoleAssigned(ctx context.Context, tx *sql.Tx, accountID, technicianID, roleID, roleName, requested string, admin bool) error {
	a := 0
	if admin {
		a = 1
	}
	_, err := tx.ExecContext(ctx, `UPDATE technicians SET role_id = $1, role_name = $2, is_admin = $3,
		requested_role = CASE WHEN $4 = '' THEN requested_role ELSE $4 END
		WHERE account_id = $5 AND id = $6`, roleID, roleName, a, requested, accountID, technicianID)
	return err
}

// EraseTechnician stores an erased technician (I-3): the pseudonymous
// fields replace the personal ones, email_key becomes the pseudonym's so the
// old email is free, and the technician's sites are kept.
func (s Store) EraseTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE technicians SET email = $1, email_key = $2, first_name = $3, last_name = $4, phone = $5,
		requested_role = '', erased_at = $6, updated_at = $6 WHERE account_id = $7 AND id = $8`,
		t.Email, domain.EmailKey(t.Email), t.FirstName, t.LastName, t.Phone, store.Time(now), t.AccountID, t.ID)
	if err != nil {
		return fmt.Errorf("erase technician: %w", err)
	}
	return nil
}
