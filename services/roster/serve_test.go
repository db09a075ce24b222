package roster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	iddomain "roster.dev/services/identity/domain"
)

const childEnv = "ROSTER_SERVE_CHILD"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		// Play the roster binary: the test re-executes itself as `roster`.
		os.Exit(Main(strings.Fields(args)))
	}
	if raceDetector {
		// Under the race detector argon2id at OWASP's parameters (19 MiB,
		// 2 passes) takes ~10× longer, and the login, session, TOTP and
		// lockout tests spent most of their time hashing (TOTP and
		// sessions: 19 s → 6.5 s without it). The parameters and their
		// floor are tested in services/identity/domain; the hosts of this
		// package hash cheaply under -race only (child processes, started
		// above, keep the defaults).
		iddomain.SetArgon2(iddomain.Argon2Params{Memory: 1024, Time: 1, Threads: 1})
	}
	os.Exit(pgtest.Run(m))
}

const operator = "test-operator-token"

// startHost runs the four services in-process on dataDir, as `roster serve`
// does, until the test ends or stop is called.
func startHost(t *testing.T, dataDir, db string) (*svc.Host, func()) {
	t.Helper()
	return startHostAt(t, dataDir, db, nil)
}

// startHostAt is startHost with a fixed clock (nil: the real one).
func startHostAt(t *testing.T, dataDir, db string, now func() time.Time) (*svc.Host, func()) {
	t.Helper()
	h, err := svc.Start(context.Background(), svc.Config{
		DataDir: dataDir, HTTP: "127.0.0.1:0", NATSListen: "off", DB: db, OperatorToken: operator, Now: now,
	}, Services()...)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := h.Stop(context.Background()); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	select {
	case <-h.Ready():
	case err := <-h.Errors():
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready in 30 s")
	}
	return h, stop
}

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, token string, body any, hdr ...string) (int, map[string]any) {
	c.t.Helper()
	status, _, b := svctest.Do(c.t, method, c.base+path, token, body, hdr...)
	var out map[string]any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return status, out
}

func newAccount(email string) map[string]any {
	return map[string]any{
		"name": "Acme IT", "profile": "atera-msp", "plan": "growth", "billing_period": "monthly", "seats": 3,
		"admin": map[string]any{"email": email, "first_name": "Ada", "last_name": "Lovelace"},
	}
}

func count(body map[string]any) int {
	d, _ := body["data"].([]any)
	return len(d)
}

// An account created over HTTP reaches every service through the bus: the
// subscription (seatbilling), the built-in roles (rolepolicy) and the audit
// log (audit) — on both databases, and nothing is applied twice across a
// restart.
func TestAccountCreatedReachesEveryService(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		dir := t.TempDir()
		h, stop := startHost(t, dir, db)
		c := client{t, h.URL()}

		if code, _ := c.do("GET", "/readyz", "", nil); code != 200 {
			t.Fatalf("/readyz = %d", code)
		}
		if code, p := c.do("POST", "/v1/accounts", "", newAccount("a@acme.test")); code != 401 || p["type"] != "https://roster.dev/problems/unauthorized" {
			t.Fatalf("no token: %d %v", code, p)
		}
		if code, p := c.do("POST", "/v1/accounts", operator, map[string]any{"profile": "nope"}); code != 422 || len(p["errors"].([]any)) < 3 {
			t.Fatalf("bad account: %d %v", code, p)
		}

		code, created := c.do("POST", "/v1/accounts", operator, newAccount("a@acme.test"), "Idempotency-Key", "k1")
		if code != 201 {
			t.Fatalf("create: %d %v", code, created)
		}
		acc := created["account"].(map[string]any)["id"].(string)
		admin := created["admin"].(map[string]any)
		if !strings.HasPrefix(acc, "acc_") || admin["status"] != "invited" || admin["role"] != "Admin" || created["api_token"] == "" {
			t.Fatalf("created: %v", created)
		}
		// The same key and body: the first answer, nothing created again.
		code, again := c.do("POST", "/v1/accounts", operator, newAccount("a@acme.test"), "Idempotency-Key", "k1")
		if code != 201 || again["account"].(map[string]any)["id"] != acc || again["api_token"] != created["api_token"] {
			t.Fatalf("replay: %d %v", code, again)
		}
		// The same key with another body is refused.
		if code, p := c.do("POST", "/v1/accounts", operator, newAccount("b@acme.test"), "Idempotency-Key", "k1"); code != 422 ||
			p["type"] != "https://roster.dev/problems/idempotency-key-reused" {
			t.Fatalf("reused key: %d %v", code, p)
		}

		var sub map[string]any
		svctest.Eventually(t, "the subscription", func() bool {
			code, sub = c.do("GET", "/v1/accounts/"+acc+"/subscription", operator, nil)
			return code == 200
		})
		seats := sub["seats"].(map[string]any)
		if seats["total"] != 3.0 || seats["used"] != 1.0 || sub["unit_price"].(map[string]any)["amount"] != 18900.0 {
			t.Fatalf("subscription: %v", sub)
		}
		svctest.Eventually(t, "the built-in roles", func() bool {
			_, roles := c.do("GET", "/v1/accounts/"+acc+"/roles", operator, nil)
			return count(roles) == 2
		})
		// account.created, technician.invited (the first admin's set-password
		// mail), subscription.created, seat.assigned, 2 × role.created,
		// role.assigned.
		const records = 7
		svctest.Eventually(t, "the audit records", func() bool {
			_, a := c.do("GET", "/v1/accounts/"+acc+"/audit", operator, nil)
			return count(a) >= records
		})
		_, verify := c.do("GET", "/v1/accounts/"+acc+"/audit/verify", operator, nil)
		if verify["ok"] != true || verify["records"] != float64(records) {
			t.Fatalf("verify: %v", verify)
		}

		res, err := http.Get(h.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, want := range []string{`roster_events_published_total{service="identity",type="roster.identity.v1.AccountCreated"}`,
			`roster_events_consumed_total{consumer="audit_from_identity"`, `roster_http_request_duration_seconds_bucket`,
			`roster_consumer_pending_events{consumer="audit_from_identity",stream="ROSTER_IDENTITY"}`} {
			if !strings.Contains(string(m), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}

		// Restart on the same data: everything is still there, and no
		// event is applied a second time.
		stop()
		h2, _ := startHost(t, dir, db)
		c2 := client{t, h2.URL()}
		if code, got := c2.do("GET", "/v1/accounts/"+acc, operator, nil); code != 200 || got["id"] != acc {
			t.Fatalf("after restart: %d %v", code, got)
		}
		_, a := c2.do("GET", "/v1/accounts/"+acc+"/audit", operator, nil)
		_, verify = c2.do("GET", "/v1/accounts/"+acc+"/audit/verify", operator, nil)
		if count(a) != records || verify["ok"] != true {
			t.Fatalf("after restart: %d records, verify %v", count(a), verify)
		}
	})
}

// `roster serve` as users run it: it prints the URL and a generated operator
// token, serves /readyz, and drains and exits 0 on SIGTERM.
func TestServeCommandStartsAndDrains(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=serve --data "+dir+" --http 127.0.0.1:0 --nats-listen 127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 10)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var url, token string
	ready := regexp.MustCompile(`ready at (http://\S+)`)
	deadline := time.After(60 * time.Second)
	for url == "" || token == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("roster serve exited: %s", stderr.String())
			}
			if m := ready.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
			if strings.HasPrefix(strings.TrimSpace(l), "rop_") {
				token = strings.TrimSpace(l)
			}
		case <-deadline:
			t.Fatalf("no ready line: %s", stderr.String())
		}
	}
	b, err := os.ReadFile(dir + "/operator.token")
	if err != nil || strings.TrimSpace(string(b)) != token {
		t.Fatalf("operator.token: %q %v", b, err)
	}
	if fi, _ := os.Stat(dir + "/operator.token"); fi.Mode().Perm() != 0o600 {
		t.Fatalf("operator.token mode %v", fi.Mode())
	}
	res, err := http.Get(url + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", res, err)
	}
	c := client{t, url}
	if code, _ := c.do("POST", "/v1/accounts", token, newAccount("x@acme.test")); code != 201 {
		t.Fatalf("create with the printed token: %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "draining") {
		t.Errorf("no drain logged: %s", stderr.String())
	}
	fmt.Fprint(io.Discard, stderr.String())
}
