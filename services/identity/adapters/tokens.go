package adapters

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
)

var _ app.TokenStore = Store{}

// TouchToken records a use of the token at now unless one was recorded
// after since.
func (s Store) TouchToken(ctx context.Context, id string, now, since time.Time) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $1
		WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)`, store.Time(now), id, store.Time(since))
	if err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	return nil
}

// ListTokens returns the account's unrevoked tokens, oldest first.
func (s Store) ListTokens(ctx context.Context, q app.Querier, accountID string) ([]app.Token, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, account_id, name, scopes, created_at, expires_at, last_used_at, COALESCE(technician_id, '') FROM api_tokens
		WHERE account_id = $1 AND revoked_at IS NULL ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer rows.Close()
	var out []app.Token
	for rows.Next() {
		var t app.Token
		var scopes, created string
		var expires, used sql.NullString
		if err := rows.Scan(&t.ID, &t.AccountID, &t.Name, &scopes, &created, &expires, &used, &t.TechnicianID); err != nil {
			return nil, err
		}
		t.Scopes = strings.Fields(scopes)
		t.CreatedAt, _ = store.ParseTime(created)
		t.ExpiresAt, t.LastUsedAt = parseNullTime(expires), parseNullTime(used)
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes the account's token; false when there is no such
// unrevoked token.
func (s Store) RevokeToken(ctx context.Context, tx *sql.Tx, accountID, id string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE account_id = $2 AND id = $3 AND revoked_at IS NULL`,
		store.Time(now), accountID, id)
	if err != nil {
		return false, fmt.Errorf("revoke token: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RevokeOwnedTokens revokes the tokens acting for the technician and
// returns their ids.
func (s Store) RevokeOwnedTokens(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM api_tokens WHERE technician_id = $1 AND revoked_at IS NULL ORDER BY id`, technicianID)
	if err != nil {
		return nil, fmt.Errorf("owned tokens: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE technician_id = $2 AND revoked_at IS NULL`, store.Time(now), technicianID); err != nil {
		return nil, fmt.Errorf("revoke owned tokens: %w", err)
	}
	return ids, nil
}
