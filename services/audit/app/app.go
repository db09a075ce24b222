// Package app holds the audit service's use cases: recording an event in
// its account's chain, listing records and verifying
// a chain.
package app

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"roster.dev/services/audit/domain"
)

// Chain is the stored chains, as appending needs them.
type Chain interface {
	// LockHead returns the head of the account's chain and holds it until
	// tx ends, so concurrent appends to one account queue.
	LockHead(ctx context.Context, tx *sql.Tx, accountID string) (domain.Head, error)
	// Has reports whether a record with this id exists.
	Has(ctx context.Context, tx *sql.Tx, recordID string) (bool, error)
	// Append stores r and makes it the head of its account's chain.
	Append(ctx context.Context, tx *sql.Tx, r domain.Record) error
}

// Stream is the public audit stream.
type Stream interface {
	// Publish queues r for the stream within tx: it is published once tx
	// commits, and never if tx rolls back.
	Publish(ctx context.Context, tx *sql.Tx, r domain.Record) error
}

// Records reads the stored chains.
type Records interface {
	List(ctx context.Context, f Filter) ([]domain.Record, error)
	// Head is the account's head; the zero Head when it has no record.
	Head(ctx context.Context, accountID string) (domain.Head, error)
	// Scan calls fn with each of the account's records in sequence order.
	Scan(ctx context.Context, accountID string, fn func(domain.Record) error) error
}

// App is the audit service's use cases.
type App struct {
	Chain   Chain
	Stream  Stream
	Records Records
}

// Record appends the record of one event to its account's chain and queues
// it for the public audit stream, all within tx, the transaction of the
// event's delivery. It reports false, changing nothing,
// when the event is already recorded.
func (a *App) Record(ctx context.Context, tx *sql.Tx, e domain.Entry) (domain.Record, bool, error) {
	r, err := domain.NewRecord(e)
	if err != nil {
		return domain.Record{}, false, err
	}
	// the head is read and locked before anything else, so the
	// sequence and prev_hash it gives cannot be taken by another append.
	head, err := a.Chain.LockHead(ctx, tx, r.AccountID)
	if err != nil {
		return domain.Record{}, false, err
	}
	// exactly one record per event. The bus's inbox already drops a
	// redelivered event; this covers an event that reaches the audit twice
	// some other way (a replay, a second consumer).
	dup, err := a.Chain.Has(ctx, tx, r.ID)
	if err != nil || dup {
		return r, false, err
	}
	if r, err = domain.Seal(r, head); err != nil {
		return domain.Record{}, false, err
	}
	if err := a.Chain.Append(ctx, tx, r); err != nil {
		return domain.Record{}, false, err
	}
	if err := a.Stream.Publish(ctx, tx, r); err != nil {
		return domain.Record{}, false, err
	}
	return r, true, nil
}

// Page sizes (api.md, "Lists").
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Filter selects one account's records. Zero fields select all.
type Filter struct {
	AccountID string
	Action    string
	// Actor and Target are ids.
	Actor  string
	Target string
	// Since is inclusive, Until exclusive.
	Since, Until time.Time
	// After is the cursor: only records with a greater sequence.
	After int64
	Limit int
}

// Page is one page of records, oldest first; Next is the cursor of the
// next page, 0 on the last one.
type Page struct {
	Records []domain.Record
	Next    int64
}

// List returns a page of an account's records in sequence order.
func (a *App) List(ctx context.Context, f Filter) (Page, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultLimit
	}
	f.Limit = min(f.Limit, MaxLimit)
	want := f.Limit
	f.Limit++ // one more tells whether a next page exists
	rs, err := a.Records.List(ctx, f)
	if err != nil {
		return Page{}, fmt.Errorf("list audit records: %w", err)
	}
	p := Page{Records: rs}
	if len(rs) > want {
		p.Records = rs[:want]
		p.Next = p.Records[want-1].Sequence
	}
	return p, nil
}

// Verification is the result of verifying one account's chain.
type Verification struct {
	OK bool `json:"ok"`
	// Records is how many records were checked.
	Records int64 `json:"records"`
	// FirstBadSequence is where the chain breaks; nil when OK.
	FirstBadSequence *int64 `json:"first_bad_sequence"`
}

// Verify recomputes an account's chain from its first record and compares
// its end with the head recorded at append time.
//
// It takes no lock, so appends go on meanwhile: the head is read first and
// the records up to it are checked against it; a record past that head is
// an append that committed since — or a record forged past the end of the
// chain, which a head read after the scan tells apart.
func (a *App) Verify(ctx context.Context, accountID string) (Verification, error) {
	before, err := a.Records.Head(ctx, accountID)
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s: %w", accountID, err)
	}
	v := domain.NewVerifier(accountID)
	var beyond int64
	err = a.Records.Scan(ctx, accountID, func(r domain.Record) error {
		if r.Sequence > before.Sequence {
			beyond = r.Sequence
			return nil
		}
		v.Next(r)
		return nil
	})
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s: %w", accountID, err)
	}
	v.End(before)
	bad, ok := v.FirstBad()
	if beyond > 0 {
		after, err := a.Records.Head(ctx, accountID)
		if err != nil {
			return Verification{}, fmt.Errorf("verify %s: %w", accountID, err)
		}
		// An append commits its record and the head together, so a record
		// the scan saw is covered by any head read after it.
		if beyond > after.Sequence && (ok || after.Sequence+1 < bad) {
			bad, ok = after.Sequence+1, false
		}
	}
	res := Verification{OK: ok, Records: v.Records()}
	if !ok {
		res.FirstBadSequence = &bad
	}
	return res, nil
}
