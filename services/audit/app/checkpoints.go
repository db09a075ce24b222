package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"roster.dev/services/audit/domain"
)

// CheckpointPolicy says when a chain is signed: after Every records
// since its last checkpoint, in the append's transaction, and at the latest
// Interval after a record that no checkpoint covers yet.
type CheckpointPolicy struct {
	Every    int64
	Interval time.Duration
}

// DefaultCheckpoints: every 1,000 records or 60 seconds.
var DefaultCheckpoints = CheckpointPolicy{Every: 1000, Interval: time.Minute}

// Checkpoints stores signed checkpoints and the keys that signed them.
type Checkpoints interface {
	// AddCheckpoint stores c and marks it as its chain's last, in tx, which
	// holds the chain's head.
	AddCheckpoint(ctx context.Context, tx *sql.Tx, c domain.Checkpoint) error
	// ListCheckpoints returns the account's checkpoints with a sequence in
	// (after, upTo], in order, at most limit.
	ListCheckpoints(ctx context.Context, accountID string, after, upTo int64, limit int) ([]domain.Checkpoint, error)
	// CheckpointAtOrBefore is the account's last checkpoint at or before
	// sequence seq; ok false when there is none.
	CheckpointAtOrBefore(ctx context.Context, accountID string, seq int64) (domain.Checkpoint, bool, error)
	// Unsigned lists accounts with records after their last checkpoint and
	// no checkpoint since before.
	Unsigned(ctx context.Context, before time.Time, limit int) ([]string, error)
	// AddKey records a signing key's public half (idempotent).
	AddKey(ctx context.Context, k domain.PublicKey, at time.Time) error
	// Keys are every key that signed checkpoints, oldest first.
	Keys(ctx context.Context) ([]Key, error)
}

// Key is a public checkpoint key as served at GET /v1/audit/keys.
type Key struct {
	domain.PublicKey
	CreatedAt time.Time
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// sign stores the checkpoint of head, in tx, which holds the chain's head.
func (a *App) sign(ctx context.Context, tx *sql.Tx, accountID string, head domain.Head) (domain.Checkpoint, error) {
	if a.Signer == nil {
		return domain.Checkpoint{}, errors.New("audit: no signing key")
	}
	c, err := a.Signer.Sign(accountID, head, a.now())
	if err != nil {
		return domain.Checkpoint{}, err
	}
	if err := a.Checkpoints.AddCheckpoint(ctx, tx, c); err != nil {
		return domain.Checkpoint{}, fmt.Errorf("checkpoint %s #%d: %w", accountID, head.Sequence, err)
	}
	return c, nil
}

// Checkpoint signs the account's current head, unless its last checkpoint
// already covers it, and returns the head that is now signed.
func (a *App) Checkpoint(ctx context.Context, accountID string) (domain.Head, error) {
	var head domain.Head
	err := a.InTx(ctx, func(tx *sql.Tx) error {
		h, signed, err := a.Chain.LockHead(ctx, tx, accountID)
		if err != nil {
			return err
		}
		head = h
		if h.Sequence == 0 || h.Sequence == signed {
			return nil
		}
		_, err = a.sign(ctx, tx, accountID, h)
		return err
	})
	return head, err
}

// CheckpointDue signs every chain with records that no checkpoint has
// covered for the policy's interval; it reports how many it signed. Several
// audit processes may run it at once: each chain's head lock makes one of
// them sign and the others find nothing to do.
func (a *App) CheckpointDue(ctx context.Context) (int, error) {
	if a.Policy.Interval <= 0 {
		return 0, nil
	}
	n := 0
	for {
		accounts, err := a.Checkpoints.Unsigned(ctx, a.now().Add(-a.Policy.Interval), 100)
		if err != nil || len(accounts) == 0 {
			return n, err
		}
		for _, acc := range accounts {
			if _, err := a.Checkpoint(ctx, acc); err != nil {
				return n, err
			}
			n++
		}
		if len(accounts) < 100 {
			return n, nil
		}
	}
}

// RunCheckpoints calls CheckpointDue until ctx ends, a few times per
// interval.
func (a *App) RunCheckpoints(ctx context.Context, report func(error)) {
	if a.Policy.Interval <= 0 {
		return
	}
	tick := time.NewTicker(max(a.Policy.Interval/4, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := a.CheckpointDue(ctx); err != nil && ctx.Err() == nil && report != nil {
				report(err)
			}
		}
	}
}

// Keys are the public keys of every checkpoint signer.
func (a *App) Keys(ctx context.Context) ([]Key, error) { return a.Checkpoints.Keys(ctx) }

// checkpointCursor walks an account's checkpoints in sequence order, a page
// at a time, beside a scan of its records.
type checkpointCursor struct {
	app       *App
	accountID string
	upTo      int64
	page      []domain.Checkpoint
	after     int64
	done      bool
}

// next returns the next checkpoint, ok false after the last.
func (c *checkpointCursor) next(ctx context.Context) (domain.Checkpoint, bool, error) {
	if c.app.Checkpoints == nil {
		c.done = true
	}
	if len(c.page) == 0 && !c.done {
		page, err := c.app.Checkpoints.ListCheckpoints(ctx, c.accountID, c.after, c.upTo, 1000)
		if err != nil {
			return domain.Checkpoint{}, false, err
		}
		c.page, c.done = page, len(page) < 1000
		if len(page) > 0 {
			c.after = page[len(page)-1].Sequence
		}
	}
	if len(c.page) == 0 {
		return domain.Checkpoint{}, false, nil
	}
	cp := c.page[0]
	c.page = c.page[1:]
	return cp, true, nil
}
