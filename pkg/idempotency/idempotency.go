// Package idempotency makes a POST safe to retry: the first result under an
// Idempotency-Key is stored in the same transaction as the request's
// effects, and a retry with the same key and body gets that result back and
// changes nothing; the same key with another body is refused (422).
package idempotency

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"roster.dev/pkg/problem"
	"roster.dev/pkg/store"
)

// Retention: keys are kept at least this long (api.md: 24 hours).
const Retention = 48 * time.Hour

// Init creates the table when missing.
func Init(ctx context.Context, db *store.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS roster_idempotency (
		scope TEXT NOT NULL,
		key TEXT NOT NULL,
		request_hash TEXT NOT NULL,
		status INTEGER NOT NULL,
		body TEXT NOT NULL,
		created_at TEXT NOT NULL,
		PRIMARY KEY (scope, key)
	)`)
	if err != nil && !store.IsUniqueViolation(err) {
		return fmt.Errorf("idempotency: create table: %w", err)
	}
	return nil
}

// Result is what a request answered.
type Result struct {
	Status int
	Body   json.RawMessage
	// Replayed is true when Body is the stored answer of an earlier request.
	Replayed bool
}

// Request identifies a keyed request: Scope is the account (or "operator")
// and the route, Key the client's Idempotency-Key, Body the raw request body.
type Request struct {
	Scope string
	Key   string
	Body  []byte
}

var errRace = errors.New("idempotency: concurrent request with the same key")

// Do runs fn in one transaction with its result stored under req; without a
// key it just runs fn. fn returns the status and the value to encode as the
// body; a *problem.Problem from fn rolls back and is not stored.
func Do(ctx context.Context, db *store.DB, req Request, fn func(tx *sql.Tx) (int, any, error)) (Result, error) {
	sum := sha256.Sum256(req.Body)
	hash := hex.EncodeToString(sum[:])
	for attempt := 0; ; attempt++ {
		var res Result
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if req.Key != "" {
				var storedHash, body string
				var status int
				err := tx.QueryRowContext(ctx, `SELECT request_hash, status, body FROM roster_idempotency WHERE scope = $1 AND key = $2`,
					req.Scope, req.Key).Scan(&storedHash, &status, &body)
				switch {
				case err == nil && storedHash != hash:
					return errKeyReused()
				case err == nil:
					res = Result{Status: status, Body: json.RawMessage(body), Replayed: true}
					return nil
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
			}
			status, v, err := fn(tx)
			if err != nil {
				return err
			}
			body, err := json.Marshal(v)
			if err != nil {
				return err
			}
			res = Result{Status: status, Body: body}
			if req.Key == "" {
				return nil
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO roster_idempotency (scope, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				req.Scope, req.Key, hash, status, string(body), store.Time(time.Now()))
			if store.IsUniqueViolation(err) {
				return errRace
			}
			return err
		})
		if errors.Is(err, errRace) && attempt < 3 {
			continue // the other request committed: the next attempt replays it
		}
		return res, err
	}
}

// Replay looks req up without running anything: a use case that must call
// another service before its transaction (a seat reservation) checks first
// whether the request is a retry. found is false without a key.
func Replay(ctx context.Context, db *store.DB, req Request) (res Result, found bool, err error) {
	if req.Key == "" {
		return Result{}, false, nil
	}
	sum := sha256.Sum256(req.Body)
	var storedHash, body string
	var status int
	err = db.QueryRowContext(ctx, `SELECT request_hash, status, body FROM roster_idempotency WHERE scope = $1 AND key = $2`,
		req.Scope, req.Key).Scan(&storedHash, &status, &body)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Result{}, false, nil
	case err != nil:
		return Result{}, false, err
	case storedHash != hex.EncodeToString(sum[:]):
		return Result{}, false, errKeyReused()
	}
	return Result{Status: status, Body: json.RawMessage(body), Replayed: true}, true, nil
}

func errKeyReused() *problem.Problem {
	return problem.New(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
		"this Idempotency-Key was used with a different request body")
}

// Expire deletes keys older than Retention.
func Expire(ctx context.Context, db *store.DB) error {
	_, err := db.ExecContext(ctx, `DELETE FROM roster_idempotency WHERE created_at < $1`, store.Time(time.Now().Add(-Retention)))
	return err
}

// Write sends a result, marking replays.
func Write(w http.ResponseWriter, res Result) {
	w.Header().Set("Content-Type", "application/json")
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
	_, _ = w.Write([]byte("\n"))
}
