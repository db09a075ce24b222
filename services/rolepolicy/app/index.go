package app

import (
	"context"
	"database/sql"
	"fmt"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/idempotency"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

// The access index (issue 5, item 7: no database read on the check path).
//
// Access checks read access.Index, never the database. The index is built
// from the database at start (LoadIndex) and then kept current by the use
// cases themselves: every command that changes what a check reads — roles,
// assignments, technician states, sites, folders — changes the index as
// the last step of its transaction, while it holds the account's lock
// (Store.LockAccount). The next writer of the account waits for that lock,
// so changes reach the index in the order they commit.
//
// A change is made just before the commit, not after it: the event bus
// commits the handler's transaction itself and has no after-commit hook.
// When the commit then fails:
//   - an HTTP command sees it (write) and rebuilds the account's index from
//     the database;
//   - an event handler's event is redelivered and applied again — index
//     changes are "set" operations, so the index converges to what the
//     commit that finally succeeds wrote. Until then it is one event ahead
//     of the database, and identity's events are facts that already
//     happened. An event that never commits (dead-lettered) leaves the
//     account's index ahead until the next start or the account's next
//     failed HTTP command rebuilds it.

// LoadIndex rebuilds the whole access index from the database: at start,
// before the bus delivers events and the HTTP server takes requests.
func (a *App) LoadIndex(ctx context.Context) error {
	// The versions first: a change committed between the two reads makes
	// the states newer than their versions, which CatchUp rebuilds again,
	// never the other way round (replicas.go).
	vs, err := a.store.IndexVersions(ctx, nil, "")
	if err != nil {
		return fmt.Errorf("load access index: %w", err)
	}
	states, err := a.store.IndexStates(ctx, nil, "")
	if err != nil {
		return fmt.Errorf("load access index: %w", err)
	}
	if err := a.index.InstallAll(states); err != nil {
		return fmt.Errorf("load access index: %w", err)
	}
	for id, v := range vs {
		a.versions.saw(id, v)
	}
	techs := 0
	for _, st := range states {
		techs += len(st.Technicians)
	}
	a.log.InfoContext(ctx, "access index loaded", "accounts", len(states), "technicians", techs)
	return nil
}

// resync rebuilds one account's index from the database, holding the
// account's lock so that no change of another writer slips in between the
// read and the install.
func (a *App) resync(ctx context.Context, accountID string) {
	if err := a.rebuild(ctx, accountID); err != nil {
		a.log.ErrorContext(ctx, "access index: account not resynchronised; it is rebuilt at the next start",
			"account_id", accountID, "err", err)
		return
	}
	a.log.WarnContext(ctx, "access index: account resynchronised after a transaction that did not commit", "account_id", accountID)
}

// write runs an HTTP command in one transaction under its Idempotency-Key
// (req). fn returns the answer and the index changes to make (nil for
// none); write makes them as the last step of fn's attempt, after
// everything else in it succeeded. When the transaction then does not
// commit — it failed, or a concurrent request with the same key won and
// its answer is replayed — the account's index is rebuilt from the
// database.
func (a *App) write(ctx context.Context, accountID string, req idempotency.Request,
	fn func(tx *sql.Tx) (status int, body any, change func(*access.Index), err error)) (idempotency.Result, error) {
	touched := false
	var version int64
	res, err := idempotency.Do(ctx, a.db, req, func(tx *sql.Tx) (int, any, error) {
		status, body, change, err := fn(tx)
		if err == nil && change != nil {
			if version, err = a.store.BumpIndexVersion(ctx, tx, accountID); err != nil {
				return 0, nil, err
			}
			change(a.index)
			touched = true
		}
		return status, body, err
	})
	if touched && (err != nil || res.Replayed) {
		a.resync(context.WithoutCancel(ctx), accountID)
	} else if touched {
		a.committed(accountID, version)
	}
	return res, err
}

// indexed reports an index change that found no account: this replica's
// index missed the account's setup (another replica applied it, and its
// broadcast has not arrived yet). The database is right; once the
// handler's transaction committed, the account is rebuilt from it — the
// version the handler bumped must not count as seen by an index that
// lacks the account, or the catch-up would never rebuild it (found by
// TestReplicasCatchUpWithoutBroadcast once consumers applied batches).
func (a *App) indexed(ctx context.Context, ok bool, accountID, what string) {
	if ok {
		return
	}
	if eventbus.OnCommit(ctx, func() {
		if err := a.rebuild(context.WithoutCancel(ctx), accountID); err != nil {
			a.log.ErrorContext(ctx, "access index: account not rebuilt; the catch-up or the next start does it",
				"account_id", accountID, "change", what, "err", err)
		}
	}) {
		return
	}
	a.log.ErrorContext(ctx, "access index does not know the account; the change reaches it at the next start",
		"account_id", accountID, "change", what)
}

// CheckAccess is R-7 from the index: no database read, no allocation.
func (a *App) CheckAccess(accountID string, q access.Request) access.Decision {
	return a.index.Check(accountID, q)
}

// EffectiveAccess is a technician's every permission per site with why,
// from the index.
func (a *App) EffectiveAccess(accountID, technicianID string) (access.Explanation, error) {
	e := a.index.Explain(accountID, technicianID)
	switch e.Code {
	case access.UnknownAccount:
		return e, fmt.Errorf("account %s: %w", accountID, domain.ErrAccountNotFound)
	case access.UnknownTechnician:
		return e, fmt.Errorf("technician %s: %w", technicianID, domain.ErrTechnicianNotFound)
	}
	return e, nil
}

// RecordSite is identity's SiteCreated: a site a role may be limited to
// and an access check may name. A site of an account not set
// up yet fails, to be redelivered once AccountCreated is applied.
func (a *App) RecordSite(ctx context.Context, tx *sql.Tx, s domain.Site) error {
	if _, err := a.store.LockAccount(ctx, tx, s.AccountID); err != nil {
		return fmt.Errorf("site %s: %w", s.ID, err)
	}
	s.CreatedAt = a.eventTime(s.CreatedAt)
	first, err := a.store.AddSite(ctx, tx, s)
	if err != nil {
		return err
	}
	if first {
		if err := a.changed(ctx, tx, s.AccountID); err != nil {
			return err
		}
		a.indexed(ctx, a.index.PutSite(s), s.AccountID, "site "+s.ID)
	}
	return nil
}

// RecordFolder is identity's FolderCreated: a device folder a role may
// exclude. A folder of a site not known yet fails, to be redelivered
// once SiteCreated is applied.
func (a *App) RecordFolder(ctx context.Context, tx *sql.Tx, f domain.Folder) error {
	if _, err := a.store.LockAccount(ctx, tx, f.AccountID); err != nil {
		return fmt.Errorf("folder %s: %w", f.ID, err)
	}
	f.CreatedAt = a.eventTime(f.CreatedAt)
	first, err := a.store.AddFolder(ctx, tx, f)
	if err != nil {
		return err
	}
	if first {
		if err := a.changed(ctx, tx, f.AccountID); err != nil {
			return err
		}
		a.indexed(ctx, a.index.PutFolder(f), f.AccountID, "folder "+f.ID)
	}
	return nil
}
