package eventbus

import (
	"context"
	"database/sql"
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"

	"roster.dev/pkg/store"
)

// Per-technician versions (issue 18, item 5; docs/reliability.md). Times
// are not an order: two changes of one technician can share a timestamp,
// and a redelivery after a crash or a failure can bring an older event
// after a newer one. So every event about a technician (one with a
// technician_id) carries the technician's version in
// EventMeta.aggregate_version: the producer counts each technician's events
// in roster_aggregate_versions, in the transaction that emits each one
// (Emit), so the versions follow the commits. A handler registered with
// OnLatest records the last version it applied per technician in
// roster_applied_versions, in its own transaction, and ignores an event of
// that technician that is not newer: a disable delivered after the enable
// that followed it leaves the technician enabled.

// initVersions creates the tables of both sides.
func initVersions(ctx context.Context, db *store.DB) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS roster_aggregate_versions (
			aggregate TEXT PRIMARY KEY,
			version BIGINT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS roster_applied_versions (
			consumer TEXT NOT NULL,
			aggregate TEXT NOT NULL,
			version BIGINT NOT NULL,
			PRIMARY KEY (consumer, aggregate)
		)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil && !store.IsUniqueViolation(err) {
			return fmt.Errorf("eventbus: create version table: %w", err)
		}
	}
	return nil
}

// aggregateOf is the technician an event is about — "account/technician"
// from its meta's account and its technician_id field — or "" for an
// event about no technician.
func aggregateOf(ev Event) string {
	m := ev.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("technician_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		return ""
	}
	id := m.Get(fd).String()
	if id == "" {
		return ""
	}
	return ev.GetMeta().GetAccountId() + "/" + id
}

// version stamps ev, an event about a technician emitted within tx, with
// the technician's next version. An event that carries a version already
// (emitted again, or by a retried attempt of its transaction, whose count
// rolled back) keeps it, and the count is brought up to it.
func version(ctx context.Context, tx *sql.Tx, ev Event) error {
	meta := ev.GetMeta()
	agg := aggregateOf(ev)
	if agg == "" {
		return nil
	}
	if v := int64(meta.GetAggregateVersion()); v != 0 {
		_, err := tx.ExecContext(ctx, `INSERT INTO roster_aggregate_versions (aggregate, version) VALUES ($1, $2)
			ON CONFLICT (aggregate) DO UPDATE SET version = CASE WHEN roster_aggregate_versions.version < $2
				THEN $2 ELSE roster_aggregate_versions.version END`, agg, v)
		if err != nil {
			return fmt.Errorf("eventbus: version of %s: %w", agg, err)
		}
		return nil
	}
	var v int64
	err := tx.QueryRowContext(ctx, `INSERT INTO roster_aggregate_versions (aggregate, version) VALUES ($1, 1)
		ON CONFLICT (aggregate) DO UPDATE SET version = roster_aggregate_versions.version + 1
		RETURNING version`, agg).Scan(&v)
	if err != nil {
		return fmt.Errorf("eventbus: version of %s: %w", agg, err)
	}
	meta.AggregateVersion = uint64(v)
	return nil
}

// OnLatest registers fn for events of type E as On does, for a handler
// that sets a technician's state to what the event says (enabled,
// disabled, seated): an event of a technician whose version is not newer
// than the last one an OnLatest handler of this consumer applied is
// ignored (and recorded in the inbox, as applied). Events without a
// version (0: before versions existed) are always applied.
func OnLatest[E Event](b *Bus, fn Handler[E]) {
	var zero E
	consumer := ConsumerName(b.cfg.Service, ServiceOf(zero.ProtoReflect().Descriptor().FullName()))
	On(b, func(ctx context.Context, tx *sql.Tx, ev E) error {
		newer, err := advance(ctx, tx, consumer, ev)
		if err != nil || !newer {
			if err == nil {
				b.log.InfoContext(ctx, "event older than one applied; ignored", "consumer", consumer,
					"event_id", ev.GetMeta().GetEventId(), "type", ev.ProtoReflect().Descriptor().FullName(),
					"aggregate", aggregateOf(ev), "version", ev.GetMeta().GetAggregateVersion())
			}
			return err
		}
		return fn(ctx, tx, ev)
	})
}

// advance records, within tx, that consumer applies ev's version of its
// technician; it reports false when consumer applied that version or a
// later one already.
func advance(ctx context.Context, tx *sql.Tx, consumer string, ev Event) (bool, error) {
	v := int64(ev.GetMeta().GetAggregateVersion())
	agg := aggregateOf(ev)
	if v == 0 || agg == "" {
		return true, nil
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO roster_applied_versions (consumer, aggregate, version) VALUES ($1, $2, $3)
		ON CONFLICT (consumer, aggregate) DO UPDATE SET version = $3 WHERE roster_applied_versions.version < $3`,
		consumer, agg, v)
	if err != nil {
		return false, fmt.Errorf("eventbus: applied version of %s: %w", agg, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("eventbus: applied version of %s: %w", agg, err)
	}
	return n == 1, nil
}
