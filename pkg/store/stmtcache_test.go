package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"testing"

	"modernc.org/sqlite"
)

// countingConn counts what the statement cache asks of the driver's
// connection: statements prepared, and calls that prepare their own.
type countingConn struct {
	innerConn
	prepares, uncached int
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.prepares++
	return c.innerConn.PrepareContext(ctx, query)
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.uncached++
	return c.innerConn.ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.uncached++
	return c.innerConn.QueryContext(ctx, query, args)
}

// countingConnector opens one SQLite connection with a statement cache of
// size in front of a countingConn.
type countingConnector struct {
	driver.Connector
	size  int
	inner *countingConn
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	c.inner = &countingConn{innerConn: conn.(innerConn)}
	return newStmtCacheConn(c.inner, c.size)
}

// openCounted opens a SQLite database of one connection whose statement
// cache holds size statements, with a table t of ids 1…n.
func openCounted(t *testing.T, size, n int) (*sql.DB, *countingConnector) {
	t.Helper()
	base, err := sqlite.NewConnector("file:" + filepath.Join(t.TempDir(), "t.db") + "?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConnector{Connector: base, size: size}
	db := sql.OpenDB(cc)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := db.Exec(`INSERT INTO t (id, name) VALUES ($1, $2)`, i, fmt.Sprint("n", i)); err != nil {
			t.Fatal(err)
		}
	}
	return db, cc
}

// A statement run again on its connection is not prepared again, as a
// query or as an exec.
func TestStmtCacheReusesStatements(t *testing.T) {
	db, cc := openCounted(t, 8, 100)
	if cc.inner.prepares != 2 { // CREATE, then INSERT once for 100 rows
		t.Fatalf("%d statements prepared for 100 inserts, want 2", cc.inner.prepares)
	}
	for i := 1; i <= 100; i++ {
		var name string
		if err := db.QueryRow(`SELECT name FROM t WHERE id = $1`, i).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != fmt.Sprint("n", i) {
			t.Fatalf("row %d: %q", i, name)
		}
	}
	if cc.inner.prepares != 3 || cc.inner.uncached != 0 {
		t.Fatalf("%d prepared, %d run uncached, want 3 and 0", cc.inner.prepares, cc.inner.uncached)
	}
}

// A statement whose rows are still being read is not handed out again: the
// same query run meanwhile on the connection (inside a transaction) gets a
// statement of its own, and both read what they should.
func TestStmtCacheStatementInUse(t *testing.T) {
	db, cc := openCounted(t, 8, 5)
	const q = `SELECT id, name FROM t WHERE id >= $1 ORDER BY id`
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.Query(q, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := 1
	for rows.Next() {
		var id int
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		var innerID int
		var innerName string
		if err := tx.QueryRow(q, id).Scan(&innerID, &innerName); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`UPDATE t SET name = $2 WHERE id = $1`, id, name+"!"); err != nil {
			t.Fatal(err)
		}
		if id != want || innerID != id || innerName != fmt.Sprint("n", id) {
			t.Fatalf("row %d: outer %d, inner %d %q", want, id, innerID, innerName)
		}
		want++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if want != 6 {
		t.Fatalf("read %d rows, want 5", want-1)
	}
	if cc.inner.uncached != 5 {
		t.Fatalf("%d queries ran uncached, want the 5 inner ones", cc.inner.uncached)
	}
	// Rows closed, the statement is handed out again.
	prepared := cc.inner.prepares
	var name string
	if err := tx.QueryRow(q, 3).Scan(new(int), &name); err != nil {
		t.Fatal(err)
	}
	if name != "n3!" || cc.inner.prepares != prepared || cc.inner.uncached != 5 {
		t.Fatalf("after rows closed: %q, %d prepared (was %d), %d uncached", name, cc.inner.prepares, prepared, cc.inner.uncached)
	}
}

// The cache keeps size statements, the least recently used dropped; one
// dropped while its rows are read is closed once they close, and its rows
// read to the end.
func TestStmtCacheBounded(t *testing.T) {
	db, cc := openCounted(t, 2, 3)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	rows, err := conn.QueryContext(ctx, `SELECT id FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatal("no first row")
	}
	for i := range 4 { // four statements: the open one is dropped
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`UPDATE t SET name = 'x%d' WHERE id = $1`, i), 1); err != nil {
			t.Fatal(err)
		}
	}
	c := cc.inner
	sc := func() *stmtCacheConn {
		var s *stmtCacheConn
		if err := conn.Raw(func(dc any) error { s = dc.(*stmtCacheConn); return nil }); err != nil {
			t.Fatal(err)
		}
		return s
	}()
	if sc.lru.Len() != 2 || len(sc.byQuery) != 2 {
		t.Fatalf("%d cached (%d by query), want 2", sc.lru.Len(), len(sc.byQuery))
	}
	n := 1
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if n != 3 {
		t.Fatalf("read %d rows of the dropped statement, want 3", n)
	}
	prepared := c.prepares
	if _, err := conn.ExecContext(ctx, `SELECT id FROM t ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if c.prepares != prepared+1 {
		t.Fatalf("a dropped statement run again: %d prepares, want %d", c.prepares, prepared+1)
	}
}

// A cached statement follows a change of its table's schema: SQLite
// prepares it again by itself.
func TestStmtCacheAfterSchemaChange(t *testing.T) {
	db, _ := openCounted(t, 8, 1)
	const q = `SELECT * FROM t WHERE id = $1`
	cols := func() int {
		rows, err := db.Query(q, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		c, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		return len(c)
	}
	if n := cols(); n != 2 {
		t.Fatalf("%d columns, want 2", n)
	}
	if _, err := db.Exec(`ALTER TABLE t ADD COLUMN extra TEXT NOT NULL DEFAULT 'e'`); err != nil {
		t.Fatal(err)
	}
	if n := cols(); n != 3 {
		t.Fatalf("%d columns after ALTER TABLE, want 3", n)
	}
}

// BenchmarkStatements runs statements of the seat path's shape (a primary
// key read with a subquery, an upsert) inside one transaction, so that no
// commit's fsync hides their CPU cost, on a connection with and without
// the statement cache:
//
//	go test -run '^$' -bench BenchmarkStatements ./pkg/store/
func BenchmarkStatements(b *testing.B) {
	const (
		read = `SELECT s.name, (SELECT count(*) FROM t r WHERE r.id > s.id AND r.name <> $2)
			FROM t s WHERE s.id = $1`
		upsert = `INSERT INTO t (id, name) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name`
	)
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cached=%t", cached), func(b *testing.B) {
			base, err := sqlite.NewConnector("file:" + filepath.Join(b.TempDir(), "b.db") + "?_txlock=immediate")
			if err != nil {
				b.Fatal(err)
			}
			var connector driver.Connector = base
			if cached {
				connector = stmtCacheConnector{Connector: base, size: stmtCacheSize}
			}
			db := sql.OpenDB(connector)
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			tx, err := db.Begin()
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Rollback()
			i := 0
			for b.Loop() {
				i++
				if _, err := tx.Exec(upsert, i%100, "n"); err != nil {
					b.Fatal(err)
				}
				var name string
				var n int
				if err := tx.QueryRow(read, i%100, "x").Scan(&name, &n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
