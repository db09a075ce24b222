// Package pgtest gives Go tests a real, throwaway PostgreSQL server.
//
// Tests that touch SQL run against the real thing rather than a fake, so
// Postgres behaviour (locking, constraint errors, isolation levels, its SQL
// dialect) is what gets tested. One server is started lazily per test
// binary, on first use, from the Debian "postgresql" package binaries
// (/usr/lib/postgresql/<newest>/bin); every test gets its own fresh database
// on it, so tests can run in parallel without seeing each other's rows.
//
// Use it like this:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		db, err := sql.Open("pgx", pgtest.DSN(t)) // fresh, empty database
//		...
//	}
//
// Run stops the server and deletes its files when the tests are done.
// Without it, the server still dies with the test binary on Linux (see
// Stop), but its temp dir is left behind.
//
// Environment:
//
//   - ROSTER_TEST_POSTGRES_DSN: use this existing server instead of starting
//     one; its role needs CREATEDB. Databases are still created and dropped
//     per test.
//   - ROSTER_REQUIRE_POSTGRES=1: a missing or broken PostgreSQL fails the
//     test instead of skipping it. CI sets this so that a broken install
//     cannot turn into a silently green build.
//
// Install the binaries with .ci/install-postgres.sh.
package pgtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// EnvDSN names an existing server to use instead of starting one.
	EnvDSN = "ROSTER_TEST_POSTGRES_DSN"
	// EnvRequire, when "1", turns "PostgreSQL unavailable" from a skip into a
	// test failure.
	EnvRequire = "ROSTER_REQUIRE_POSTGRES"

	// readyTimeout bounds how long we wait for a started server to accept
	// connections. A cold start takes well under a second; 30 s leaves room
	// for overloaded CI machines.
	readyTimeout = 30 * time.Second
	// adminTimeout bounds CREATE/DROP DATABASE, so a wedged server fails the
	// test instead of hanging it until the go test -timeout.
	adminTimeout = 30 * time.Second
	// shutdownTimeout bounds the wait for an immediate shutdown before the
	// server is SIGKILLed. Postgres itself SIGKILLs children that ignore the
	// shutdown for 5 s.
	shutdownTimeout = 10 * time.Second
	// launchAttempts: the free port we pick can be taken by someone else
	// between closing our probe listener and postgres binding it, so a
	// launch whose postgres exits early is retried on a new port.
	launchAttempts = 3
)

var (
	startOnce sync.Once
	stopOnce  sync.Once
	// srv and srvErr are written once inside startOnce and only read after
	// it, which orders the accesses.
	srv    *server
	srvErr error

	skipBannerOnce sync.Once
)

var errStopped = errors.New("pgtest: DSN called after Stop")

// DSN returns a connection string (postgres:// URL form) for a new, empty
// database that belongs to t alone, and drops that database (forcibly
// closing leftover connections) when t finishes.
//
// The first call in a test binary starts the shared server. If PostgreSQL is
// not available DSN skips t, or fails it when ROSTER_REQUIRE_POSTGRES=1.
// DSN is safe to call from parallel tests.
func DSN(t testing.TB) string {
	t.Helper()
	startOnce.Do(func() {
		began := time.Now()
		srv, srvErr = start()
		if srvErr == nil && srv.cmd != nil {
			t.Logf("pgtest: started PostgreSQL (%s) in %v on %s, data in %s",
				srv.binDir, time.Since(began).Round(time.Millisecond), srv.addr, srv.dir)
		}
	})
	if errors.Is(srvErr, errStopped) {
		t.Fatal(srvErr)
	}
	if srvErr != nil {
		unavailable(t, srvErr)
		return "" // not reached: unavailable skips or fails t.
	}

	name, err := randomDBName()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := srv.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t's own context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		// FORCE: a test that forgot to close its pool must not make the drop
		// (and with it every later test's cleanup) fail.
		err := srv.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	dsn, err := withDatabase(srv.adminDSN, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// Run runs the tests and then stops the server, returning m.Run's exit code.
// Call it from TestMain as os.Exit(pgtest.Run(m)).
func Run(m *testing.M) int {
	defer Stop()
	return m.Run()
}

// Stop kills the server started by DSN, if any, and removes its data
// directory. It is safe to call more than once and when no server was
// started; DSN must not be called afterwards.
//
// On Linux the server does not outlive the test binary even without Stop: it
// is started with a parent-death signal, so the kernel kills it when the test
// process dies, whether it exits, panics, times out or is SIGKILLed. Only the
// temp dir (about 40 MB) is then left behind in /tmp.
func Stop() {
	stopOnce.Do(func() {
		// If no DSN call happened yet, this makes any later one fail
		// instead of starting a server nobody would stop.
		startOnce.Do(func() { srvErr = errStopped })
		if srv != nil {
			if err := srv.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: stop: %v\n", err)
			}
		}
	})
}

// unavailable skips t with a message that is hard to miss or, when CI demands
// PostgreSQL, fails it.
func unavailable(t testing.TB, reason error) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("PostgreSQL tests FAILED: %v (%s=1 makes a missing PostgreSQL an error; run .ci/install-postgres.sh)", reason, EnvRequire)
		return
	}
	msg := fmt.Sprintf("PostgreSQL tests SKIPPED: %v; install the postgresql package (.ci/install-postgres.sh)", reason)
	// Skip messages only show with -v, so say it once on stderr as well.
	skipBannerOnce.Do(func() {
		fmt.Fprintf(os.Stderr, "\n*** %s ***\n\n", msg)
	})
	t.Skip(msg)
}

// server is either a postgres process we started (cmd != nil) or an existing
// server named by ROSTER_TEST_POSTGRES_DSN (cmd == nil).
type server struct {
	adminDSN string // connects as a superuser/CREATEDB role to a maintenance database

	// Only for a server we started:
	binDir  string
	addr    string        // host:port it listens on
	dir     string        // temp dir holding data, socket and log; removed on stop
	cmd     *exec.Cmd     // the postmaster; leader of its own process group
	exited  chan struct{} // closed once cmd has been waited for
	waitErr error         // cmd.Wait's result, readable after exited is closed
}

// start connects to ROSTER_TEST_POSTGRES_DSN if set, and otherwise initialises
// and launches a private server.
func start() (*server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		s := &server{adminDSN: dsn}
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if err := s.exec(ctx, "SELECT 1"); err != nil {
			return nil, fmt.Errorf("cannot use %s: %w", EnvDSN, err)
		}
		return s, nil
	}

	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir(cred)
	if err != nil {
		return nil, err
	}
	s, err := launch(binDir, dir, cred)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// findBinDir returns the bin directory of the newest PostgreSQL under
// /usr/lib/postgresql (the Debian layout, which can hold several major
// versions side by side), falling back to a postgres found on $PATH.
func findBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres") // only fails on a bad pattern
	if len(matches) > 0 {
		slices.SortFunc(matches, func(a, b string) int {
			return compareVersions(filepath.Base(filepath.Dir(filepath.Dir(a))),
				filepath.Base(filepath.Dir(filepath.Dir(b))))
		})
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (no /usr/lib/postgresql/*/bin/postgres, no postgres on $PATH)")
}

// compareVersions orders directory names like "9.6", "15" and "16"
// numerically, so that "16" sorts after "9.6".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

// credential returns whom to run initdb and postgres as: nil (ourselves)
// normally, the "postgres" system user when we are root, because postgres
// refuses to run as root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and postgres refuses root, but there is no postgres user to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// makeTempDir creates the server's private directory and hands it to the
// user the server runs as.
func makeTempDir(cred *syscall.Credential) (string, error) {
	base := os.TempDir()
	if cred != nil {
		// $TMPDIR may point somewhere under /root that the postgres user
		// cannot traverse; /tmp is world-searchable by convention.
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("chown %s to postgres: %w", dir, err)
		}
	}
	return dir, nil
}

// launch runs initdb in dir and then starts postgres, retrying on a fresh
// port if postgres dies during startup (most likely a lost port race).
func launch(binDir, dir string, cred *syscall.Credential) (*server, error) {
	dataDir := filepath.Join(dir, "data")
	sockDir := filepath.Join(dir, "sock")
	logPath := filepath.Join(dir, "postgres.log")

	if err := initdb(binDir, dataDir, cred); err != nil {
		return nil, err
	}
	if err := os.Mkdir(sockDir, 0o700); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(sockDir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("chown socket dir: %w", err)
		}
	}

	var err error
	for range launchAttempts {
		var s *server
		s, err = startPostgres(binDir, dir, dataDir, sockDir, logPath, cred)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errExitedEarly) {
			break
		}
	}
	return nil, err
}

// initdb creates the cluster. Trust auth and a known superuser name keep
// test DSNs password-free; the C locale keeps sorting identical on every
// machine; --no-sync because the data is thrown away.
func initdb(binDir, dataDir string, cred *syscall.Credential) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"--pgdata="+dataDir,
		"--auth=trust",
		"--username=postgres",
		"--encoding=UTF8",
		"--locale=C",
		"--no-sync",
		"--no-instructions",
	)
	cmd.Dir = filepath.Dir(dataDir) // our cwd may be unreadable for the postgres user
	cmd.Env = childEnv()
	cmd.SysProcAttr = sysProcAttr(cred)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

var errExitedEarly = errors.New("postgres exited during startup")

// startPostgres starts the postmaster in the foreground (no pg_ctl, so the
// process we hold is the server itself and we can kill it directly) and waits
// until it accepts connections.
func startPostgres(binDir, dir, dataDir, sockDir, logPath string, cred *syscall.Credential) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	defer logFile.Close() // the child has its own copy of the descriptor

	cmd := exec.Command(filepath.Join(binDir, "postgres"),
		"-D", dataDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+sockDir,
		// Durability buys nothing for a database deleted after the run and
		// costs a lot of test time.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		// Many packages running parallel tests, each with its own pool.
		"-c", "max_connections=200",
		"-c", "shared_buffers=64MB",
	)
	cmd.Dir = dir
	cmd.Env = childEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr(cred)

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &server{
		adminDSN: (&url.URL{
			Scheme:   "postgres",
			User:     url.User("postgres"),
			Host:     addr,
			Path:     "/postgres",
			RawQuery: "sslmode=disable",
		}).String(),
		binDir: binDir,
		addr:   addr,
		dir:    dir,
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	started := make(chan error)
	go func() {
		// The kernel sends the parent-death signal when the thread that
		// started the child exits, not the process. Go retires a thread
		// only when its goroutine exits while locked to it, so pinning this
		// goroutine until postgres is gone means the signal fires when the
		// test binary dies and never earlier.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	if err := s.waitReady(); err != nil {
		s.kill()
		return nil, fmt.Errorf("%w\n--- %s ---\n%s", err, logPath, tail(logPath, 4096))
	}
	return s, nil
}

// waitReady polls until the server accepts a connection, giving up early if
// the process dies. The poll interval backs off from 5 ms so a fast start is
// noticed quickly without spinning.
func (s *server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	backoff := 5 * time.Millisecond
	for {
		err := s.exec(ctx, "SELECT 1")
		if err == nil {
			return nil
		}
		timer := time.NewTimer(backoff)
		select {
		case <-s.exited:
			timer.Stop()
			return fmt.Errorf("%w: %v", errExitedEarly, s.waitErr)
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("postgres did not accept connections within %v: %w", readyTimeout, err)
		case <-timer.C:
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// exec runs one statement on a short-lived admin connection. CREATE and DROP
// DATABASE cannot run inside a transaction, and a fresh connection per call
// keeps no state that Stop would have to clean up.
func (s *server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.adminDSN)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// stop kills a server we started and deletes its files; for an external
// server it does nothing.
func (s *server) stop() error {
	if s.cmd == nil {
		return nil
	}
	s.kill()
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove %s: %w", s.dir, err)
	}
	return nil
}

// kill stops the server quickly and without leaving backends behind, and
// waits for the postmaster to be reaped.
//
// A signal to the postmaster's process group is not enough: postgres puts
// every child process in a session of its own. SIGQUIT requests an
// "immediate shutdown", in which the postmaster kills its children, waits for
// them and exits, with no checkpoint (the data is about to be deleted). Should
// that hang, SIGKILL to the group ends the postmaster, and its orphaned
// children exit on their own once they notice it is gone.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGQUIT) // fails only if already gone
	timer := time.NewTimer(shutdownTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
	case <-timer.C:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // likewise
	<-s.exited
}

// freePort asks the kernel for an unused port. It is free only until someone
// else takes it, which launch handles by retrying.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is our environment without PG* variables, which would otherwise
// leak a developer's PGDATA, PGOPTIONS and the like into initdb and postgres.
func childEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PG")
	})
}

// tail returns up to the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// randomDBName returns test_ followed by 16 hex digits: unique across
// parallel tests and test binaries sharing a server, and a valid unquoted
// identifier.
func randomDBName() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random database name: %w", err)
	}
	return fmt.Sprintf("test_%x", b), nil
}

// withDatabase returns dsn pointing at database name instead. It accepts both
// forms pgx accepts: URLs and keyword=value strings.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		// A dbname (or its alias database) parameter would override the path.
		if q := u.Query(); q.Has("dbname") || q.Has("database") {
			q.Del("dbname")
			q.Del("database")
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	// In keyword=value strings the last occurrence of a keyword wins.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}
