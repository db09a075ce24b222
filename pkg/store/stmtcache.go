package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
	"sync"
)

// stmtCacheSize bounds the prepared statements kept per SQLite connection:
// more than the distinct statements of any one service, so that none is
// parsed twice on a connection that stays open.
const stmtCacheSize = 256

// stmtCacheConnector opens SQLite connections that keep their prepared
// statements (stmtCacheConn). modernc.org/sqlite prepares and finalizes
// the statement of every ExecContext and QueryContext that database/sql
// sends it, and SQL parsing was 11 % of the lifecycle's CPU (issue 18); it
// offers no cache of its own, while a statement it prepared runs again
// without parsing. PostgreSQL needs none: pgx caches statements per
// connection (default_query_exec_mode cache_statement).
type stmtCacheConnector struct {
	driver.Connector
	size int
}

func (c stmtCacheConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newStmtCacheConn(conn, c.size)
}

// innerConn is what database/sql uses of a modernc.org/sqlite connection.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// stmtCacheConn is a connection that runs ExecContext and QueryContext on
// statements it prepared before, the least recently used dropped past size.
// A statement whose Rows are still open (a query run while another one's
// rows are read, within a transaction) is not handed out again: that call
// runs on a statement of its own, prepared and finalized as without the
// cache. database/sql uses a connection from one goroutine at a time; mu
// guards the cache anyway, Rows being closable from a context's watcher.
type stmtCacheConn struct {
	innerConn
	size int

	mu      sync.Mutex
	lru     *list.List // of *cachedStmt, most recently used first
	byQuery map[string]*list.Element
}

// preparedStmt is what the cache uses of a modernc.org/sqlite statement.
type preparedStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachedStmt is one prepared statement of the cache.
type cachedStmt struct {
	query string
	stmt  preparedStmt
	// busy: Rows read from it are open. dropped: it left the cache while
	// busy, and is closed once they close.
	busy, dropped bool
}

func newStmtCacheConn(conn driver.Conn, size int) (driver.Conn, error) {
	inner, ok := conn.(innerConn)
	if !ok {
		conn.Close()
		return nil, errors.New("store: the SQLite driver's connection lacks an interface of database/sql that the statement cache forwards")
	}
	return &stmtCacheConn{innerConn: inner, size: size, lru: list.New(), byQuery: map[string]*list.Element{}}, nil
}

// take returns the cached statement of query, prepared now if it is not
// cached, and marks it busy when forRows; nil when it is busy already.
func (c *stmtCacheConn) take(ctx context.Context, query string, forRows bool) (*cachedStmt, error) {
	c.mu.Lock()
	if el, ok := c.byQuery[query]; ok {
		defer c.mu.Unlock()
		cs := el.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(el)
		cs.busy = forRows
		return cs, nil
	}
	c.mu.Unlock()

	s, err := c.innerConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	stmt, ok := s.(preparedStmt)
	if !ok {
		s.Close()
		return nil, errors.New("store: the SQLite driver's statement lacks ExecContext or QueryContext")
	}
	cs := &cachedStmt{query: query, stmt: stmt, busy: forRows}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byQuery[query]; ok { // cannot happen: one user at a time
		c.drop(el)
	}
	c.byQuery[query] = c.lru.PushFront(cs)
	for c.lru.Len() > c.size {
		c.drop(c.lru.Back())
	}
	return cs, nil
}

// drop removes el from the cache, closing its statement unless Rows read
// from it are open.
func (c *stmtCacheConn) drop(el *list.Element) {
	cs := c.lru.Remove(el).(*cachedStmt)
	delete(c.byQuery, cs.query)
	if cs.busy {
		cs.dropped = true
		return
	}
	cs.stmt.Close()
}

// rowsClosed hands cs out again, or closes it if it left the cache.
func (c *stmtCacheConn) rowsClosed(cs *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs.busy = false
	if cs.dropped {
		cs.stmt.Close()
	}
}

func (c *stmtCacheConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.take(ctx, query, false)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.innerConn.ExecContext(ctx, query, args)
	}
	return cs.stmt.ExecContext(ctx, args)
}

func (c *stmtCacheConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.take(ctx, query, true)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.innerConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		c.rowsClosed(cs)
		return nil, err
	}
	return &cachedRows{Rows: rows, conn: c, stmt: cs}, nil
}

// Close closes the cached statements, then the connection.
func (c *stmtCacheConn) Close() error {
	c.mu.Lock()
	for c.lru.Len() > 0 {
		el := c.lru.Back()
		c.lru.Remove(el)
		el.Value.(*cachedStmt).stmt.Close()
	}
	clear(c.byQuery)
	c.mu.Unlock()
	return c.innerConn.Close()
}

// cachedRows are the rows of a cached statement, which their Close hands
// out again. They forward the column types the driver reports.
type cachedRows struct {
	driver.Rows
	conn   *stmtCacheConn
	stmt   *cachedStmt
	closed bool
}

func (r *cachedRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close()
	r.conn.rowsClosed(r.stmt)
	return err
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
