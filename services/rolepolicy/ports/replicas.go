package ports

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/services/rolepolicy/app"
)

// IndexSubject is where a rolepolicy replica tells the others that it
// committed a change of an account's access index: core NATS (no stream),
// body the account id, header ReplicaHeader the sender. Every replica
// subscribes without a queue group, so each hears every change.
const IndexSubject = "roster.internal.rolepolicy.index"

// ReplicaHeader names the replica that sent an IndexSubject message; a
// replica ignores its own.
const ReplicaHeader = "Roster-Replica"

// refreshTimeout bounds one rebuild triggered by a message; a rebuild that
// fails is left to the next CatchUp.
const refreshTimeout = 10 * time.Second

// ReplicateIndex keeps this replica's access index in step with the other
// replicas' changes (app/replicas.go): it broadcasts the accounts this
// replica changes and rebuilds the accounts the others announce.
func ReplicateIndex(nc *nats.Conn, a *app.App, log *slog.Logger) (*nats.Subscription, error) {
	self := eventbus.NewID()
	sub, err := nc.Subscribe(IndexSubject, func(m *nats.Msg) {
		if m.Header.Get(ReplicaHeader) == self {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		if err := a.Refresh(ctx, string(m.Data)); err != nil {
			log.WarnContext(ctx, "access index: announced change not applied; the next catch-up applies it",
				"account_id", string(m.Data), "err", err)
		}
	})
	if err != nil {
		return nil, err
	}
	a.SetNotifier(func(accountID string) {
		m := nats.NewMsg(IndexSubject)
		m.Header.Set(ReplicaHeader, self)
		m.Data = []byte(accountID)
		// Best effort: a message lost here is made up by CatchUp.
		if err := nc.PublishMsg(m); err != nil {
			log.Warn("access index: change not announced to the other replicas; their catch-up applies it",
				"account_id", accountID, "err", err)
		}
	})
	return sub, nil
}

// CatchUpEvery runs a.CatchUp every interval until ctx ends: the bound on
// how long a replica that missed an announcement answers from an older
// index.
func CatchUpEvery(ctx context.Context, a *app.App, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := a.CatchUp(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "access index: catch-up failed; retried at the next tick", "err", err)
		}
		if n > 0 {
			log.DebugContext(ctx, "access index: accounts rebuilt from the database", "accounts", n)
		}
	}
}
