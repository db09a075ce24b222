// Package store opens a service's own database — an embedded SQLite file in
// the data dir by default, or a schema of its own in PostgreSQL — applies the
// service's versioned migrations, and runs transactions.
//
// Both backends are reached through database/sql with the same SQL text:
// placeholders are written $1, $2 … (SQLite accepts them as numbered
// parameters), timestamps are stored as fixed-width UTC text (see Time), and
// booleans as integers, so a store is tested once against both.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the database behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config says where a service's database lives.
type Config struct {
	// URL is empty for the embedded SQLite default, or a postgres:// URL.
	URL string
	// DataDir holds the SQLite files (<DataDir>/<Service>.db).
	DataDir string
	// Service names the database file or the PostgreSQL schema.
	Service string
	// MaxConns caps open connections (default 8 for PostgreSQL, 4 for SQLite).
	MaxConns int
}

// DB is one service's database.
type DB struct {
	*sql.DB
	Dialect Dialect
	Service string

	// afterCommit holds, per transaction that InTx runs, the functions to
	// run once it committed (AfterCommit).
	afterCommit sync.Map // *sql.Tx → *[]func()
	// writer, on SQLite, lets one InTx transaction at a time take a
	// connection: SQLite has one writer anyway, and a transaction waiting
	// for the write lock while holding a pooled connection starves the
	// holder of the lock when it reads through the pool (all connections
	// taken by waiters: a deadlock until busy_timeout, found by the
	// consistency suite, issue 18).
	writer chan struct{}
}

var serviceName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Open opens (creating when needed) the service's database.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if !serviceName.MatchString(cfg.Service) {
		return nil, fmt.Errorf("store: service name %q must be lower-case letters, digits and _", cfg.Service)
	}
	switch {
	case cfg.URL == "" || strings.HasPrefix(cfg.URL, "sqlite:"):
		return openSQLite(ctx, cfg)
	case strings.HasPrefix(cfg.URL, "postgres://") || strings.HasPrefix(cfg.URL, "postgresql://"):
		return openPostgres(ctx, cfg)
	default:
		return nil, fmt.Errorf("store: --db must be empty (SQLite in the data dir) or a postgres:// URL, got scheme of %q", redact(cfg.URL))
	}
}

func openSQLite(ctx context.Context, cfg Config) (*DB, error) {
	dir := cfg.DataDir
	if dir == "" {
		return nil, errors.New("store: a data dir is needed for SQLite")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	path := filepath.Join(dir, cfg.Service+".db")
	// WAL lets readers go on while one writer commits; _txlock=immediate takes
	// the write lock at BEGIN, so a transaction never fails half-way when it
	// upgrades from reading to writing (SQLITE_BUSY_SNAPSHOT), and busy_timeout
	// makes concurrent writers queue instead of failing. synchronous(FULL)
	// fsyncs every commit: the outbox row is the source of truth for an event
	// until the stream has it (docs/reliability.md).
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	connector, err := sqlite.NewConnector("file:" + path + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := sql.OpenDB(stmtCacheConnector{Connector: connector, size: stmtCacheSize})
	max := cfg.MaxConns
	if max <= 0 {
		max = 4
	}
	db.SetMaxOpenConns(max)
	db.SetMaxIdleConns(max)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &DB{DB: db, Dialect: SQLite, Service: cfg.Service, writer: make(chan struct{}, 1)}, nil
}

func openPostgres(ctx context.Context, cfg Config) (*DB, error) {
	connCfg, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("store: parse --db: %s", redact(err.Error()))
	}
	// Each service lives in its own schema; search_path makes every
	// unqualified table name resolve there, so the SQL is the same as on SQLite.
	// The schema may exist already, created by the operator for the
	// service's own role (deploy/postgres/init.sql), which then has no
	// right to create schemas: look before creating.
	admin := stdlib.OpenDB(*connCfg.Copy())
	var exists bool
	err = admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, cfg.Service).Scan(&exists)
	if err == nil && !exists {
		_, err = admin.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{cfg.Service}.Sanitize())
	}
	admin.Close()
	if err != nil && !isUniqueViolation(err) { // two replicas racing to create it
		return nil, fmt.Errorf("store: create schema %s: %w", cfg.Service, err)
	}
	connCfg.RuntimeParams["search_path"] = cfg.Service
	db := stdlib.OpenDB(*connCfg)
	max := cfg.MaxConns
	if max <= 0 {
		max = 8
	}
	db.SetMaxOpenConns(max)
	db.SetMaxIdleConns(max)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL: %w", err)
	}
	return &DB{DB: db, Dialect: Postgres, Service: cfg.Service}, nil
}

// Migrate applies the service's versioned migrations (goose .sql files at
// the root of fsys) that are not applied yet.
func (db *DB) Migrate(ctx context.Context, fsys fs.FS) error {
	dialect := goose.DialectSQLite3
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
	}
	var opts []goose.ProviderOption
	if db.Dialect == Postgres {
		// Replicas of a service start at once: a PostgreSQL advisory lock,
		// one per service, lets one of them migrate while the others wait
		// (polled every second, for up to 5 minutes), then find nothing to do.
		h := fnv.New64a()
		h.Write([]byte("roster-migrate:" + db.Service))
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()>>1)), lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("store: migrations of %s: %w", db.Service, err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.DB, fsys, opts...)
	if err != nil {
		return fmt.Errorf("store: migrations of %s: %w", db.Service, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate %s: %w", db.Service, err)
	}
	return nil
}

// InTx runs fn in one transaction and commits it, or rolls back when fn
// fails. Transactions that lose a serialisation race are retried.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.inTx(ctx, fn)
		if err == nil || !retryable(err) || attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt*attempt) * 5 * time.Millisecond):
		}
	}
}

func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	if db.writer != nil {
		select {
		case db.writer <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("store: begin: %w", ctx.Err())
		}
		defer func() { <-db.writer }()
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	hooks := new([]func())
	db.afterCommit.Store(tx, hooks)
	defer db.afterCommit.Delete(tx)
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	for _, f := range *hooks {
		f()
	}
	return nil
}

// AfterCommit registers fn to run once tx — a transaction InTx runs — has
// committed, before InTx returns; it never runs for an attempt that rolled
// back (a retried attempt registers again). It reports false, registering
// nothing, for a transaction InTx did not open. The event bus uses it to
// wake its outbox relay and to tell a waiting request which events its
// transaction emitted (pkg/eventbus, docs/architecture.md "Read-your-writes").
func (db *DB) AfterCommit(tx *sql.Tx, fn func()) bool {
	v, ok := db.afterCommit.Load(tx)
	if !ok {
		return false
	}
	hooks := v.(*[]func())
	*hooks = append(*hooks, fn)
	return true
}

// retryable reports errors that a fresh attempt of the same transaction can
// clear: PostgreSQL serialisation failures and deadlocks, SQLite busy.
func retryable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "40001" || pg.Code == "40P01"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// IsUniqueViolation reports a unique or primary-key constraint failure on
// either backend.
func IsUniqueViolation(err error) bool { return isUniqueViolation(err) }

func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// TimeLayout is how timestamps are stored: fixed width, so text order is
// time order on both backends.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Time formats t for storage.
func Time(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime reads a stored timestamp.
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeLayout, s) }

var password = regexp.MustCompile(`(://[^:/@]*:)[^@]*@`)

// redact hides a password in a database URL so it can be logged or shown.
func redact(s string) string { return password.ReplaceAllString(s, "${1}***@") }
