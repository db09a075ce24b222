package adapters

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/seatbilling/domain"
)

// querier is a transaction or the database.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// AddOns reads the account's add-ons (S-9) in id order, within tx, or
// outside any transaction when tx is nil.
func (s *Store) AddOns(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.AddOn, error) {
	var q querier = s.db
	if tx != nil {
		q = tx
	}
	rows, err := q.QueryContext(ctx, `SELECT add_on_id, price, currency, quantity FROM add_ons WHERE account_id = $1 ORDER BY add_on_id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list add-ons of %s: %w", accountID, err)
	}
	defer rows.Close()
	out := []domain.AddOn{}
	for rows.Next() {
		var a domain.AddOn
		if err := rows.Scan(&a.ID, &a.Price.Amount, &a.Price.Currency, &a.Quantity); err != nil {
			return nil, fmt.Errorf("list add-ons of %s: %w", accountID, err)
		}
		a.Name, _ = domain.AddOnName(a.ID)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list add-ons of %s: %w", accountID, err)
	}
	return out, nil
}

// UpsertAddOn stores add-on a on the account within tx, as new or with its
// new price and quantity.
func (s *Store) UpsertAddOn(ctx context.Context, tx *sql.Tx, accountID string, a domain.AddOn, at time.Time) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO add_ons (account_id, add_on_id, price, currency, quantity, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (account_id, add_on_id) DO UPDATE SET
			price = excluded.price, currency = excluded.currency, quantity = excluded.quantity,
			updated_at = excluded.updated_at`,
		accountID, a.ID, a.Price.Amount, a.Price.Currency, a.Quantity, store.Time(at))
	if err != nil {
		return fmt.Errorf("set add-on %s of %s: %w", a.ID, accountID, err)
	}
	return nil
}

// DeleteAddOn removes the add-on from the account within tx; false when it
// was not there.
func (s *Store) DeleteAddOn(ctx context.Context, tx *sql.Tx, accountID, addOnID string) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM add_ons WHERE account_id = $1 AND add_on_id = $2`, accountID, addOnID)
	if err != nil {
		return false, fmt.Errorf("remove add-on %s of %s: %w", addOnID, accountID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("remove add-on %s of %s: %w", addOnID, accountID, err)
	}
	return n == 1, nil
}
