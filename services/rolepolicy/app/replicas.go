package app

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"roster.dev/pkg/eventbus"
)

// Replicas (issue 13). Several rolepolicy processes may run against one
// database and one NATS: the bus's durable consumers hand each identity
// event to one of them, and HTTP commands land on any of them, but each
// keeps its own in-memory access index. What one replica changes, the
// others learn in two ways:
//
//   - Every transaction that changes an account's index adds one to the
//     account's index version (accounts.index_version) while it holds the
//     account's row. Once it committed, the replica records the version as
//     its own and calls the notifier (ports.ReplicateIndex broadcasts the
//     account id on core NATS to every replica).
//   - A replica told of an account (Refresh), and every replica every poll
//     interval for every account (CatchUp), compares the database's
//     version with the one its index was built from and rebuilds the
//     account from the database when it moved on — under the account's
//     lock, so no writer commits between the read and the install.
//
// The broadcast is the fast path (milliseconds); it is core NATS and may be
// missed (a replica reconnecting). CatchUp is the bound: no replica answers
// from an index older than one poll interval plus one rebuild. The version
// lives in the database, not in the message, so a lost, late or doubled
// message changes nothing but when the rebuild happens.

// versions are the index versions the replica's index was built from, per
// account.
type versions struct {
	mu     sync.Mutex
	known  map[string]int64
	notify func(accountID string)
}

// saw records that the index holds version v of the account (or a later
// one); it reports whether v was news.
func (vs *versions) saw(accountID string, v int64) bool {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.known[accountID] >= v {
		return false
	}
	vs.known[accountID] = v
	return true
}

func (vs *versions) current(accountID string, v int64) bool {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	got, ok := vs.known[accountID]
	return ok && got >= v
}

// SetNotifier sets what tells the other replicas that the replica
// committed a change of an account's index (ports.ReplicateIndex). Set it
// before the bus and the HTTP server start.
func (a *App) SetNotifier(fn func(accountID string)) {
	a.versions.mu.Lock()
	defer a.versions.mu.Unlock()
	a.versions.notify = fn
}

// changed bumps the account's index version within tx, the transaction of
// an event handler that changes the index, and has the replica record it
// and tell the others once tx committed (eventbus.OnCommit). Outside a
// handler it only bumps: CatchUp then rebuilds the account once.
func (a *App) changed(ctx context.Context, tx *sql.Tx, accountID string) error {
	v, err := a.store.BumpIndexVersion(ctx, tx, accountID)
	if err != nil {
		return err
	}
	eventbus.OnCommit(ctx, func() { a.committed(accountID, v) })
	return nil
}

// committed records version v of the account, which this replica's index
// already holds, and tells the other replicas.
func (a *App) committed(accountID string, v int64) {
	a.versions.saw(accountID, v)
	a.versions.mu.Lock()
	notify := a.versions.notify
	a.versions.mu.Unlock()
	if notify != nil {
		notify(accountID)
	}
}

// Refresh rebuilds one account's index when the database holds a newer
// version than the one the index was built from (another replica's
// change). An account unknown to the database is left alone.
func (a *App) Refresh(ctx context.Context, accountID string) error {
	vs, err := a.store.IndexVersions(ctx, nil, accountID)
	if err != nil {
		return fmt.Errorf("refresh index of %s: %w", accountID, err)
	}
	v, ok := vs[accountID]
	if !ok || a.versions.current(accountID, v) {
		return nil
	}
	return a.rebuild(ctx, accountID)
}

// CatchUp rebuilds every account whose index version in the database is
// not the one the index was built from: the bound on how stale a replica's
// index can be when it missed a broadcast. It returns how many accounts it
// rebuilt.
func (a *App) CatchUp(ctx context.Context) (int, error) {
	vs, err := a.store.IndexVersions(ctx, nil, "")
	if err != nil {
		return 0, fmt.Errorf("catch up index: %w", err)
	}
	n := 0
	for id, v := range vs {
		if a.versions.current(id, v) {
			continue
		}
		if err := a.rebuild(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// rebuild reads one account's state and version from the database holding
// the account's lock, and installs it.
func (a *App) rebuild(ctx context.Context, accountID string) error {
	err := a.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := a.store.LockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		vs, err := a.store.IndexVersions(ctx, tx, accountID)
		if err != nil {
			return err
		}
		states, err := a.store.IndexStates(ctx, tx, accountID)
		if err != nil {
			return err
		}
		for _, st := range states {
			if err := a.index.Install(st); err != nil {
				return err
			}
		}
		a.versions.saw(accountID, vs[accountID])
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild index of %s: %w", accountID, err)
	}
	return nil
}
