// Package consistency is the read-your-writes suite of issue 18: each
// write→read pair of the contract is driven many times with no pause and
// no retry between the write and the read, against `roster serve` (the
// all-in-one) and against the four services as separate processes behind
// a path-routing proxy, and every read must already show the write's
// effects (docs/architecture.md "Read-your-writes").
//
// The processes are this test binary playing `roster` (TestMain), built
// without the race detector: the suite is about what a client sees, and
// it drives thousands of requests.
package consistency

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/roster"
)

const childEnv = "ROSTER_CONSISTENCY_CHILD"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		os.Exit(roster.Main(strings.Fields(args)))
	}
	os.Exit(pgtest.Run(m))
}

const operator = "consistency-operator-token"

// rounds is how many times each pair is driven (ROSTER_CONSISTENCY_N,
// default 200), by workers at once (ROSTER_CONSISTENCY_WORKERS, default 8).
func rounds(t *testing.T) (n, workers int) {
	n, workers = 200, 8
	for name, p := range map[string]*int{"ROSTER_CONSISTENCY_N": &n, "ROSTER_CONSISTENCY_WORKERS": &workers} {
		if v := os.Getenv(name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < 1 {
				t.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*p = i
		}
	}
	return n, workers
}

func TestAllInOne(t *testing.T) {
	dir := t.TempDir()
	d := &deployment{t: t, dir: dir, front: freeAddr(t)}
	d.procs = []*proc{{name: "roster", http: d.front,
		args: "serve --data " + dir + " --http " + d.front + " --nats-listen off --log-level warn"}}
	d.start()
	drive(t, d)
}

func TestSeparateProcesses(t *testing.T) {
	dir := t.TempDir()
	d := &deployment{t: t, dir: dir, front: freeAddr(t)}
	natsAddr := freeAddr(t)
	host, port, _ := net.SplitHostPort(natsAddr)
	d.procs = append(d.procs, &proc{name: "nats-server", natsAddr: natsAddr,
		exe: svctest.NATSServerBinary(t), argv: []string{"-js", "-sd", filepath.Join(dir, "nats"), "-a", host, "-p", port}})
	pg := pgtest.DSN(t)
	backends := map[string]*proc{}
	for _, s := range []string{"identity", "seatbilling", "rolepolicy", "audit"} {
		addr := freeAddr(t)
		p := &proc{name: s, http: addr,
			args: "serve " + s + " --nats-url nats://" + natsAddr + " --db " + pg + " --data " + dir + " --http " + addr + " --log-level warn"}
		d.procs = append(d.procs, p)
		backends[s] = p
	}
	d.start()
	d.serveFront(backends)
	drive(t, d)
}

// drive runs every pair rounds() times against d and fails on any stale
// answer.
func drive(t *testing.T, d *deployment) {
	n, workers := rounds(t)
	c := &httpClient{base: "http://" + d.front, http: &http.Client{Timeout: 30 * time.Second}}
	began := time.Now()
	parallel(t, n, workers, func(i int) error { return rosterRound(c, d.mailDir(), i) })
	t.Logf("roster profile: %d rounds in %v", n, time.Since(began).Round(time.Millisecond))
	// promote → demote: n rounds spread over one account per worker (the
	// pairs of one account follow each other).
	for _, profile := range []string{"atera-msp", "atlan"} {
		began = time.Now()
		parallel(t, workers, workers, func(w int) error {
			return promoteDemote(c, profile, w, (n+workers-1-w)/workers)
		})
		t.Logf("%s: promote → demote %d times in %v", profile, n, time.Since(began).Round(time.Millisecond))
	}
}

// parallel calls f(0) … f(n-1), workers at a time, and fails t with every
// error (at most 10 shown).
func parallel(t *testing.T, n, workers int, f func(int) error) {
	t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("round %d: %w", i, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == 10 {
			t.Errorf("… and %d more", len(errs)-10)
			break
		}
		t.Error(err)
	}
}

// rosterRound is one round of the pairs on a fresh roster account: every
// read comes right after the write it checks.
func rosterRound(c *httpClient, mailDir string, i int) error {
	// Account create → subscription, roles, catalog.
	acc, err := c.createAccount("roster", "growth", 3, fmt.Sprintf("admin%d@rw.test", i))
	if err != nil {
		return err
	}
	base := "/v1/accounts/" + acc.id
	if err := c.expect("GET", base+"/subscription", operator, nil, 200, func(b obj) error {
		return seats(b, 3, 1, 0)
	}); err != nil {
		return fmt.Errorf("account create → subscription: %w", err)
	}
	if err := c.expect("GET", base+"/roles", operator, nil, 200, func(b obj) error {
		if names := roleNames(b); !strings.Contains(names, "Admin") || !strings.Contains(names, "Beginner") {
			return fmt.Errorf("roles %s", names)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("account create → roles: %w", err)
	}
	if err := c.expect("GET", "/v1/permissions?profile=roster", acc.token, nil, 200, func(b obj) error {
		if d, _ := b["data"].([]any); len(d) == 0 {
			return fmt.Errorf("an empty catalog")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("account create → catalog: %w", err)
	}

	// Technician create → Beginner in the answer and on read, seats used.
	tess, err := c.created("POST", base+"/technicians", acc.token, tech("tess", i, "Billing"), func(b obj) error {
		if b["role"] != "Beginner" {
			return fmt.Errorf("the 201 shows role %v, want Beginner (R-6)", b["role"])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("technician create: %w", err)
	}
	if err := c.expect("GET", base+"/technicians/"+tess, acc.token, nil, 200, func(b obj) error {
		if b["role"] != "Beginner" {
			return fmt.Errorf("role %v, want Beginner", b["role"])
		}
		return nil
	}); err != nil {
		return fmt.Errorf("technician create → role: %w", err)
	}
	if err := c.expect("GET", base+"/subscription", acc.token, nil, 200, func(b obj) error { return seats(b, 3, 2, 0) }); err != nil {
		return fmt.Errorf("technician create → seats used: %w", err)
	}

	// The last seat, then a confirmed purchase → subscription.
	uma, err := c.created("POST", base+"/technicians", acc.token, tech("uma", i, "Beginner"), nil)
	if err != nil {
		return err
	}
	if err := c.expect("POST", base+"/technicians", acc.token, tech("vic", i, "Beginner"), 402, nil); err != nil {
		return fmt.Errorf("no free seat: %w", err)
	}
	buy := tech("vic", i, "Beginner")
	buy["confirm_seat_purchase"] = true
	if _, err := c.created("POST", base+"/technicians", acc.token, buy, nil); err != nil {
		return fmt.Errorf("confirmed purchase: %w", err)
	}
	if err := c.expect("GET", base+"/subscription", acc.token, nil, 200, func(b obj) error { return seats(b, 4, 4, 0) }); err != nil {
		return fmt.Errorf("seat purchase confirm → subscription: %w", err)
	}

	// Disable → add the replacement at once: the freed seat is reused (S-4),
	// no 402 and no second charge.
	if err := c.expect("POST", base+"/technicians/"+uma+"/disable", acc.token, nil, 200, nil); err != nil {
		return err
	}
	if _, err := c.created("POST", base+"/technicians", acc.token, tech("wes", i, "Beginner"), nil); err != nil {
		return fmt.Errorf("disable → add replacement: %w", err)
	}
	if err := c.expect("GET", base+"/charges", acc.token, nil, 200, func(b obj) error {
		if d, _ := b["data"].([]any); len(d) != 1 {
			return fmt.Errorf("%d charges, want the one purchase", len(d))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("disable → add replacement: %w", err)
	}
	// Enable (buying the seat it needs) → seats used.
	if err := c.expect("POST", base+"/technicians/"+uma+"/enable", acc.token, obj{"confirm_seat_purchase": true}, 200, nil); err != nil {
		return err
	}
	if err := c.expect("GET", base+"/subscription", acc.token, nil, 200, func(b obj) error { return seats(b, 5, 5, 0) }); err != nil {
		return fmt.Errorf("enable → seats used: %w", err)
	}

	// First login → the requested role applied (roster, R-6) and the
	// access check sees it.
	session, err := c.firstLogin(acc, tess, fmt.Sprintf("tess%d@rw.test", i))
	if err != nil {
		return err
	}
	if err := c.expect("GET", base+"/technicians/"+tess, acc.token, nil, 200, func(b obj) error {
		if b["role"] != "Billing" {
			return fmt.Errorf("role %v, want the requested Billing", b["role"])
		}
		return nil
	}); err != nil {
		return fmt.Errorf("first login → role applied: %w", err)
	}
	if err := c.access(acc, tess, "system.manage_billing", true); err != nil {
		return fmt.Errorf("first login → access check: %w", err)
	}
	// Role change → access check.
	if err := c.expect("PUT", base+"/technicians/"+tess+"/role", acc.token, obj{"role": "Admin"}, 200, nil); err != nil {
		return err
	}
	if err := c.access(acc, tess, "ticketing.all_tickets", true); err != nil {
		return fmt.Errorf("role change → access check: %w", err)
	}

	// Token revoke → 401.
	var tokID, tok string
	if err := c.expect("POST", base+"/tokens", acc.token, obj{"name": "script", "scopes": []string{"technicians:read"}}, 201, func(b obj) error {
		tokID, _ = b["id"].(string)
		tok, _ = b["token"].(string)
		return nil
	}); err != nil {
		return err
	}
	if err := c.expect("GET", base+"/technicians", tok, nil, 200, nil); err != nil {
		return fmt.Errorf("a fresh token: %w", err)
	}
	if err := c.expect("DELETE", base+"/tokens/"+tokID, acc.token, nil, 204, nil); err != nil {
		return err
	}
	if err := c.expect("GET", base+"/technicians", tok, nil, 401, nil); err != nil {
		return fmt.Errorf("token revoke → 401: %w", err)
	}

	// Technician disable → that technician's session 401.
	if err := c.expect("GET", "/v1/auth/sessions", session, nil, 200, nil); err != nil {
		return fmt.Errorf("a fresh session: %w", err)
	}
	if err := c.expect("POST", base+"/technicians/"+tess+"/disable", acc.token, nil, 200, nil); err != nil {
		return err
	}
	if err := c.expect("GET", "/v1/auth/sessions", session, nil, 401, nil); err != nil {
		return fmt.Errorf("technician disable → session 401: %w", err)
	}

	// Licence removal → pending reductions.
	if err := c.expect("POST", base+"/technicians/"+uma+"/licence-removal", acc.token, nil, 200, nil); err != nil {
		return err
	}
	if err := c.expect("GET", base+"/subscription", acc.token, nil, 200, func(b obj) error {
		if b["pending_reductions"] != 1.0 {
			return fmt.Errorf("pending_reductions %v, want 1", b["pending_reductions"])
		}
		return nil
	}); err != nil {
		return fmt.Errorf("licence removal → subscription: %w", err)
	}
	return nil
}

// promoteDemote: on one account of profile, a second admin-to-be logs in
// once; then n times, promote one of the two and at once demote the other
// — never refused as the last admin (I-9).
func promoteDemote(c *httpClient, profile string, w, n int) error {
	plan, member, req := "growth", "Beginner", "role"
	if profile == "atlan" {
		plan, member, req = "premier", "Member", "base_role"
	}
	first := fmt.Sprintf("first%d@%s.test", w, profile)
	acc, err := c.createAccount(profile, plan, 3, first)
	if err != nil {
		return err
	}
	base := "/v1/accounts/" + acc.id
	body := tech("second", w, member)
	if profile == "atlan" {
		delete(body, "role")
		body[req] = member
	}
	second, err := c.created("POST", base+"/technicians", acc.token, body, nil)
	if err != nil {
		return err
	}
	// atera: roles change only after a first login, the first
	// admin's too; atlan: the login accepts the invitation.
	if _, err := c.firstLogin(acc, second, fmt.Sprintf("second%d@rw.test", w)); err != nil {
		return err
	}
	if profile != "atlan" {
		if _, err := c.firstLogin(acc, acc.adminID, first); err != nil {
			return err
		}
	}
	admins := [2]string{acc.adminID, second}
	for i := range n {
		up, down := admins[(i+1)%2], admins[i%2]
		if err := c.expect("PUT", base+"/technicians/"+up+"/role", acc.token, obj{"role": "Admin"}, 200, nil); err != nil {
			return fmt.Errorf("round %d: promote: %w", i, err)
		}
		if err := c.expect("PUT", base+"/technicians/"+down+"/role", acc.token, obj{"role": member}, 200, nil); err != nil {
			return fmt.Errorf("round %d: promote → demote the other admin: %w", i, err)
		}
	}
	return nil
}

type obj = map[string]any

type account struct{ id, token, adminID string }

func tech(name string, i int, role string) obj {
	return obj{"email": fmt.Sprintf("%s%d@rw.test", name, i), "first_name": name, "last_name": "Rw", "role": role}
}

func seats(b obj, total, used, pending float64) error {
	s, _ := b["seats"].(map[string]any)
	if s["total"] != total || s["used"] != used || b["pending_reductions"] != pending {
		return fmt.Errorf("seats %v pending %v, want total %v used %v pending %v", s, b["pending_reductions"], total, used, pending)
	}
	return nil
}

func roleNames(b obj) string {
	var names []string
	d, _ := b["data"].([]any)
	for _, r := range d {
		if m, ok := r.(map[string]any); ok {
			names = append(names, fmt.Sprint(m["name"]))
		}
	}
	return strings.Join(names, ",")
}

type httpClient struct {
	base string
	http *http.Client
}

func (c *httpClient) do(method, path, token string, body any) (int, obj, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	if p := res.Header.Get("Roster-Consistency"); p != "" {
		return res.StatusCode, nil, fmt.Errorf("%s %s answered %d with Roster-Consistency: %s", method, path, res.StatusCode, p)
	}
	var out obj
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			return res.StatusCode, nil, fmt.Errorf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return res.StatusCode, out, nil
}

// expect sends one request and checks its status and, when check is set,
// its body.
func (c *httpClient) expect(method, path, token string, body any, want int, check func(obj) error) error {
	code, b, err := c.do(method, path, token, body)
	if err != nil {
		return err
	}
	if code != want {
		return fmt.Errorf("%s %s: %d %v, want %d", method, path, code, b, want)
	}
	if check != nil {
		if err := check(b); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// created POSTs and returns the new resource's id.
func (c *httpClient) created(method, path, token string, body any, check func(obj) error) (string, error) {
	var id string
	err := c.expect(method, path, token, body, 201, func(b obj) error {
		id, _ = b["id"].(string)
		if check != nil {
			return check(b)
		}
		return nil
	})
	return id, err
}

func (c *httpClient) createAccount(profile, plan string, seats int, admin string) (account, error) {
	req := obj{"name": "RW " + profile, "profile": profile, "plan": plan, "billing_period": "monthly", "seats": seats,
		"admin": obj{"email": admin, "first_name": "Ada", "last_name": "Admin"}}
	if profile == "atlan" {
		req["billing_period"], req["price_per_seat"] = "annual", 5000
	}
	var acc account
	err := c.expect("POST", "/v1/accounts", operator, req, 201, func(b obj) error {
		a, _ := b["account"].(map[string]any)
		ad, _ := b["admin"].(map[string]any)
		acc.id, _ = a["id"].(string)
		acc.adminID, _ = ad["id"].(string)
		acc.token, _ = b["api_token"].(string)
		return nil
	})
	return acc, err
}

// firstLogin gives the technician a temporary password and logs in once;
// it returns the session token.
func (c *httpClient) firstLogin(acc account, id, email string) (string, error) {
	const password = "consistency passphrase 7"
	if err := c.expect("POST", "/v1/accounts/"+acc.id+"/technicians/"+id+"/password", acc.token, obj{"password": password}, 204, nil); err != nil {
		return "", err
	}
	var session string
	err := c.expect("POST", "/v1/auth/login", "", obj{"account_id": acc.id, "email": email, "password": password}, 200, func(b obj) error {
		session, _ = b["session_token"].(string)
		if b["first_login"] != true {
			return fmt.Errorf("first_login %v", b["first_login"])
		}
		return nil
	})
	return session, err
}

func (c *httpClient) access(acc account, techID, perm string, allowed bool) error {
	return c.expect("POST", "/v1/accounts/"+acc.id+"/access/check", acc.token, obj{"technician_id": techID, "permission": perm}, 200, func(b obj) error {
		if b["allowed"] != allowed {
			return fmt.Errorf("%s: %v, want allowed=%v", perm, b, allowed)
		}
		return nil
	})
}

// deployment is a set of processes behind one HTTP address.
type deployment struct {
	t     *testing.T
	dir   string
	front string
	procs []*proc
}

func (d *deployment) mailDir() string { return filepath.Join(d.dir, "mail") }

// proc is one process: this binary playing roster (args), or another
// executable (exe, argv).
type proc struct {
	name     string
	args     string
	exe      string
	argv     []string
	http     string // polled at /readyz
	natsAddr string // dialled until it accepts
	cmd      *exec.Cmd
	log      lockedBuffer
	done     chan struct{}
}

// start starts every process in order, each ready before the next, and
// kills them all when the test ends (their logs shown if it failed).
func (d *deployment) start() {
	t := d.t
	t.Cleanup(func() {
		for _, p := range d.procs {
			if p.cmd != nil {
				if dump := os.Getenv("ROSTER_CONSISTENCY_DUMP"); dump != "" && t.Failed() && p.exe == "" {
					// The goroutines of a process that let a write wait.
					_ = p.cmd.Process.Signal(syscall.SIGQUIT)
					<-p.done
					_ = os.WriteFile(filepath.Join(dump, p.name+".log"), []byte(p.log.String()), 0o644)
				}
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				<-p.done
			}
			if t.Failed() {
				t.Logf("%s log (tail):\n%s", p.name, tail(p.log.String(), 3000))
			}
		}
	})
	for _, p := range d.procs {
		if p.exe != "" {
			p.cmd = exec.Command(p.exe, p.argv...)
		} else {
			p.cmd = exec.Command(os.Args[0], "-test.run=^$")
			p.cmd.Env = append(os.Environ(), childEnv+"="+p.args, "ROSTER_OPERATOR_TOKEN="+operator)
		}
		p.cmd.Stderr = &p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.done = make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		if p.natsAddr != "" {
			d.await(p, func() bool {
				c, err := net.DialTimeout("tcp", p.natsAddr, time.Second)
				if err == nil {
					c.Close()
				}
				return err == nil
			})
		}
	}
	for _, p := range d.procs {
		if p.http != "" {
			d.await(p, func() bool {
				res, err := http.Get("http://" + p.http + "/readyz")
				if err != nil {
					return false
				}
				res.Body.Close()
				return res.StatusCode == 200
			})
		}
	}
}

// await polls a process's readiness at start-up (not a write's effect).
func (d *deployment) await(p *proc, ready func() bool) {
	deadline := time.Now().Add(2 * time.Minute)
	for !ready() {
		select {
		case <-p.done:
			d.t.Fatalf("%s exited: %s", p.name, tail(p.log.String(), 3000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s not ready in 2 minutes: %s", p.name, tail(p.log.String(), 3000))
		}
	}
}

// serveFront listens on d.front as the load balancer before the separate
// processes: each path goes to the service that serves it.
func (d *deployment) serveFront(backends map[string]*proc) {
	proxies := map[string]*httputil.ReverseProxy{}
	for s, p := range backends {
		proxies[s] = httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: p.http})
	}
	ln, err := net.Listen("tcp", d.front)
	if err != nil {
		d.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[svc.ServiceOf(r.URL.Path)].ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	d.t.Cleanup(func() { srv.Close() })
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
