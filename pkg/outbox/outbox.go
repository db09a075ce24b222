// Package outbox is the transactional outbox: a service writes its outgoing
// events into its own database in the same transaction as the state change
// (Add), and a relay forwards them to JetStream afterwards (Relay).
//
// Both halves are watermill's: watermill-sql's publisher and subscriber over
// the table, and watermill's forwarder, which wraps each message in an
// envelope naming its destination subject and publishes it to NATS once the
// row is read. watermill-sql ships the queue schema for PostgreSQL; the
// SQLite schema and offsets adapters in sqlite.go are ours, behind the same
// interfaces.
//
// Guarantees (docs/reliability.md): a row is deleted only after
// JetStream acknowledged the publish, in the relay's own transaction, so a
// crash at any instant leads to the row being sent again, never to it being
// lost; the stream's duplicate window (Nats-Msg-Id = event id) and every
// consumer's inbox drop the second copy.
package outbox

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"

	"roster.dev/pkg/store"
)

// Topic is the watermill-sql topic of the outbox; its table is roster_outbox.
const Topic = "outbox"

const table = "roster_outbox"

func tableName(string) string { return table }

// Outbox is one service's outbox table.
type Outbox struct {
	db      *store.DB
	schema  wsql.SchemaAdapter
	offsets wsql.OffsetsAdapter
	logger  watermill.LoggerAdapter
	// PollInterval is how often the relay looks for new rows when idle.
	PollInterval time.Duration
}

// New returns the outbox of db.
func New(db *store.DB, logger watermill.LoggerAdapter) *Outbox {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	o := &Outbox{db: db, logger: logger, PollInterval: 20 * time.Millisecond}
	switch db.Dialect {
	case store.Postgres:
		o.schema = wsql.PostgreSQLQueueSchema{
			GenerateMessagesTableName: tableName,
			GeneratePayloadType:       func(string) string { return "BYTEA" },
			SubscribeBatchSize:        100,
		}
		o.offsets = ackOnlyDelivered{wsql.PostgreSQLQueueOffsetsAdapter{
			GenerateMessagesTableName: tableName,
			DeleteOnAck:               true,
		}}
		o.PollInterval = 50 * time.Millisecond
	default:
		o.schema = sqliteQueueSchema{batchSize: 100}
		o.offsets = ackOnlyDelivered{sqliteQueueOffsets{}}
	}
	return o
}

// Init creates the outbox table when missing.
func (o *Outbox) Init(ctx context.Context) error {
	qs, err := o.schema.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: Topic})
	if err != nil {
		return err
	}
	for _, q := range qs {
		if _, err := o.db.ExecContext(ctx, q.Query, q.Args...); err != nil && !store.IsUniqueViolation(err) {
			return fmt.Errorf("outbox: create table: %w", err)
		}
	}
	return nil
}

// Add writes msgs, bound for subject, into the outbox within tx. The
// message UUID must be the event id: it becomes Nats-Msg-Id.
func (o *Outbox) Add(tx *stdsql.Tx, subject string, msgs ...*message.Message) error {
	pub, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{SchemaAdapter: o.schema}, o.logger)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	fw := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: Topic})
	if err := fw.Publish(subject, msgs...); err != nil {
		return fmt.Errorf("outbox: add to %s: %w", subject, err)
	}
	return nil
}

// Kick tells the relay that a transaction holding outbox rows committed:
// it sends them now instead of at its next poll. It never blocks.
func (o *Outbox) Kick() {}

// Pending counts rows not yet handed to the stream.
func (o *Outbox) Pending(ctx context.Context) (int, error) {
	var n int
	err := o.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	return n, err
}

// Relay returns the forwarder that moves rows to out. Run it with Run(ctx);
// it stops on Close or when ctx ends.
func (o *Outbox) Relay(out message.Publisher) (*forwarder.Forwarder, error) {
	ack := 30 * time.Second
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromStdSQL(o.db.DB), wsql.SubscriberConfig{
		SchemaAdapter:  o.schema,
		OffsetsAdapter: o.offsets,
		PollInterval:   o.PollInterval,
		ResendInterval: 200 * time.Millisecond,
		RetryInterval:  500 * time.Millisecond,
		AckDeadline:    &ack,
	}, o.logger)
	if err != nil {
		return nil, fmt.Errorf("outbox: relay subscriber: %w", err)
	}
	fw, err := forwarder.NewForwarder(sub, out, o.logger, forwarder.Config{
		ForwarderTopic: Topic,
		// A row that is not an envelope can never be sent; it is logged and
		// left marked, not retried forever.
		AckWhenCannotUnwrap: true,
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: %w", err)
	}
	return fw, nil
}

// ackOnlyDelivered narrows watermill-sql's ack query to the rows that were
// actually delivered. watermill-sql's subscriber passes the whole fetched
// batch to AckMessageQuery even when it stopped part-way (closing, ack
// deadline), and the queue adapters mark every row in it: the undelivered
// rows would be marked sent without ever reaching the stream.
type ackOnlyDelivered struct{ wsql.OffsetsAdapter }

func (a ackOnlyDelivered) AckMessageQuery(p wsql.AckMessageQueryParams) (wsql.Query, error) {
	delivered := p.Rows[:0:0]
	for _, r := range p.Rows {
		if r.Offset <= p.LastRow.Offset {
			delivered = append(delivered, r)
		}
	}
	p.Rows = delivered
	return a.OffsetsAdapter.AckMessageQuery(p)
}
