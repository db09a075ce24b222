package svctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// NATSServerBinary is the nats-server executable of the tests that run
// services as separate processes: on PATH, in GOPATH/bin (`make test`,
// `make chaos` and `make cluster-test` install v2.15.2 there), or else
// built once from the nats-server module the workspace pins into the
// user's cache.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "nats-server")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	p = filepath.Join(cache, "roster", "nats-server")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Logf("building nats-server into %s (go install github.com/nats-io/nats-server/v2@v2.15.2 avoids it)", p)
	if out, err := exec.Command("go", "build", "-o", p, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("no nats-server on PATH nor in GOPATH/bin, and building it failed: %v\n%s", err, out)
	}
	return p
}
