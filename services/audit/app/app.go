// Package app holds the audit service's use cases: recording an event in
// its account's chain, listing records and verifying
// a chain.
package app

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"roster.dev/services/audit/domain"
)

// Chain is the stored chains, as appending needs them.
type Chain interface {
	// LockHead returns the head of the account's chain and holds it until
	// tx ends, so concurrent appends to one account queue; signed is the
	// sequence of its last checkpoint.
	LockHead(ctx context.Context, tx *sql.Tx, accountID string) (head domain.Head, signed int64, err error)
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
	// ScanRange calls fn with the account's records from sequence `from` to
	// `to`, in order.
	ScanRange(ctx context.Context, accountID string, from, to int64, fn func(domain.Record) error) error
	// RecordHash is the stored hash of record seq; ok false when missing.
	RecordHash(ctx context.Context, accountID string, seq int64) (hash string, ok bool, err error)
	// LastSequence is the highest stored sequence, 0 for none.
	LastSequence(ctx context.Context, accountID string) (int64, error)
}

// App is the audit service's use cases.
type App struct {
	Chain   Chain
	Stream  Stream
	Records Records
	// Checkpoints and Signer sign the chains; Policy says when.
	Checkpoints Checkpoints
	Signer      *domain.Signer
	Policy      CheckpointPolicy
	// InTx runs fn in a transaction of the audit's database.
	InTx func(ctx context.Context, fn func(*sql.Tx) error) error
	Now  func() time.Time
	// VerifyParts is how many parts of a long chain Verify checks at once
	// (default: one per core), each at least MinVerifyPart records (default
	// 50,000).
	VerifyParts, MinVerifyPart int64
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
	head, signed, err := a.Chain.LockHead(ctx, tx, r.AccountID)
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
	if a.Policy.Every > 0 && r.Sequence-signed >= a.Policy.Every {
		if _, err := a.sign(ctx, tx, r.AccountID, domain.Head{Sequence: r.Sequence, Hash: r.Hash}); err != nil {
			return domain.Record{}, false, err
		}
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
	// After is the cursor: only records with a greater sequence; UpTo, when
	// set, the last sequence.
	After, UpTo int64
	Limit       int
}

// Whole reports whether f selects an account's whole chain (no filter, no
// cursor): such an export carries its checkpoints and verifies offline.
func (f Filter) Whole() bool {
	return f.Action == "" && f.Actor == "" && f.Target == "" && f.Since.IsZero() && f.Until.IsZero() && f.After == 0
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
	// Reason says what is wrong at FirstBadSequence; absent when OK.
	Reason string `json:"reason,omitempty"`
	// Checkpoints is how many signed checkpoints matched the chain, and
	// SignedThrough the last sequence they cover: records after it are
	// chained but not yet signed.
	Checkpoints   int64 `json:"checkpoints"`
	SignedThrough int64 `json:"signed_through"`
}

// ChainCheck verifies one account's chain record by record, checking each
// signed checkpoint as the chain reaches it. The service's verify and
// the offline verification of an export share it.
type ChainCheck struct {
	v        *domain.Verifier
	keys     []domain.PublicKey
	pending  []domain.Checkpoint
	lastGood int64
	verified int64
}

// NewChainCheck starts at the beginning of accountID's chain; keys verify
// checkpoint signatures.
func NewChainCheck(accountID string, keys []domain.PublicKey) *ChainCheck {
	return &ChainCheck{v: domain.NewVerifier(accountID), keys: keys}
}

// resumeChainCheck starts after from, a record that a signed checkpoint
// covers (or the start of the chain), whose stored hash is from.Hash.
func resumeChainCheck(accountID string, keys []domain.PublicKey, from domain.Head) *ChainCheck {
	return &ChainCheck{v: domain.ResumeVerifier(accountID, from), keys: keys, lastGood: from.Sequence}
}

// Record checks the next record, then the queued checkpoint of its
// sequence.
func (c *ChainCheck) Record(r domain.Record) {
	if !c.v.Next(r) {
		return
	}
	for len(c.pending) > 0 && c.pending[0].Sequence <= r.Sequence {
		cp := c.pending[0]
		c.pending = c.pending[1:]
		if !c.check(cp) {
			return
		}
	}
}

// Checkpoint gives the checkpoint of a record: checked at once when that
// record is the last one checked, else queued for it. Checkpoints come in
// sequence order, before or right after their record.
func (c *ChainCheck) Checkpoint(cp domain.Checkpoint) {
	if _, ok := c.v.FirstBad(); !ok {
		return
	}
	if cp.Sequence > c.v.Head().Sequence {
		c.pending = append(c.pending, cp)
		return
	}
	c.check(cp)
}

func (c *ChainCheck) check(cp domain.Checkpoint) bool {
	if cp.Sequence != c.v.Head().Sequence {
		c.v.Fail(c.lastGood+1, fmt.Sprintf("the checkpoint of record %d is out of place", cp.Sequence))
		return false
	}
	if err := domain.CheckSignature(cp, c.keys); err != nil {
		c.v.Fail(c.lastGood+1, fmt.Sprintf("the checkpoint of record %d cannot be trusted: %v", cp.Sequence, err))
		return false
	}
	if !c.v.Checkpoint(cp, c.lastGood) {
		return false
	}
	c.lastGood = cp.Sequence
	c.verified++
	return true
}

// End checks the chain reached head, when a head is known (the store's),
// and that no checkpoint is left unmatched, then reports.
func (c *ChainCheck) End(head *domain.Head) Verification {
	if head != nil {
		c.v.End(*head)
	}
	if _, ok := c.v.FirstBad(); ok && len(c.pending) > 0 {
		cp := c.pending[0]
		end := c.v.Head().Sequence
		c.v.Fail(end+1, fmt.Sprintf("the chain ends at record %d but a checkpoint was signed at record %d: records were removed from the end", end, cp.Sequence))
	}
	res := Verification{Records: c.v.Records(), Checkpoints: c.verified, SignedThrough: c.lastGood}
	bad, ok := c.v.FirstBad()
	res.OK = ok
	if !ok {
		res.FirstBadSequence, res.Reason = &bad, c.v.Reason()
	}
	return res
}

// Verify recomputes an account's chain from its first record, checks every
// signed checkpoint on the way, and compares its end with the head recorded
// at append time.
//
// A long chain is checked in parts at once, each starting right after a
// signed checkpoint from the stored hash of that checkpoint's record — the
// part before checks that hash — so the parts together check exactly what
// one pass would, and the first bad sequence is the same.
//
// It takes no lock, so appends go on meanwhile: the head is read first and
// the records up to it are checked against it; a record past that head is
// an append that committed since — or a record forged past the end of the
// chain, which a head read afterwards tells apart.
func (a *App) Verify(ctx context.Context, accountID string) (Verification, error) {
	fail := func(err error) (Verification, error) {
		return Verification{}, fmt.Errorf("verify %s: %w", accountID, err)
	}
	before, err := a.Records.Head(ctx, accountID)
	if err != nil {
		return fail(err)
	}
	keys, err := a.publicKeys(ctx)
	if err != nil {
		return fail(err)
	}
	starts, err := a.partStarts(ctx, accountID, before.Sequence)
	if err != nil {
		return fail(err)
	}
	parts := make([]Verification, len(starts))
	g, gctx := errgroup.WithContext(ctx)
	for i, from := range starts {
		to := before.Sequence
		if i+1 < len(starts) {
			to = starts[i+1] - 1
		}
		g.Go(func() error {
			v, err := a.verifyPart(gctx, accountID, keys, from, to, before)
			parts[i] = v
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}
	res := Verification{OK: true}
	for _, p := range parts {
		res.Records += p.Records
		res.Checkpoints += p.Checkpoints
		if !p.OK && res.OK {
			res.OK, res.FirstBadSequence, res.Reason = false, p.FirstBadSequence, p.Reason
		}
		res.SignedThrough = max(res.SignedThrough, p.SignedThrough)
	}
	if !res.OK {
		res.SignedThrough = 0
		for _, p := range parts {
			if p.OK {
				res.SignedThrough = p.SignedThrough
				continue
			}
			if p.SignedThrough < *res.FirstBadSequence {
				res.SignedThrough = max(res.SignedThrough, p.SignedThrough)
			}
			break
		}
	}

	// A record or a checkpoint past the head read first is one appended
	// since — or one left behind when records were cut from the end and the
	// head moved back, which a head read now tells apart.
	last, err := a.Records.LastSequence(ctx, accountID)
	if err != nil {
		return fail(err)
	}
	var late []domain.Checkpoint
	if a.Checkpoints != nil {
		if late, err = a.Checkpoints.ListCheckpoints(ctx, accountID, before.Sequence, math.MaxInt64, 1); err != nil {
			return fail(err)
		}
	}
	if last > before.Sequence || len(late) > 0 {
		after, err := a.Records.Head(ctx, accountID)
		if err != nil {
			return fail(err)
		}
		bad := after.Sequence + 1
		earlier := res.OK || bad < *res.FirstBadSequence
		switch {
		case last > after.Sequence && earlier:
			res.OK, res.FirstBadSequence = false, &bad
			res.Reason = fmt.Sprintf("record %d is past the chain's recorded end (%d)", last, after.Sequence)
		case len(late) > 0 && late[0].Sequence > after.Sequence && earlier:
			res.OK, res.FirstBadSequence = false, &bad
			res.Reason = fmt.Sprintf("the chain ends at record %d but a checkpoint was signed at record %d: records were removed from the end",
				after.Sequence, late[0].Sequence)
		}
	}
	return res, nil
}

// partStarts are the first sequences of the parts Verify checks at once:
// 1, then one record past a signed checkpoint near each share of the chain.
func (a *App) partStarts(ctx context.Context, accountID string, n int64) ([]int64, error) {
	starts := []int64{1}
	parts, minPart := a.VerifyParts, a.MinVerifyPart
	if parts <= 0 {
		parts = int64(runtime.GOMAXPROCS(0))
	}
	if minPart <= 0 {
		minPart = 50_000
	}
	if a.Checkpoints == nil || parts < 2 || n < 2*minPart {
		return starts, nil
	}
	for i := int64(1); i < parts; i++ {
		cp, ok, err := a.Checkpoints.CheckpointAtOrBefore(ctx, accountID, n*i/parts)
		if err != nil {
			return nil, err
		}
		if ok && cp.Sequence+1 > starts[len(starts)-1]+minPart/2 {
			starts = append(starts, cp.Sequence+1)
		}
	}
	return starts, nil
}

// verifyPart checks records from..to: from the start of the chain when from
// is 1, else from the stored hash of record from-1, which a checkpoint
// covers; the last part also checks the chain ends at head.
func (a *App) verifyPart(ctx context.Context, accountID string, keys []domain.PublicKey, from, to int64, head domain.Head) (Verification, error) {
	start := domain.Head{}
	if from > 1 {
		h, _, err := a.Records.RecordHash(ctx, accountID, from-1)
		if err != nil {
			return Verification{}, err
		}
		start = domain.Head{Sequence: from - 1, Hash: h}
	}
	check := resumeChainCheck(accountID, keys, start)
	cps := &checkpointCursor{app: a, accountID: accountID, after: from - 1, upTo: to}
	err := a.Records.ScanRange(ctx, accountID, from, to, func(r domain.Record) error {
		for len(check.pending) == 0 || check.pending[len(check.pending)-1].Sequence < r.Sequence {
			cp, ok, err := cps.next(ctx)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			check.Checkpoint(cp)
		}
		check.Record(r)
		return nil
	})
	if err != nil {
		return Verification{}, err
	}
	for {
		cp, ok, err := cps.next(ctx)
		if err != nil {
			return Verification{}, err
		}
		if !ok {
			break
		}
		check.Checkpoint(cp)
	}
	if to == head.Sequence {
		return check.End(&head), nil
	}
	if got := check.v.Head().Sequence; got < to {
		check.v.Fail(got+1, fmt.Sprintf("record %d is missing", got+1))
	}
	return check.End(nil), nil
}

func (a *App) publicKeys(ctx context.Context) ([]domain.PublicKey, error) {
	if a.Checkpoints == nil {
		return nil, nil
	}
	ks, err := a.Checkpoints.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]domain.PublicKey, len(ks))
	for i, k := range ks {
		out[i] = k.PublicKey
	}
	return out, nil
}
