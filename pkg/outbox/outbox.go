// Package outbox is the transactional outbox: a service writes its outgoing
// messages into its own database in the same transaction as the state
// change (Add), and a relay publishes them to JetStream afterwards (Relay).
//
// The relay is eager: Add arranges for a Kick once its transaction
// commits, which wakes the relay at once; a slow poll (PollInterval) only
// picks up rows that no kick announced — written by another replica, or
// left by a crash. Each pass reads up to BatchSize rows in offset order,
// publishes them to JetStream asynchronously, waits for every
// acknowledgement, and deletes exactly the acknowledged rows.
//
// Rows keep the format of the watermill outbox that came before (a
// watermill-sql queue table whose payload is watermill's forwarder
// envelope, components/forwarder): rows written by the previous version
// are sent after an upgrade, and a replica still running it during a
// rolling upgrade sends the rows of this one.
//
// Guarantees (docs/reliability.md): a row is deleted only after JetStream
// acknowledged its publish, so a crash at any instant leads to the row
// being sent again, never to it being lost; the stream's duplicate window
// (Nats-Msg-Id = the message UUID, the event id) and every consumer's
// inbox drop the second copy.
package outbox

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/store"
)

const table = "roster_outbox"

// Outbox is one service's outbox table.
type Outbox struct {
	db  *store.DB
	log *slog.Logger
	// PollInterval is how often the relay looks for rows no Kick announced
	// (default 500 ms). Set it before Relay runs.
	PollInterval time.Duration
	// BatchSize is how many rows one relay pass publishes before waiting
	// for their acknowledgements (default 512). Set it before Relay runs.
	BatchSize int

	kick chan struct{}
	// afterAck, when set by a test, runs between a batch's
	// acknowledgements and the deletion of its rows.
	afterAck func()

	// insert is insertQuery prepared by Init.
	insert atomic.Pointer[stdsql.Stmt]
}

const insertQuery = `INSERT INTO ` + table + ` (uuid, payload, metadata) VALUES ($1, $2, $3)`

// New returns the outbox of db.
func New(db *store.DB, log *slog.Logger) *Outbox {
	if log == nil {
		log = slog.Default()
	}
	return &Outbox{db: db, log: log, PollInterval: 500 * time.Millisecond, BatchSize: 512, kick: make(chan struct{}, 1)}
}

// Init creates the outbox table when missing: watermill-sql's queue table
// on PostgreSQL (with a 64-bit offset), and its SQLite twin.
func (o *Outbox) Init(ctx context.Context) error {
	var qs []string
	switch o.db.Dialect {
	case store.Postgres:
		qs = []string{`CREATE TABLE IF NOT EXISTS ` + table + ` (
			"offset" BIGSERIAL PRIMARY KEY,
			"uuid" VARCHAR(36) NOT NULL,
			"payload" BYTEA DEFAULT NULL,
			"metadata" JSON DEFAULT NULL,
			"acked" BOOLEAN NOT NULL DEFAULT FALSE,
			"created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
		)`}
	default:
		qs = []string{`CREATE TABLE IF NOT EXISTS ` + table + ` (
			"offset" INTEGER PRIMARY KEY AUTOINCREMENT,
			uuid TEXT NOT NULL,
			payload BLOB,
			metadata TEXT,
			acked INTEGER NOT NULL DEFAULT 0,
			created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
		)`, `CREATE INDEX IF NOT EXISTS ` + table + `_unacked ON ` + table + ` (acked, "offset")`}
	}
	for _, q := range qs {
		// Replicas starting at once race to create the table.
		if _, err := o.db.ExecContext(ctx, q); err != nil && !store.IsUniqueViolation(err) {
			return fmt.Errorf("outbox: create table: %w", err)
		}
	}
	if o.db.Dialect == store.Postgres {
		if err := o.widenOffset(ctx); err != nil {
			return err
		}
	}
	// Prepared here, where no transaction holds a connection: Add, inside
	// one, could wait forever for a free connection to prepare on.
	if o.insert.Load() == nil {
		stmt, err := o.db.PrepareContext(ctx, insertQuery)
		if err != nil {
			return fmt.Errorf("outbox: prepare insert: %w", err)
		}
		if !o.insert.CompareAndSwap(nil, stmt) {
			stmt.Close()
		}
	}
	return nil
}

// widenOffset makes the offset of a table created by watermill-sql
// (SERIAL: 2^31 rows over the table's life, 16 days at 1,500 events/s)
// 64-bit. The table holds only rows not yet sent, so the rewrite is short.
func (o *Outbox) widenOffset(ctx context.Context) error {
	var typ string
	err := o.db.QueryRowContext(ctx, `SELECT data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = '`+table+`' AND column_name = 'offset'`).Scan(&typ)
	if err != nil {
		return fmt.Errorf("outbox: offset type: %w", err)
	}
	if typ == "bigint" {
		return nil
	}
	for _, q := range []string{
		`ALTER TABLE ` + table + ` ALTER COLUMN "offset" TYPE BIGINT`,
		`ALTER SEQUENCE ` + table + `_offset_seq AS BIGINT`,
	} {
		if _, err := o.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("outbox: widen offset: %w", err)
		}
	}
	return nil
}

// envelope is watermill's forwarder envelope (components/forwarder), the
// payload of a row: the message and the subject it is bound for.
type envelope struct {
	DestinationTopic string            `json:"destination_topic"`
	UUID             string            `json:"uuid"`
	Payload          []byte            `json:"payload"`
	Metadata         map[string]string `json:"metadata"`
}

// Add writes msgs, bound for subject, into the outbox within tx, and wakes
// the relay once tx commits (when InTx runs it). The message UUID must be
// the event id: it becomes Nats-Msg-Id.
func (o *Outbox) Add(tx *stdsql.Tx, subject string, msgs ...*message.Message) error {
	if subject == "" {
		return errors.New("outbox: a message needs a subject")
	}
	// The statement is prepared once per connection by the store's
	// statement cache (SQLite) or pgx's (PostgreSQL). Not tx.Stmt of a
	// prepared statement: each call of that keeps a statement bound to the
	// transaction until it ends — 20,000 of them grew the heap of one
	// offboarding by 14 MiB (TestOffboardingAtScaleBoundedMemory).
	exec := func(args ...any) (stdsql.Result, error) { return tx.Exec(insertQuery, args...) }
	for _, m := range msgs {
		payload, err := json.Marshal(envelope{DestinationTopic: subject, UUID: m.UUID, Payload: m.Payload, Metadata: m.Metadata})
		if err != nil {
			return fmt.Errorf("outbox: add %s: %w", m.UUID, err)
		}
		// The uuid column is informative (the relay reads the envelope's);
		// it holds at most 36 characters on PostgreSQL.
		id := m.UUID
		if len(id) > 36 {
			id = uuid.NewString()
		}
		if _, err := exec(id, payload, "{}"); err != nil {
			return fmt.Errorf("outbox: add %s to %s: %w", m.UUID, subject, err)
		}
	}
	o.db.AfterCommit(tx, o.Kick)
	return nil
}

// Kick tells the relay that a transaction holding outbox rows committed:
// it sends them now instead of at its next poll. It never blocks; kicks
// that come while the relay is busy make one more pass.
func (o *Outbox) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Pending counts rows not yet handed to the stream.
func (o *Outbox) Pending(ctx context.Context) (int, error) {
	var n int
	err := o.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	return n, err
}

// uuidHeader carries the message UUID, as watermill-nats's NATSMarshaler
// writes it and the consumers' unmarshaler (pkg/eventbus) reads it.
const uuidHeader = "_watermill_message_uuid"

// NATSMsg is msg as it goes on the stream: bound for subject, its metadata
// as headers, its UUID in the header NATSMarshaler reads it from and as
// Nats-Msg-Id, which the stream's duplicate window drops a second copy by.
// Byte for byte what watermill-nats's publisher sent (NATSMarshaler,
// TrackMsgId), so consumers read messages of either relay alike.
func NATSMsg(subject string, msg *message.Message) *nats.Msg {
	return natsMsg(subject, msg.UUID, msg.Payload, msg.Metadata)
}

func natsMsg(subject, id string, payload []byte, metadata map[string]string) *nats.Msg {
	h := make(nats.Header, len(metadata)+2)
	h.Set(uuidHeader, id)
	for k, v := range metadata {
		h.Set(k, v)
	}
	h.Set(nats.MsgIdHdr, id)
	return &nats.Msg{Subject: subject, Header: h, Data: payload}
}
