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
	rows, err := q.QueryContext(ctx, `SELECT id, account_id, name, scopes, created_at, expires_at, last_used_at FROM api_tokens
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
		if err := rows.Scan(&t.ID, &t.AccountID, &t.Name, &scopes, &created, &expires, &used); err != nil {
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
