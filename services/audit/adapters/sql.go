// Package adapters holds the audit service's SQL store (the same SQL on
// SQLite and PostgreSQL) and its publisher on the public audit stream.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"roster.dev/pkg/store"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
)

// Store is the SQL store of the audit chains.
type Store struct{ DB *store.DB }

var (
	_ app.Chain   = Store{}
	_ app.Records = Store{}
)

// LockHead returns the account's head and locks its row until tx ends
// . The upsert creates the row of a new account, or rewrites the
// existing one unchanged: either way PostgreSQL holds the row lock, so a
// second append to the same account waits here until the first commits and
// then reads its head. SQLite transactions take the database's write lock
// at BEGIN (store: _txlock=immediate), which serialises appends already.
func (s Store) LockHead(ctx context.Context, tx *sql.Tx, accountID string) (domain.Head, int64, error) {
	var h domain.Head
	var signed int64
	err := tx.QueryRowContext(ctx, `INSERT INTO audit_heads (account_id, sequence, hash) VALUES ($1, 0, '')
		ON CONFLICT (account_id) DO UPDATE SET sequence = audit_heads.sequence
		RETURNING sequence, hash, checkpoint_sequence`, accountID).Scan(&h.Sequence, &h.Hash, &signed)
	if err != nil {
		return domain.Head{}, 0, fmt.Errorf("lock audit head of %s: %w", accountID, err)
	}
	return h, signed, nil
}

// Has reports whether the record id exists.
func (s Store) Has(ctx context.Context, tx *sql.Tx, recordID string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM audit_records WHERE id = $1`, recordID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up audit record %s: %w", recordID, err)
	}
	return true, nil
}

// Append inserts r and moves its account's head to it, in tx, which must
// hold the head (LockHead).
func (s Store) Append(ctx context.Context, tx *sql.Tx, r domain.Record) error {
	// time_hwm (migration 0003): the head's, moved on by this record's time.
	at := store.Time(r.Time)
	var hwm string
	if err := tx.QueryRowContext(ctx, `SELECT time_hwm FROM audit_heads WHERE account_id = $1`, r.AccountID).Scan(&hwm); err != nil {
		return fmt.Errorf("append audit record %s #%d: %w", r.AccountID, r.Sequence, err)
	}
	// late (migration 0004): earlier than a record before it.
	late := 0
	if at < hwm {
		late = 1
	}
	hwm = max(hwm, at)
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_records (account_id, sequence, id, action, actor_type, actor_id,
			target_type, target_id, time, correlation_id, data, source_address, prev_hash, hash, time_hwm, late)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		r.AccountID, r.Sequence, r.ID, r.Action, r.Actor.Type, r.Actor.ID, r.Target.Type, r.Target.ID,
		at, r.CorrelationID, string(r.Data), r.SourceAddress, r.PrevHash, r.Hash, hwm, late)
	if err != nil {
		return fmt.Errorf("append audit record %s #%d: %w", r.AccountID, r.Sequence, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE audit_heads SET sequence = $2, hash = $3, time_hwm = $5 WHERE account_id = $1 AND sequence = $4`,
		r.AccountID, r.Sequence, r.Hash, r.Sequence-1, hwm)
	if err != nil {
		return fmt.Errorf("move audit head of %s: %w", r.AccountID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("move audit head of %s to %d: the head moved under us (%d rows, %v)", r.AccountID, r.Sequence, n, err)
	}
	return nil
}

// Head is the account's head, the zero Head when it has none.
func (s Store) Head(ctx context.Context, accountID string) (domain.Head, error) {
	var h domain.Head
	err := s.DB.QueryRowContext(ctx, `SELECT sequence, hash FROM audit_heads WHERE account_id = $1`, accountID).Scan(&h.Sequence, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Head{}, nil
	}
	if err != nil {
		return domain.Head{}, fmt.Errorf("read audit head of %s: %w", accountID, err)
	}
	return h, nil
}

const recordColumns = `account_id, sequence, id, action, actor_type, actor_id, target_type, target_id,
	time, correlation_id, data, source_address, prev_hash, hash`

// List returns the records that f selects, in sequence order.
func (s Store) List(ctx context.Context, f app.Filter) ([]domain.Record, error) {
	where := []string{"account_id = $1", "sequence > $2"}
	args := []any{f.AccountID, f.After}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.UpTo > 0 {
		add("sequence <= ?", f.UpTo)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Actor != "" {
		add("actor_id = ?", f.Actor)
	}
	if f.Target != "" {
		add("target_id = ?", f.Target)
	}
	if !f.Since.IsZero() {
		since := store.Time(f.Since)
		add("time >= ?", since)
		// No record before the first whose time_hwm reaches since has a
		// time that late: start there, not at record 1.
		add(`sequence >= COALESCE((SELECT h.sequence FROM audit_records h WHERE h.account_id = $1 AND h.time_hwm >= ?
			ORDER BY h.time_hwm, h.sequence LIMIT 1), 9223372036854775807)`, since)
	}
	var cutoff string
	if !f.Until.IsZero() {
		until := store.Time(f.Until)
		add("time < ?", until)
		// Past the last record whose time_hwm is before until, only late
		// records can be in the range (migration 0004).
		args = append(args, until)
		cutoff = `COALESCE((SELECT h.sequence FROM audit_records h WHERE h.account_id = $1 AND h.time_hwm < $` +
			strconv.Itoa(len(args)) + ` ORDER BY h.time_hwm DESC, h.sequence DESC LIMIT 1), 0)`
	}
	args = append(args, f.Limit)
	limit := `$` + strconv.Itoa(len(args))
	cond := strings.Join(where, " AND ")
	q := `SELECT ` + recordColumns + ` FROM audit_records WHERE ` + cond + ` ORDER BY sequence LIMIT ` + limit
	if cutoff != "" {
		q = `SELECT ` + recordColumns + ` FROM (
			SELECT * FROM (SELECT ` + recordColumns + ` FROM audit_records WHERE ` + cond + ` AND sequence <= ` + cutoff +
			` ORDER BY sequence LIMIT ` + limit + `) AS in_range
			UNION ALL
			SELECT * FROM (SELECT ` + recordColumns + ` FROM audit_records WHERE ` + cond + ` AND late = 1 AND sequence > ` + cutoff +
			` ORDER BY sequence LIMIT ` + limit + `) AS late_ones
		) AS u ORDER BY sequence LIMIT ` + limit
	}
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit records of %s: %w", f.AccountID, err)
	}
	defer rows.Close()
	out := []domain.Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit records of %s: %w", f.AccountID, err)
	}
	return out, nil
}

// Scan calls fn with every record of the account, in sequence order,
// without holding them all in memory.
func (s Store) Scan(ctx context.Context, accountID string, fn func(domain.Record) error) error {
	return s.ScanRange(ctx, accountID, 1, math.MaxInt64, fn)
}

// ScanRange calls fn with the account's records from sequence `from` to
// `to`, in order. Verification reads every record this way; a record's data
// is passed as stored, even when it is not JSON (its hash then fails).
//
// Each row comes as one text value, its fields length-prefixed
// (packedColumns): a million rows read about twice as fast as fourteen
// columns each, which is most of what verifying a chain costs.
func (s Store) ScanRange(ctx context.Context, accountID string, from, to int64, fn func(domain.Record) error) error {
	rows, err := s.DB.QueryContext(ctx, `SELECT sequence, `+packedColumns+` FROM audit_records
		WHERE account_id = $1 AND sequence >= $2 AND sequence <= $3 ORDER BY sequence`, accountID, from, to)
	if err != nil {
		return fmt.Errorf("scan audit records of %s: %w", accountID, err)
	}
	defer rows.Close()
	var packed string
	for rows.Next() {
		var r domain.Record
		if err := rows.Scan(&r.Sequence, &packed); err != nil {
			return fmt.Errorf("read audit record: %w", err)
		}
		if !unpack(packed, &r) {
			// Not what packedColumns writes: give the fields that read, with
			// the hash empty, so verification reports this record.
			r.Hash = ""
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan audit records of %s: %w", accountID, err)
	}
	return nil
}

// packedFields are the columns of a record, in the order packedColumns
// writes them and unpack reads them.
var packedFields = []string{"account_id", "id", "action", "actor_type", "actor_id", "target_type", "target_id",
	"time", "correlation_id", "data", "source_address", "prev_hash", "hash"}

// packedColumns is one text value holding every field as
// <octet length>:<bytes>, in packedFields order (same SQL on SQLite and
// PostgreSQL).
var packedColumns = func() string {
	parts := make([]string, len(packedFields))
	for i, f := range packedFields {
		parts[i] = "octet_length(" + f + ") || ':' || " + f
	}
	return strings.Join(parts, " || ")
}()

// unpack reads packedColumns into r.
func unpack(p string, r *domain.Record) bool {
	var at string
	dst := []*string{&r.AccountID, &r.ID, &r.Action, &r.Actor.Type, &r.Actor.ID, &r.Target.Type, &r.Target.ID,
		&at, &r.CorrelationID, nil, &r.SourceAddress, &r.PrevHash, &r.Hash}
	for i := range dst {
		colon := strings.IndexByte(p, ':')
		if colon <= 0 {
			return false
		}
		n, err := strconv.Atoi(p[:colon])
		if err != nil || n < 0 || colon+1+n > len(p) {
			return false
		}
		v := p[colon+1 : colon+1+n]
		p = p[colon+1+n:]
		if dst[i] == nil {
			r.Data = []byte(v)
			continue
		}
		*dst[i] = v
	}
	r.Time, _ = store.ParseTime(at)
	return p == ""
}

// RecordHash is the stored hash of one record; ok is false when there is no
// such record.
func (s Store) RecordHash(ctx context.Context, accountID string, seq int64) (string, bool, error) {
	var h string
	err := s.DB.QueryRowContext(ctx, `SELECT hash FROM audit_records WHERE account_id = $1 AND sequence = $2`, accountID, seq).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read audit record %s #%d: %w", accountID, seq, err)
	}
	return h, true, nil
}

// LastSequence is the highest sequence stored for the account, 0 for none.
func (s Store) LastSequence(ctx context.Context, accountID string) (int64, error) {
	var n sql.NullInt64
	if err := s.DB.QueryRowContext(ctx, `SELECT MAX(sequence) FROM audit_records WHERE account_id = $1`, accountID).Scan(&n); err != nil {
		return 0, fmt.Errorf("read audit records of %s: %w", accountID, err)
	}
	return n.Int64, nil
}

func scanRecord(rows *sql.Rows) (domain.Record, error) {
	r, err := scanRaw(rows)
	if err != nil {
		return domain.Record{}, err
	}
	data := string(r.Data)
	// A row whose data was overwritten with something that is not JSON
	// (tampering, corruption) is still listed — its data as a JSON string —
	// and fails verification, instead of failing the read.
	if !json.Valid(r.Data) {
		quoted, _ := json.Marshal(data)
		r.Data = quoted
	}
	return r, nil
}

// scanRaw reads a row as stored; an unreadable time becomes the zero time,
// which fails verification.
func scanRaw(rows *sql.Rows) (domain.Record, error) {
	var r domain.Record
	var at string
	var data []byte
	err := rows.Scan(&r.AccountID, &r.Sequence, &r.ID, &r.Action, &r.Actor.Type, &r.Actor.ID, &r.Target.Type, &r.Target.ID,
		&at, &r.CorrelationID, &data, &r.SourceAddress, &r.PrevHash, &r.Hash)
	if err != nil {
		return domain.Record{}, fmt.Errorf("read audit record: %w", err)
	}
	r.Time, _ = store.ParseTime(at)
	r.Data = data
	return r, nil
}
