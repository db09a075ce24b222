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

var _ app.SSOStore = Store{}

// SSOConfig returns the account's configuration; app.ErrNotFound when none.
func (s Store) SSOConfig(ctx context.Context, q app.Querier, accountID string) (domain.SSOConfig, error) {
	var c domain.SSOConfig
	var enforce int
	err := q.QueryRowContext(ctx, `SELECT issuer, client_id, client_secret, enforce FROM sso_configs WHERE account_id = $1`, accountID).
		Scan(&c.Issuer, &c.ClientID, &c.ClientSecret, &enforce)
	if errors.Is(err, sql.ErrNoRows) {
		return c, app.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("sso config: %w", err)
	}
	c.Enforce = enforce == 1
	return c, nil
}

func (s Store) PutSSOConfig(ctx context.Context, tx *sql.Tx, accountID string, c domain.SSOConfig, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sso_configs (account_id, issuer, client_id, client_secret, enforce, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
		client_secret = excluded.client_secret, enforce = excluded.enforce, updated_at = excluded.updated_at`,
		accountID, c.Issuer, c.ClientID, c.ClientSecret, boolInt(c.Enforce), store.Time(now))
	if err != nil {
		return fmt.Errorf("put sso config: %w", err)
	}
	return nil
}

func (s Store) InsertSSOLogin(ctx context.Context, tx *sql.Tx, l app.SSOLogin) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sso_logins (state_hash, account_id, nonce, code_verifier, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		l.StateHash, l.AccountID, l.Nonce, l.Verifier, store.Time(l.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert sso login: %w", err)
	}
	return nil
}

// TakeSSOLogin uses the sign-on with this state once, if unexpired at now
// and of the account; app.ErrNotFound otherwise.
func (s Store) TakeSSOLogin(ctx context.Context, tx *sql.Tx, accountID, stateHash string, now time.Time) (app.SSOLogin, error) {
	l := app.SSOLogin{StateHash: stateHash, AccountID: accountID}
	err := tx.QueryRowContext(ctx, `UPDATE sso_logins SET used_at = $1
		WHERE state_hash = $2 AND account_id = $3 AND used_at IS NULL AND expires_at > $1 RETURNING nonce, code_verifier`,
		store.Time(now), stateHash, accountID).Scan(&l.Nonce, &l.Verifier)
	if errors.Is(err, sql.ErrNoRows) {
		return l, app.ErrNotFound
	}
	if err != nil {
		return l, fmt.Errorf("take sso login: %w", err)
	}
	return l, nil
}
