package adapters

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
)

// InsertSite stores a site; a name taken in the account is app.ErrConflict.
func (s Store) InsertSite(ctx context.Context, tx *sql.Tx, site app.Site) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sites (id, account_id, name, name_key, created_at) VALUES ($1, $2, $3, $4, $5)`,
		site.ID, site.AccountID, site.Name, strings.ToLower(site.Name), store.Time(site.CreatedAt))
	if store.IsUniqueViolation(err) {
		return app.ErrConflict
	}
	return err
}

// Sites lists the account's sites by name.
func (s Store) Sites(ctx context.Context, accountID string) ([]app.Site, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, account_id, name, created_at FROM sites WHERE account_id = $1 ORDER BY name_key`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	defer rows.Close()
	out := []app.Site{}
	for rows.Next() {
		var site app.Site
		var created string
		if err := rows.Scan(&site.ID, &site.AccountID, &site.Name, &created); err != nil {
			return nil, err
		}
		site.CreatedAt, _ = store.ParseTime(created)
		out = append(out, site)
	}
	return out, rows.Err()
}

// InsertFolder stores a device folder of a site of the account.
func (s Store) InsertFolder(ctx context.Context, tx *sql.Tx, f app.Folder) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sites WHERE account_id = $1 AND id = $2`, f.AccountID, f.SiteID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return app.ErrNotFound
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO folders (id, account_id, site_id, name, created_at) VALUES ($1, $2, $3, $4, $5)`,
		f.ID, f.AccountID, f.SiteID, f.Name, store.Time(f.CreatedAt))
	return err
}

// TokenByHash returns the live API token with this SHA-256.
func (s Store) TokenByHash(ctx context.Context, hash []byte, now time.Time) (app.Token, error) {
	var t app.Token
	var scopes string
	var expires, used sql.NullString
	err := s.DB.QueryRowContext(ctx, `SELECT id, account_id, name, scopes, expires_at, last_used_at FROM api_tokens
		WHERE token_hash = $1 AND revoked_at IS NULL
		AND (technician_id IS NULL OR EXISTS (SELECT 1 FROM technicians t WHERE t.id = api_tokens.technician_id AND t.status <> 'disabled'))`, hex.EncodeToString(hash)).Scan(&t.ID, &t.AccountID, &t.Name, &scopes, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return t, app.ErrNotFound
	}
	if err != nil {
		return t, err
	}
	if e := parseNullTime(expires); e != nil && !now.Before(*e) {
		return t, app.ErrNotFound
	}
	t.Scopes = strings.Fields(scopes)
	t.LastUsedAt = parseNullTime(used)
	return t, nil
}
