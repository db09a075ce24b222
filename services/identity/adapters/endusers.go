package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

func scanEndUser(row scanner) (domain.EndUser, error) {
	var u domain.EndUser
	var created string
	if err := row.Scan(&u.ID, &u.AccountID, &u.SiteID, &u.Email, &u.Name, &u.Status, &created); err != nil {
		return u, err
	}
	var err error
	u.CreatedAt, err = store.ParseTime(created)
	return u, err
}

const endUserColumns = `id, account_id, site_id, email, name, status, created_at`

// InsertEndUser stores an end user; a taken email is app.ErrConflict.
func (s Store) InsertEndUser(ctx context.Context, tx *sql.Tx, u domain.EndUser) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO end_users (id, account_id, site_id, email, email_key, name, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
		u.ID, u.AccountID, u.SiteID, u.Email, domain.EmailKey(u.Email), u.Name, u.Status, store.Time(u.CreatedAt))
	if store.IsUniqueViolation(err) {
		return app.ErrConflict
	}
	return err
}

// EndUser returns one end user of the account.
func (s Store) EndUser(ctx context.Context, q app.Querier, accountID, id string) (domain.EndUser, error) {
	u, err := scanEndUser(q.QueryRowContext(ctx, `SELECT `+endUserColumns+` FROM end_users WHERE account_id = $1 AND id = $2`, accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, app.ErrNotFound
	}
	return u, err
}

// SetEndUserStatus changes an end user's status.
func (s Store) SetEndUserStatus(ctx context.Context, tx *sql.Tx, accountID, id, status string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE end_users SET status = $1, updated_at = $2 WHERE account_id = $3 AND id = $4`,
		status, store.Time(now), accountID, id)
	return err
}

// EndUsers lists a page of the account's end users, optionally of one site
// or status.
func (s Store) EndUsers(ctx context.Context, accountID, siteID, status, after string, limit int) ([]domain.EndUser, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+endUserColumns+` FROM end_users
		WHERE account_id = $1 AND ($2 = '' OR site_id = $2) AND ($3 = '' OR status = $3) AND id > $4 ORDER BY id LIMIT $5`,
		accountID, siteID, status, after, limit)
	if err != nil {
		return nil, fmt.Errorf("end users: %w", err)
	}
	defer rows.Close()
	out := []domain.EndUser{}
	for rows.Next() {
		u, err := scanEndUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
