package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/rolepolicy/domain"
)

// querier is what reads need from a transaction or the database.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// in returns tx, or the database when tx is nil (a read outside any
// transaction).
func (s *Store) in(tx *sql.Tx) querier {
	if tx != nil {
		return tx
	}
	return s.db
}

// LockAccount returns the account and holds its row until tx ends, so that
// the commands that change an account's technicians run one at a time per
// account: two demotions of the account's last two admins cannot both see
// the other one still holding Admin (I-9). On PostgreSQL the no-op UPDATE
// takes the row lock; SQLite transactions already hold the database's write
// lock from BEGIN (pkg/store). An unknown account is
// domain.ErrAccountNotFound.
func (s *Store) LockAccount(ctx context.Context, tx *sql.Tx, accountID string) (domain.Account, error) {
	var acc domain.Account
	var created string
	err := tx.QueryRowContext(ctx, `UPDATE accounts SET profile = profile WHERE account_id = $1
		RETURNING account_id, profile, created_at`, accountID).Scan(&acc.ID, &acc.Profile, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Account{}, fmt.Errorf("account %s: %w", accountID, domain.ErrAccountNotFound)
	}
	if err != nil {
		return domain.Account{}, fmt.Errorf("lock account %s: %w", accountID, err)
	}
	if acc.CreatedAt, err = store.ParseTime(created); err != nil {
		return domain.Account{}, fmt.Errorf("lock account %s: %w", accountID, err)
	}
	return acc, nil
}

// LockAccounts takes the locks of several accounts at once, in account
// order, first in the transaction of a batch of events
// (eventbus.BeforeBatch): its handlers then lock them again, already held,
// in whatever order the events come, and two replicas' batches never hold
// one account each while waiting for the other's. PostgreSQL only: on
// SQLite the transaction holds the database's write lock already.
func (s *Store) LockAccounts(ctx context.Context, tx *sql.Tx, accountIDs []string) error {
	if s.db.Dialect != store.Postgres || len(accountIDs) < 2 {
		return nil
	}
	marks := make([]string, len(accountIDs))
	args := make([]any, len(accountIDs))
	for i, id := range accountIDs {
		marks[i], args[i] = fmt.Sprintf("$%d", i+1), id
	}
	rows, err := tx.QueryContext(ctx, `SELECT account_id FROM accounts WHERE account_id IN (`+strings.Join(marks, ", ")+
		`) ORDER BY account_id FOR UPDATE`, args...)
	if err != nil {
		return fmt.Errorf("lock %d accounts: %w", len(accountIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// AccountRoles returns every role of an account, ordered by name key.
func (s *Store) AccountRoles(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.Role, error) {
	rows, err := s.in(tx).QueryContext(ctx, `SELECT `+roleColumns+` FROM roles WHERE account_id = $1 ORDER BY name_key`, accountID)
	if err != nil {
		return nil, fmt.Errorf("query roles of %s: %w", accountID, err)
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
		return nil, fmt.Errorf("query roles of %s: %w", accountID, err)
	}
	return roles, nil
}

// AddTechnician records a new technician (its role goes through Assign);
// it reports false when the technician was recorded before, which makes
// TechnicianCreated apply once even when identity announces it again with
// a new event id.
func (s *Store) AddTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO technicians (account_id, technician_id, status, status_at,
			first_login_at, requested_role, requested_role_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		t.AccountID, t.ID, string(t.Status), store.Time(t.StatusAt), nullTime(t.FirstLoginAt),
		t.RequestedRole, t.RequestedRoleID, store.Time(t.CreatedAt), store.Time(t.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("insert technician %s: %w", t.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert technician %s: %w", t.ID, err)
	}
	return n == 1, nil
}

// SaveTechnician stores a known technician's states (not its role: Assign).
func (s *Store) SaveTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician) error {
	res, err := tx.ExecContext(ctx, `UPDATE technicians SET status = $3, status_at = $4, first_login_at = $5,
			requested_role = $6, requested_role_id = $7, updated_at = $8
		WHERE account_id = $1 AND technician_id = $2`,
		t.AccountID, t.ID, string(t.Status), store.Time(t.StatusAt), nullTime(t.FirstLoginAt),
		t.RequestedRole, t.RequestedRoleID, store.Time(t.UpdatedAt))
	if err != nil {
		return fmt.Errorf("save technician %s: %w", t.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("save technician %s: %d rows, %v: %w", t.ID, n, err, domain.ErrTechnicianNotFound)
	}
	return nil
}

const technicianColumns = `t.account_id, t.technician_id, t.status, t.status_at, t.first_login_at,
	t.requested_role, t.requested_role_id, t.created_at, t.updated_at, a.role_id`

const technicianFrom = ` FROM technicians t JOIN role_assignments a
	ON a.account_id = t.account_id AND a.technician_id = t.technician_id `

// Technician returns one technician with the role it holds, or
// domain.ErrTechnicianNotFound; tx nil reads outside a transaction.
func (s *Store) Technician(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (domain.Technician, error) {
	row := s.in(tx).QueryRowContext(ctx, `SELECT `+technicianColumns+technicianFrom+
		`WHERE t.account_id = $1 AND t.technician_id = $2`, accountID, technicianID)
	t, err := scanTechnician(row)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Technician{}, fmt.Errorf("technician %s: %w", technicianID, domain.ErrTechnicianNotFound)
	}
	return t, err
}

// Holders returns the technicians of an account that hold a role, in id
// order, whatever their status.
func (s *Store) Holders(ctx context.Context, tx *sql.Tx, accountID, roleID string) ([]domain.Technician, error) {
	rows, err := s.in(tx).QueryContext(ctx, `SELECT `+technicianColumns+technicianFrom+
		`WHERE a.account_id = $1 AND a.role_id = $2 ORDER BY t.technician_id`, accountID, roleID)
	if err != nil {
		return nil, fmt.Errorf("query holders of %s: %w", roleID, err)
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
		return nil, fmt.Errorf("query holders of %s: %w", roleID, err)
	}
	return out, nil
}

func scanTechnician(row scanner) (domain.Technician, error) {
	var (
		t                domain.Technician
		status, statusAt string
		firstLogin       sql.NullString
		created, updated string
	)
	err := row.Scan(&t.AccountID, &t.ID, &status, &statusAt, &firstLogin, &t.RequestedRole, &t.RequestedRoleID,
		&created, &updated, &t.RoleID)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Technician{}, err
	}
	if err != nil {
		return domain.Technician{}, fmt.Errorf("read technician: %w", err)
	}
	t.Status = domain.Status(status)
	for _, f := range []struct {
		text string
		into *time.Time
	}{{statusAt, &t.StatusAt}, {firstLogin.String, &t.FirstLoginAt}, {created, &t.CreatedAt}, {updated, &t.UpdatedAt}} {
		if f.text == "" {
			continue
		}
		if *f.into, err = store.ParseTime(f.text); err != nil {
			return domain.Technician{}, fmt.Errorf("read technician %s: %w", t.ID, err)
		}
	}
	return t, nil
}

// nullTime stores a zero time as NULL.
func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: store.Time(t), Valid: true}
}
