// Package adapters holds the identity service's SQL store; the same SQL runs
// on SQLite and PostgreSQL.
package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// Store is the SQL store.
type Store struct{ DB *store.DB }

var _ app.Store = Store{}

func (s Store) InsertAccount(ctx context.Context, tx *sql.Tx, a domain.Account) error {
	var price int64
	currency := "usd"
	if a.PricePerSeat != nil {
		price, currency = a.PricePerSeat.Amount, a.PricePerSeat.Currency
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, name, profile, plan, billing_period, seats, price_per_seat, currency, billing_anchor, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		a.ID, a.Name, a.Profile, a.Plan, a.BillingPeriod, a.Seats, price, currency, a.BillingAnchor, store.Time(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert account: %w", err)
	}
	return nil
}

func (s Store) InsertTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician) error {
	return s.insertTechnician(ctx, tx, t, "")
}

func (s Store) InsertToken(ctx context.Context, tx *sql.Tx, t app.Token) error {
	var owner any
	if t.TechnicianID != "" {
		owner = t.TechnicianID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (id, account_id, name, token_hash, scopes, created_at, expires_at, technician_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.AccountID, t.Name, t.Hash, strings.Join(t.Scopes, " "), store.Time(t.CreatedAt), nullTime(t.ExpiresAt), owner)
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

func (s Store) Account(ctx context.Context, id string) (domain.Account, error) {
	return s.AccountIn(ctx, s.DB, id)
}

// AccountIn reads the account through q: a transaction reads it through
// itself, never through the pool (on SQLite the pool may be all taken by
// writers waiting for the lock the transaction holds).
func (s Store) AccountIn(ctx context.Context, q app.Querier, id string) (domain.Account, error) {
	var a domain.Account
	var price int64
	var currency, created string
	err := q.QueryRowContext(ctx, `SELECT id, name, profile, plan, billing_period, seats, price_per_seat, currency, billing_anchor, created_at
		FROM accounts WHERE id = $1`, id).Scan(&a.ID, &a.Name, &a.Profile, &a.Plan, &a.BillingPeriod, &a.Seats, &price, &currency, &a.BillingAnchor, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return a, app.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("account %s: %w", id, err)
	}
	if price > 0 {
		a.PricePerSeat = &domain.Money{Amount: price, Currency: currency}
	}
	a.CreatedAt, err = store.ParseTime(created)
	return a, err
}
