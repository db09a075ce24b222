package outbox

import (
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// sqliteQueueSchema is watermill-sql's queue schema for SQLite: rows are
// read in insertion order and marked acked once forwarded. SQLite has no
// SELECT … FOR UPDATE; the store opens every transaction with BEGIN
// IMMEDIATE, which holds the database's write lock for the relay's whole
// read-forward-mark transaction, so two relays never forward the same row
// concurrently.
type sqliteQueueSchema struct{ batchSize int }

func (s sqliteQueueSchema) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + table + ` (
		"offset" INTEGER PRIMARY KEY AUTOINCREMENT,
		uuid TEXT NOT NULL,
		payload BLOB,
		metadata TEXT,
		acked INTEGER NOT NULL DEFAULT 0,
		created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
	)`}, {Query: `CREATE INDEX IF NOT EXISTS ` + table + `_unacked ON ` + table + ` (acked, "offset")`}}, nil
}

func (s sqliteQueueSchema) InsertQuery(p wsql.InsertQueryParams) (wsql.Query, error) {
	marks := strings.TrimSuffix(strings.Repeat("(?,?,?),", len(p.Msgs)), ",")
	args := make([]any, 0, 3*len(p.Msgs))
	for _, m := range p.Msgs {
		md, err := json.Marshal(m.Metadata)
		if err != nil {
			return wsql.Query{}, fmt.Errorf("metadata of %s: %w", m.UUID, err)
		}
		args = append(args, m.UUID, []byte(m.Payload), string(md))
	}
	return wsql.Query{Query: `INSERT INTO ` + table + ` (uuid, payload, metadata) VALUES ` + marks, Args: args}, nil
}

func (s sqliteQueueSchema) SelectQuery(p wsql.SelectQueryParams) (wsql.Query, error) {
	if p.ConsumerGroup != "" {
		return wsql.Query{}, fmt.Errorf("consumer groups are not supported by the SQLite outbox")
	}
	return wsql.Query{Query: fmt.Sprintf(`SELECT "offset", uuid, payload, metadata FROM %s WHERE acked = 0 ORDER BY "offset" LIMIT %d`, table, s.batchSize)}, nil
}

func (s sqliteQueueSchema) UnmarshalMessage(p wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var r wsql.Row
	var md stdsql.NullString
	if err := p.Row.Scan(&r.Offset, &r.UUID, &r.Payload, &md); err != nil {
		return wsql.Row{}, fmt.Errorf("scan outbox row: %w", err)
	}
	msg := message.NewMessage(string(r.UUID), r.Payload)
	if md.Valid && md.String != "" {
		if err := json.Unmarshal([]byte(md.String), &msg.Metadata); err != nil {
			return wsql.Row{}, fmt.Errorf("outbox row %d metadata: %w", r.Offset, err)
		}
	}
	r.Msg = msg
	return r, nil
}

func (s sqliteQueueSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelDefault
}

// sqliteQueueOffsets deletes forwarded rows, as the PostgreSQL outbox does
// (DeleteOnAck): what is in the table is exactly what the stream may not
// have yet.
type sqliteQueueOffsets struct{}

func (sqliteQueueOffsets) SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

func (sqliteQueueOffsets) NextOffsetQuery(wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

func (sqliteQueueOffsets) AckMessageQuery(p wsql.AckMessageQueryParams) (wsql.Query, error) {
	if len(p.Rows) == 0 {
		return wsql.Query{Query: `SELECT 1`}, nil
	}
	args := make([]any, len(p.Rows))
	for i, r := range p.Rows {
		args[i] = r.Offset
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(p.Rows)), ",")
	return wsql.Query{Query: `DELETE FROM ` + table + ` WHERE "offset" IN (` + marks + `)`, Args: args}, nil
}

func (sqliteQueueOffsets) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

func (sqliteQueueOffsets) BeforeSubscribingQueries(wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}
