package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// TestDSN checks that each DSN call yields its own usable database and that
// the database is gone once the test that asked for it has finished.
func TestDSN(t *testing.T) {
	// The outer test's own database doubles as a vantage point for looking
	// at pg_database; it also skips this test when PostgreSQL is missing.
	admin := openDB(t, DSN(t))

	var names [2]string
	t.Run("two databases", func(t *testing.T) {
		dsns := [2]string{DSN(t), DSN(t)}
		if dsns[0] == dsns[1] {
			t.Fatalf("two DSN calls returned the same DSN %q", dsns[0])
		}
		for i, dsn := range dsns {
			db := openDB(t, dsn)
			if err := db.QueryRow("SELECT current_database()").Scan(&names[i]); err != nil {
				t.Fatalf("current_database: %v", err)
			}
			// Same table name in both: creating it twice only works if
			// the databases really are separate.
			useDB(t, db, fmt.Sprintf("row in %s", names[i]))
		}
		if names[0] == names[1] {
			t.Fatalf("both DSNs point at database %q", names[0])
		}
		for _, name := range names {
			if !strings.HasPrefix(name, "test_") {
				t.Errorf("database name %q lacks the test_ prefix", name)
			}
			if !databaseExists(t, admin, name) {
				t.Errorf("database %s not in pg_database while its test runs", name)
			}
		}
	})
	if t.Failed() {
		return
	}
	for _, name := range names {
		if databaseExists(t, admin, name) {
			t.Errorf("database %s still exists after its test's cleanup", name)
		}
	}
}

// TestDSNDropsDespiteOpenConnections checks the WITH (FORCE) part: a test
// that leaks a connection must not make the drop fail.
func TestDSNDropsDespiteOpenConnections(t *testing.T) {
	admin := openDB(t, DSN(t))

	var (
		name string
		conn *pgx.Conn
	)
	// Registered on the outer test, so the leaked connection is closed only
	// after the subtest's cleanup has dropped its database.
	t.Cleanup(func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	})
	t.Run("leaky", func(t *testing.T) {
		var err error
		conn, err = pgx.Connect(context.Background(), DSN(t))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatalf("current_database: %v", err)
		}
	})
	if t.Failed() {
		return
	}
	if databaseExists(t, admin, name) {
		t.Errorf("database %s survived cleanup although DROP ... WITH (FORCE) should end open sessions", name)
	}
}

// TestDSNParallel checks that concurrent DSN calls each get a working
// database, as parallel tests across a package will.
func TestDSNParallel(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			useDB(t, openDB(t, DSN(t)), fmt.Sprint("parallel ", i))
		})
	}
}

// TestUnavailable checks the skip-or-fail decision without breaking the real
// server, by handing unavailable a fake testing.TB.
func TestUnavailable(t *testing.T) {
	// Use up the once-per-binary stderr banner so this test does not print a
	// misleading "SKIPPED" notice.
	skipBannerOnce.Do(func() {})
	reason := fmt.Errorf("no binaries")

	t.Setenv(EnvRequire, "")
	var f fakeTB
	unavailable(&f, reason)
	if f.failed != "" || !strings.Contains(f.skipped, "PostgreSQL tests SKIPPED: no binaries; install the postgresql package (.ci/install-postgres.sh)") {
		t.Errorf("without %s: skipped=%q failed=%q; want a skip", EnvRequire, f.skipped, f.failed)
	}

	t.Setenv(EnvRequire, "1")
	f = fakeTB{}
	unavailable(&f, reason)
	if f.skipped != "" || !strings.Contains(f.failed, "no binaries") {
		t.Errorf("with %s=1: skipped=%q failed=%q; want a failure", EnvRequire, f.skipped, f.failed)
	}
}

// fakeTB records Skip and Fatalf instead of acting on them.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skip(args ...any)               { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test_x?sslmode=disable"},
		{"postgresql://u:p%40ss@db:5432?dbname=main&sslmode=disable", "postgresql://u:p%40ss@db:5432/test_x?sslmode=disable"},
		{"host=db user=u dbname=main ", "host=db user=u dbname=main dbname=test_x"},
	} {
		got, err := withDatabase(tc.in, "test_x")
		if err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "test_x" {
			t.Errorf("pgx reads %q as database %q (err %v); want test_x", got, cfg.Database, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	if compareVersions("9.6", "15") >= 0 || compareVersions("15", "16") >= 0 || compareVersions("16", "16") != 0 {
		t.Error("want 9.6 < 15 < 16")
	}
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// useDB creates a table, writes a row and reads it back.
func useDB(t *testing.T, db *sql.DB, value string) {
	t.Helper()
	if _, err := db.Exec("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := db.Exec("INSERT INTO items (id, name) VALUES (1, $1)", value); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var n int
	var got string
	if err := db.QueryRow("SELECT count(*) OVER (), name FROM items").Scan(&n, &got); err != nil {
		t.Fatalf("select: %v", err)
	}
	if n != 1 || got != value {
		t.Fatalf("read back %d rows, name %q; want 1 row, %q", n, got, value)
	}
}

func databaseExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var exists bool
	if err := db.QueryRow("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatalf("query pg_database: %v", err)
	}
	return exists
}
