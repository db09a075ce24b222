package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

var _ app.SecurityStore = Store{}

// Policy returns the account's security policy, the default when none was
// set.
func (s Store) Policy(ctx context.Context, q app.Querier, accountID string) (domain.SecurityPolicy, error) {
	p := domain.DefaultSecurityPolicy()
	var raw string
	err := q.QueryRowContext(ctx, `SELECT policy FROM security_policies WHERE account_id = $1`, accountID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("security policy: %w", err)
	}
	// Decoded over the defaults: a field added later keeps its default.
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return p, fmt.Errorf("security policy of %s: %w", accountID, err)
	}
	return p, nil
}

// PutPolicy stores the account's policy whole.
func (s Store) PutPolicy(ctx context.Context, tx *sql.Tx, accountID string, p domain.SecurityPolicy, now time.Time) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO security_policies (account_id, policy, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (account_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`,
		accountID, string(raw), store.Time(now))
	if err != nil {
		return fmt.Errorf("put security policy: %w", err)
	}
	return nil
}

// LockedUntil returns the end of the technician's lock on factor as
// stored: "" when not locked (or the lock ended before now), "admin" when
// only an admin unlocks, else a store.Time.
func (s Store) LockedUntil(ctx context.Context, q app.Querier, technicianID, factor string, now time.Time) (string, error) {
	var until string
	err := q.QueryRowContext(ctx, `SELECT locked_until FROM lockouts WHERE technician_id = $1 AND factor = $2 AND locked_until > $3`,
		technicianID, factor, store.Time(now)).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lockout: %w", err)
	}
	return until, nil
}

func ensureLockout(ctx context.Context, tx *sql.Tx, technicianID, factor string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO lockouts (technician_id, factor) VALUES ($1, $2) ON CONFLICT (technician_id, factor) DO NOTHING`,
		technicianID, factor)
	if err != nil {
		return fmt.Errorf("lockout row: %w", err)
	}
	return nil
}

// CountFailure adds one failure on factor unless the technician is locked
// at now: one conditional update, so concurrent failures are counted one
// by one and none once the lock is taken. counted is false while locked;
// locks is the number of temporary locks in a row so far.
func (s Store) CountFailure(ctx context.Context, tx *sql.Tx, technicianID, factor string, now time.Time) (failures, locks int, counted bool, err error) {
	if err := ensureLockout(ctx, tx, technicianID, factor); err != nil {
		return 0, 0, false, err
	}
	err = tx.QueryRowContext(ctx, `UPDATE lockouts SET failures = failures + 1
		WHERE technician_id = $1 AND factor = $2 AND locked_until <= $3 RETURNING failures, locks`,
		technicianID, factor, store.Time(now)).Scan(&failures, &locks)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("count failure: %w", err)
	}
	return failures, locks, true, nil
}

// Lock locks the technician on factor until until ("admin": until an
// admin unlocks), restarting the count and adding one lock in a row.
func (s Store) Lock(ctx context.Context, tx *sql.Tx, technicianID, factor, until string) error {
	_, err := tx.ExecContext(ctx, `UPDATE lockouts SET failures = 0, locks = locks + 1, locked_until = $3
		WHERE technician_id = $1 AND factor = $2`, technicianID, factor, until)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// Succeeded clears the failures and the locks in a row on factor after a
// successful check, unless the technician is locked at now — checked in
// the same statement, so a lock taken by a parallel failure holds. ok is
// false while locked.
func (s Store) Succeeded(ctx context.Context, tx *sql.Tx, technicianID, factor string, now time.Time) (bool, error) {
	if err := ensureLockout(ctx, tx, technicianID, factor); err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE lockouts SET failures = 0, locks = 0, locked_until = ''
		WHERE technician_id = $1 AND factor = $2 AND locked_until <= $3`, technicianID, factor, store.Time(now))
	if err != nil {
		return false, fmt.Errorf("clear failures: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Unlock lifts every lock of the technician and restarts the counts;
// whether a lock was in force at now.
func (s Store) Unlock(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE lockouts SET failures = 0, locks = 0, locked_until = ''
		WHERE technician_id = $1 AND locked_until > $2`, technicianID, store.Time(now))
	if err != nil {
		return false, fmt.Errorf("unlock: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE lockouts SET failures = 0, locks = 0, locked_until = '' WHERE technician_id = $1`, technicianID); err != nil {
		return false, fmt.Errorf("unlock: %w", err)
	}
	return n > 0, nil
}
