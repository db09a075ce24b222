package adapters

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
)

var _ app.Checkpoints = Store{}

// AddCheckpoint stores c and makes it its chain's last checkpoint; tx holds
// the chain's head (LockHead). Storing the same checkpoint twice is a no-op.
func (s Store) AddCheckpoint(ctx context.Context, tx *sql.Tx, c domain.Checkpoint) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (account_id, sequence, hash, time, key_id, signature)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, sequence) DO NOTHING`,
		c.AccountID, c.Sequence, c.Hash, store.Time(c.Time), c.KeyID, c.Signature)
	if err != nil {
		return fmt.Errorf("store checkpoint %s #%d: %w", c.AccountID, c.Sequence, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE audit_heads SET checkpoint_sequence = $2, checkpoint_time = $3
		WHERE account_id = $1 AND checkpoint_sequence < $2`, c.AccountID, c.Sequence, store.Time(c.Time))
	if err != nil {
		return fmt.Errorf("mark checkpoint %s #%d: %w", c.AccountID, c.Sequence, err)
	}
	return nil
}

// ListCheckpoints returns the account's checkpoints in (after, upTo].
func (s Store) ListCheckpoints(ctx context.Context, accountID string, after, upTo int64, limit int) ([]domain.Checkpoint, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT account_id, sequence, hash, time, key_id, signature FROM audit_checkpoints
		WHERE account_id = $1 AND sequence > $2 AND sequence <= $3 ORDER BY sequence LIMIT $4`, accountID, after, upTo, limit)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints of %s: %w", accountID, err)
	}
	defer rows.Close()
	var out []domain.Checkpoint
	for rows.Next() {
		var c domain.Checkpoint
		var at string
		if err := rows.Scan(&c.AccountID, &c.Sequence, &c.Hash, &at, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("read checkpoint of %s: %w", accountID, err)
		}
		c.Time, _ = store.ParseTime(at) // an unreadable time fails the signature
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list checkpoints of %s: %w", accountID, err)
	}
	return out, nil
}

// CheckpointAtOrBefore is the account's last checkpoint at or before seq.
func (s Store) CheckpointAtOrBefore(ctx context.Context, accountID string, seq int64) (domain.Checkpoint, bool, error) {
	var c domain.Checkpoint
	var at string
	err := s.DB.QueryRowContext(ctx, `SELECT account_id, sequence, hash, time, key_id, signature FROM audit_checkpoints
		WHERE account_id = $1 AND sequence <= $2 ORDER BY sequence DESC LIMIT 1`, accountID, seq).
		Scan(&c.AccountID, &c.Sequence, &c.Hash, &at, &c.KeyID, &c.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Checkpoint{}, false, nil
	}
	if err != nil {
		return domain.Checkpoint{}, false, fmt.Errorf("read checkpoint of %s: %w", accountID, err)
	}
	c.Time, _ = store.ParseTime(at)
	return c, true, nil
}

// Unsigned lists accounts with records after their last checkpoint, which
// was made before `before` (or never).
func (s Store) Unsigned(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT account_id FROM audit_heads
		WHERE checkpoint_time < $1 AND sequence > checkpoint_sequence ORDER BY checkpoint_time LIMIT $2`, store.Time(before), limit)
	if err != nil {
		return nil, fmt.Errorf("list unsigned chains: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var acc string
		if err := rows.Scan(&acc); err != nil {
			return nil, fmt.Errorf("list unsigned chains: %w", err)
		}
		out = append(out, acc)
	}
	return out, rows.Err()
}

// AddKey records a signing key's public half, once.
func (s Store) AddKey(ctx context.Context, k domain.PublicKey, at time.Time) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO audit_keys (key_id, public_key, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (key_id) DO NOTHING`, k.ID, base64.StdEncoding.EncodeToString(k.Key), store.Time(at))
	if err != nil {
		return fmt.Errorf("record audit key %s: %w", k.ID, err)
	}
	return nil
}

// Keys are every recorded key, oldest first. A row whose key does not
// decode, or does not match its id, is left out: checkpoints naming it fail.
func (s Store) Keys(ctx context.Context) ([]app.Key, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT key_id, public_key, created_at FROM audit_keys ORDER BY created_at, key_id`)
	if err != nil {
		return nil, fmt.Errorf("list audit keys: %w", err)
	}
	defer rows.Close()
	var out []app.Key
	for rows.Next() {
		var id, pub, at string
		if err := rows.Scan(&id, &pub, &at); err != nil {
			return nil, fmt.Errorf("list audit keys: %w", err)
		}
		raw, err := base64.StdEncoding.DecodeString(pub)
		if err != nil || len(raw) != ed25519.PublicKeySize || domain.KeyID(raw) != id {
			continue
		}
		t, _ := store.ParseTime(at)
		out = append(out, app.Key{PublicKey: domain.PublicKey{ID: id, Key: raw}, CreatedAt: t})
	}
	return out, rows.Err()
}
