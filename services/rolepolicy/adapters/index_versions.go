package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"roster.dev/services/rolepolicy/domain"
)

// BumpIndexVersion adds one to the account's index version within tx and
// returns the new version. The update holds the account's row until tx
// ends, like LockAccount.
func (s *Store) BumpIndexVersion(ctx context.Context, tx *sql.Tx, accountID string) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `UPDATE accounts SET index_version = index_version + 1
		WHERE account_id = $1 RETURNING index_version`, accountID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("account %s: %w", accountID, domain.ErrAccountNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("bump index version of %s: %w", accountID, err)
	}
	return v, nil
}

// IndexVersions returns every account's index version, or one account's
// when accountID is not "", in tx or outside any transaction when tx is nil.
func (s *Store) IndexVersions(ctx context.Context, tx *sql.Tx, accountID string) (map[string]int64, error) {
	rows, err := s.in(tx).QueryContext(ctx, `SELECT account_id, index_version FROM accounts
		WHERE $1 = '' OR account_id = $1`, accountID)
	if err != nil {
		return nil, fmt.Errorf("query index versions: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("read index version: %w", err)
		}
		out[id] = v
	}
	return out, rows.Err()
}
