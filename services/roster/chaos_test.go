package roster

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	netmail "net/mail"
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

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	identitydomain "roster.dev/services/identity/domain"
)

// Crash consistency (issue 11, docs/reliability.md "Crash consistency"):
// `roster serve` runs as a child process on a data dir while a bulk
// onboarding drives it over HTTP as a client would — Idempotency-Keys and
// retries until an answer — and the child is killed with SIGKILL at random
// moments and restarted. Afterwards the invariants are checked through the
// HTTP API and in the services' databases.
//
// The short mode (the default, run by `make test`) kills 10 times; `make
// chaos` sets ROSTER_CHAOS_KILLS (and ROSTER_CHAOS_SEED to replay a run).
func TestChaosAllInOne(t *testing.T) {
	dir := t.TempDir()
	ch := &chaosChild{t: t, dir: dir, http: freeAddr(t), nats: freeAddr(t)}
	ch.procs = []*chaosProc{{name: "roster serve", http: ch.http,
		args: "serve --data " + dir + " --http " + ch.http + " --nats-listen " + ch.nats + " --log-level warn"}}
	runChaos(t, ch, func(*rand.Rand) *chaosProc { return ch.procs[0] })
}

// TestChaosSeparateProcesses is the same load and the same invariants with
// the four services as separate `roster serve <service>` processes on an
// external nats-server (JetStream), behind a front proxy that routes each
// path to its service as a load balancer would; each kill hits one of the
// five processes, the nats-server included. The services keep their data
// in PostgreSQL (a schema each, pgtest's throwaway server). It needs the nats-server binary
// (`make chaos` installs v2.15.2) and runs when ROSTER_CHAOS_SEPARATE=1.
func TestChaosSeparateProcesses(t *testing.T) {
	if os.Getenv("ROSTER_CHAOS_SEPARATE") == "" {
		t.Skip("set ROSTER_CHAOS_SEPARATE=1 (make chaos does) to run the separate-processes mode")
	}
	natsServer := svctest.NATSServerBinary(t)
	dir := t.TempDir()
	ch := &chaosChild{t: t, dir: dir, http: freeAddr(t), nats: freeAddr(t), pg: pgtest.DSN(t)}
	host, port, _ := net.SplitHostPort(ch.nats)
	ch.procs = append(ch.procs, &chaosProc{name: "nats-server", natsAddr: ch.nats,
		exe: natsServer, argv: []string{"-js", "-sd", filepath.Join(dir, "nats"), "-a", host, "-p", port}})
	replicas := map[string][]*chaosProc{}
	for _, s := range services {
		addr := freeAddr(t)
		p := &chaosProc{name: s, http: addr,
			args: "serve " + s + " --nats-url nats://" + ch.nats + " --db " + ch.pg + " --data " + dir + " --http " + addr + " --log-level warn"}
		ch.procs = append(ch.procs, p)
		replicas[s] = append(replicas[s], p)
	}
	ch.serveFront(replicas)
	runChaos(t, ch, func(rng *rand.Rand) *chaosProc { return ch.procs[rng.IntN(len(ch.procs))] })
}

// services are Roster's four services, as `roster serve <service>` names them.
var services = []string{"identity", "seatbilling", "rolepolicy", "audit"}

// serveFront listens on ch.http as the load balancer in front of the
// separate processes: each path goes to its service (serviceOf), spread
// round-robin over the service's replicas that are up (started and ready,
// as a load balancer's health check sees them); 502 while none is.
func (ch *chaosChild) serveFront(replicas map[string][]*chaosProc) {
	t := ch.t
	proxies := map[*chaosProc]*httputil.ReverseProxy{}
	for _, ps := range replicas {
		for _, p := range ps {
			rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: p.http})
			rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
			proxies[p] = rp
		}
	}
	var next atomic.Uint64
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps := replicas[svc.ServiceOf(r.URL.Path)]
		n := next.Add(1)
		for i := range ps {
			if p := ps[(int(n)+i)%len(ps)]; p.up.Load() {
				proxies[p].ServeHTTP(w, r)
				return
			}
		}
		w.WriteHeader(http.StatusBadGateway)
	})}
	ln, err := net.Listen("tcp", ch.http)
	if err != nil {
		t.Fatal(err)
	}
	go front.Serve(ln)
	t.Cleanup(func() { front.Close() })
}

// runChaos drives the load against ch while killing the process victim
// picks, then checks the invariants.
func runChaos(t *testing.T, ch *chaosChild, victim func(*rand.Rand) *chaosProc) {
	kills := envInt(t, "ROSTER_CHAOS_KILLS", 10)
	rng := chaosRand(t)
	t.Logf("chaos: %d kills", kills)
	ch.startAll(ch.procs)
	c, acc := ch.openAccount(t)

	// The load: workers add technicians until the kills are over; each
	// technician follows one script, every step retried until answered.
	load := startChaosLoad(newChaosDriver(t, c, acc, filepath.Join(ch.dir, "mail")), chaosWorkers)
	start := time.Now()
	for k := range kills {
		ch.awaitReady()
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		p := victim(rng)
		ch.kill(p)
		t.Logf("kill %d (%s) at %v: %d technicians started", k+1, p.name, time.Since(start).Round(time.Millisecond), load.next.Load())
		ch.start(p)
	}
	ch.awaitReady()
	techs := load.finish(t)
	t.Logf("chaos: %d kills survived, %d technicians onboarded in %v", kills, len(techs), time.Since(start).Round(time.Millisecond))

	checked := checkChaosInvariants(t, c, ch, acc, techs, kills)
	t.Logf("chaos: %d invariant checks passed", checked)
}

// chaosRand is the random source of the kill timings: seeded from the
// clock, or from ROSTER_CHAOS_SEED to replay a run.
func chaosRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ROSTER_CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("chaos: seed %d (ROSTER_CHAOS_SEED replays the kill timings)", seed)
	return rand.New(rand.NewPCG(seed, 11))
}

// startAll starts procs in order, waiting for each NATS server before
// what follows connects to it, and kills every process when the test ends.
func (ch *chaosChild) startAll(procs []*chaosProc) {
	for _, p := range procs {
		ch.start(p)
		if p.natsAddr != "" {
			ch.awaitReady() // the services connect to it at start
		}
	}
	ch.t.Cleanup(func() {
		for _, p := range procs {
			ch.kill(p)
		}
	})
	ch.awaitReady()
}

// openAccount creates the load's account through the front: a roster
// account with 4 seats, so that most technicians are added with a
// confirmed seat purchase (S-3) and charges are made under the kills.
func (ch *chaosChild) openAccount(t *testing.T) (*chaosClient, account) {
	t.Helper()
	c := &chaosClient{base: "http://" + ch.http, http: &http.Client{Timeout: 10 * time.Second}}
	// One roster account with 4 seats: most technicians are added with a
	// confirmed seat purchase (S-3), so charges are made under the kills.
	var created map[string]any
	c.until(t, "create the account", func() (bool, error) {
		code, body, err := c.do("POST", "/v1/accounts", operator, map[string]any{
			"name": "Chaos", "profile": "roster", "plan": "pro", "billing_period": "monthly", "seats": 4,
			"admin": map[string]any{"email": "admin@chaos.test", "first_name": "Ada", "last_name": "Admin"},
		}, "Idempotency-Key", "chaos-account")
		created = body
		return code == 201, err
	})
	return c, account{
		id: created["account"].(map[string]any)["id"].(string), token: created["api_token"].(string),
		adminID: created["admin"].(map[string]any)["id"].(string),
	}
}

// chaosLoad is the driver run by workers, each onboarding technician
// after technician until finish.
type chaosLoad struct {
	d       *chaosDriver
	workers int
	next    atomic.Int64
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

func startChaosLoad(d *chaosDriver, workers int) *chaosLoad {
	ctx, stop := context.WithCancel(context.Background())
	l := &chaosLoad{d: d, workers: workers, stop: stop}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				d.run(int(l.next.Add(1)))
			}
		}()
	}
	return l
}

// finish lets every worker complete its technician, fails t on the first
// failure of the driver, and returns what was acknowledged.
func (l *chaosLoad) finish(t *testing.T) []chaosTech {
	t.Helper()
	l.stop()
	l.wg.Wait()
	if err := l.d.failure(); err != nil {
		t.Fatal(err)
	}
	techs := l.d.snapshot()
	if len(techs) < l.workers {
		// Each worker was in a script when the kills began; a worker can
		// wait out a redelivery (AckWait) in one script.
		t.Fatalf("only %d technicians onboarded: the load did not run under the kills", len(techs))
	}
	return techs
}

// newChaosDriver is the load's driver for acc. HRIS (H-1): it sets up a
// secret and a mapping that hires department IT as technicians requesting
// Billing, buying a seat when none is free, so that a third of the adds
// come as signed webhooks and follow the same scripts afterwards.
func newChaosDriver(t *testing.T, c *chaosClient, acc account, mailDir string) *chaosDriver {
	t.Helper()
	var secret map[string]any
	c.until(t, "an HRIS secret", func() (bool, error) {
		code, body, err := c.do("POST", "/v1/accounts/"+acc.id+"/hris/secrets", acc.token, nil, "Idempotency-Key", "chaos-hris-secret")
		secret = body
		return code == 201, err
	})
	c.until(t, "the HRIS mapping", func() (bool, error) {
		code, _, err := c.do("PUT", "/v1/accounts/"+acc.id+"/hris/mapping", acc.token, map[string]any{
			"rules":   []any{map[string]any{"when": map[string]any{"department": "IT"}, "then": map[string]any{"kind": "technician", "role": "Billing"}}},
			"default": map[string]any{"kind": "ignore"}, "allow_seat_purchase": true,
		})
		return code == 200, err
	})
	hrisKey, err := identitydomain.DecodeSecret(secret["secret"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return &chaosDriver{c: c, acc: acc, mailDir: mailDir, hrisKey: hrisKey}
}

// mailResendAfter is how long a first login waits for its mail before
// asking for it again.
const mailResendAfter = 20 * time.Second

// chaosWorkers is how many clients drive the load at once.
const chaosWorkers = 4

// chaosTech is what the driver did to one technician and was acknowledged.
type chaosTech struct {
	email, id  string
	disabled   bool
	firstLogin bool
	// role is the role the technician must end with.
	role string
	// preassigned: a role assigned before the first login (R-6 roster:
	// applied at the first login, which never comes here).
	preassigned bool
	// hired: added by a signed HRIS webhook (H-1), not POST …/technicians.
	hired bool
}

type chaosDriver struct {
	c       *chaosClient
	acc     account
	mailDir string
	hrisKey []byte

	mu    sync.Mutex
	techs []chaosTech
	err   error
}

func (d *chaosDriver) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
	}
}

func (d *chaosDriver) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *chaosDriver) snapshot() []chaosTech {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]chaosTech(nil), d.techs...)
}

// run onboards technician i: added (requested role Billing, seat purchase
// confirmed) with POST …/technicians, or for a third of them by a signed
// HRIS webhook mapped to the same, then by i mod 4 left invited, disabled, logged in for the
// first time through the mailed link (then, every other one, given
// Account manager), or pre-assigned Account manager.
func (d *chaosDriver) run(i int) {
	base := "/v1/accounts/" + d.acc.id
	tc := chaosTech{email: fmt.Sprintf("t%04d@chaos.test", i), role: "Beginner"}
	var err error
	if tc.hired = (i/4)%3 == 1; tc.hired {
		tc.id, err = d.hire(i, tc.email)
	} else {
		var tech map[string]any
		err = d.c.retry(func() (bool, error) {
			code, body, err := d.c.do("POST", base+"/technicians", d.acc.token, map[string]any{
				"email": tc.email, "first_name": "Tess", "last_name": fmt.Sprint(i), "role": "Billing", "confirm_seat_purchase": true,
			}, "Idempotency-Key", "add-"+tc.email)
			if err == nil && code != 201 && code < 500 {
				return false, fmt.Errorf("add %s: %d %v (a retry with the same Idempotency-Key must answer the first 201)", tc.email, code, body)
			}
			tech = body
			return code == 201, err
		})
		if err == nil {
			tc.id = tech["id"].(string)
		}
	}
	if err != nil {
		d.fail(err)
		return
	}
	switch i % 4 {
	case 1:
		err = d.expect(200, "POST", base+"/technicians/"+tc.id+"/disable", nil, "disable-"+tc.id)
		tc.disabled = true
	case 2:
		err = d.firstLogin(tc.email, tc.id)
		tc.firstLogin, tc.role = true, "Billing"
		if err == nil && i%8 == 2 {
			// Wait for R-6's Billing at the first login, then change it.
			err = d.c.retry(func() (bool, error) {
				_, r, err := d.c.do("GET", base+"/technicians/"+tc.id+"/role", d.acc.token, nil)
				if err == nil && r["role"] != "Billing" {
					err = notYet{fmt.Errorf("no Billing yet: %v", r)}
				}
				return err == nil, err
			})
			if err == nil {
				err = d.expect(200, "PUT", base+"/technicians/"+tc.id+"/role", map[string]any{"role": "Account manager"}, "role-"+tc.id)
				tc.role = "Account manager"
			}
		}
	case 3:
		err = d.expect(200, "PUT", base+"/technicians/"+tc.id+"/role", map[string]any{"role": "Account manager"}, "role-"+tc.id)
		tc.preassigned = true
	}
	if err != nil {
		d.fail(fmt.Errorf("%s (%s, script %d): %w", tc.email, tc.id, i%4, err))
		return
	}
	d.mu.Lock()
	d.techs = append(d.techs, tc)
	d.mu.Unlock()
}

// hire adds technician i as an HRIS does (H-1): a signed employee.hired
// webhook, sent again with the same webhook-id until answered 202 (a
// replay answers the first delivery), then the delivery followed until
// applied; it returns the technician's id.
func (d *chaosDriver) hire(i int, email string) (string, error) {
	base := "/v1/accounts/" + d.acc.id
	raw, _ := json.Marshal(map[string]any{"type": "employee.hired", "employee": map[string]any{
		"id": fmt.Sprintf("E%04d", i), "email": email, "first_name": "Tess", "last_name": fmt.Sprint(i), "department": "IT",
	}})
	id := fmt.Sprintf("msg_chaos_%04d", i)
	ts := time.Now().Unix()
	sig := identitydomain.Sign(d.hrisKey, id, ts, raw)
	var delivery string
	err := d.c.retry(func() (bool, error) {
		code, body, err := d.c.do("POST", base+"/hris/generic", "", json.RawMessage(raw),
			"webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", sig)
		if err == nil && code != 202 && code < 500 {
			return false, fmt.Errorf("hire %s: %d %v", email, code, body)
		}
		delivery, _ = body["id"].(string)
		return code == 202, err
	})
	if err != nil {
		return "", err
	}
	var tech string
	err = d.c.retry(func() (bool, error) {
		code, body, err := d.c.do("GET", base+"/hris/deliveries/"+delivery, d.acc.token, nil)
		switch {
		case err != nil || code >= 500:
			return false, err
		case code != 200 || body["status"] == "failed" || body["status"] == "skipped":
			return false, fmt.Errorf("hire %s: delivery %s: %d %v", email, delivery, code, body)
		case body["status"] != "applied":
			return false, notYet{fmt.Errorf("delivery %s %v", delivery, body["status"])}
		}
		tech, _ = body["technician_id"].(string)
		return true, nil
	})
	return tech, err
}

// expect sends a request with an Idempotency-Key until it is answered, and
// fails unless the answer is want.
func (d *chaosDriver) expect(want int, method, path string, body any, key string) error {
	return d.c.retry(func() (bool, error) {
		code, got, err := d.c.do(method, path, d.acc.token, body, "Idempotency-Key", key)
		if err == nil && code == 404 && strings.HasSuffix(path, "/role") {
			// rolepolicy learns of the technician from TechnicianCreated,
			// after identity's 201: not there yet.
			return false, notYet{errors.New("no technician in rolepolicy yet")}
		}
		if err == nil && code != want && code < 500 {
			return false, fmt.Errorf("%s %s: %d %v, want %d", method, path, code, got, want)
		}
		return code == want, err
	})
}

// firstLogin sets the password through the mailed link (the first login,
// I-6). A retry whose first attempt was applied before a kill answers 410:
// the effect is there, which the invariants check.
//
// With no mail after mailResendAfter, it asks for the invitation again as
// a user would: a kill just after the mailer claimed a batch (DueMail's
// lease, for identity replicas) delays those mails by the lease, 1 min,
// longer than a client waits here (docs/reliability.md).
func (d *chaosDriver) firstLogin(email, id string) error {
	tried := false
	start := time.Now()
	resent := false
	return d.c.retry(func() (bool, error) {
		tokens := invitationTokens(d.mailDir, email)
		if len(tokens) == 0 {
			if !resent && time.Since(start) > mailResendAfter {
				code, body, err := d.c.do("POST", "/v1/accounts/"+d.acc.id+"/technicians/"+id+"/invitation", d.acc.token, nil,
					"Idempotency-Key", "resend-"+id)
				if err == nil && code >= 300 && code < 500 {
					return false, fmt.Errorf("resend the invitation to %s: %d %v", email, code, body)
				}
				resent = err == nil && code < 300
			}
			return false, notYet{errors.New("no mail yet")}
		}
		for _, tok := range tokens {
			code, body, err := d.c.do("POST", "/v1/auth/password", "", map[string]any{"token": tok, "password": "correct horse battery staple"})
			if err != nil || code >= 500 {
				tried = true
				return false, err
			}
			switch {
			case code == 204:
				return true, nil
			case code == 410 && tried:
				return true, nil
			case code == 410 || code == 400:
				continue // another mail's token (a resend), or not yet valid
			default:
				return false, fmt.Errorf("set password for %s: %d %v", email, code, body)
			}
		}
		return false, notYet{errors.New("no usable token yet")}
	})
}

// invitationTokens reads the set-password tokens mailed to email (file
// transport, one .eml per message).
func invitationTokens(dir, email string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	var out []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			continue
		}
		if to, err := netmail.ParseAddress(msg.Header.Get("To")); err != nil || to.Address != email {
			continue
		}
		body, _ := io.ReadAll(msg.Body)
		if m := setPasswordLink.FindSubmatch(body); m != nil {
			out = append(out, string(m[2]))
		}
	}
	return out
}

// checkChaosInvariants checks, after a settle period, the invariants of
// issue 11 and returns how many individual checks passed.
func checkChaosInvariants(t *testing.T, c *chaosClient, ch *chaosChild, acc account, techs []chaosTech, kills int) int {
	t.Helper()
	base := "/v1/accounts/" + acc.id
	n := 0
	ok := func(cond bool, format string, args ...any) {
		t.Helper()
		if !cond {
			t.Errorf(format, args...)
			return
		}
		n++
	}
	occupied := 1 // the admin
	for _, tc := range techs {
		if !tc.disabled {
			occupied++
		}
	}

	// Settle: the asynchronous effects of the last requests land.
	var sub map[string]any
	var list []map[string]any
	var records []map[string]any
	settled := func() bool {
		_, sub, _ = c.do("GET", base+"/subscription", acc.token, nil)
		seats, _ := sub["seats"].(map[string]any)
		if seats == nil || seats["used"] != float64(occupied) {
			return false
		}
		list = c.all(t, base+"/technicians", acc.token)
		for _, tc := range techs {
			if tc.firstLogin || tc.role != "Beginner" {
				_, r, _ := c.do("GET", base+"/technicians/"+tc.id+"/role", acc.token, nil)
				if r["role"] != tc.role {
					return false
				}
			}
		}
		records = c.all(t, base+"/audit", acc.token)
		return len(records) >= len(techs)*3
	}
	// First the bus: every outbox relayed, every consumer caught up. An
	// event a killed consumer held unacked comes back after AckWait (30 s).
	deadline := time.Now().Add(75 * time.Second)
	for !ch.outboxEmpty(t) || !ch.consumersSettled(t) {
		if time.Now().After(deadline) {
			t.Errorf("the bus did not settle in 75 s")
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			t.Errorf("not settled: subscription %v", sub)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, sub, _ = c.do("GET", base+"/subscription", acc.token, nil)
	list = c.all(t, base+"/technicians", acc.token)
	records = c.all(t, base+"/audit", acc.token)

	// Every acknowledged add exists exactly once, in the state the driver
	// left it, with the role R-6 gives it for its first-login state.
	byEmail := map[string][]map[string]any{}
	for _, tech := range list {
		byEmail[tech["email"].(string)] = append(byEmail[tech["email"].(string)], tech)
	}
	ok(len(list) == len(techs)+1, "%d technicians, want %d added and the admin", len(list), len(techs))
	for _, tc := range techs {
		got := byEmail[tc.email]
		if !assertOne(t, &n, len(got) == 1, "%s: %d technicians", tc.email, len(got)) {
			continue
		}
		tech := got[0]
		ok(tech["id"] == tc.id, "%s: id %v, the 201 said %s", tc.email, tech["id"], tc.id)
		want := map[bool]string{true: "active", false: "invited"}[tc.firstLogin]
		if tc.disabled {
			want = "disabled"
		}
		ok(tech["status"] == want, "%s: status %v, want %s", tc.email, tech["status"], want)
		_, r, _ := c.do("GET", base+"/technicians/"+tc.id+"/role", acc.token, nil)
		ok(r["role"] == tc.role, "%s: role %v, want %s (first login %v, preassigned %v)", tc.email, r["role"], tc.role, tc.firstLogin, tc.preassigned)
		ok(r["first_login_done"] == tc.firstLogin, "%s: first_login_done %v, want %v", tc.email, r["first_login_done"], tc.firstLogin)
	}

	// Seats: one per enabled technician, never above the total; every
	// seat bought is one charge for one technician (S-3).
	seats, _ := sub["seats"].(map[string]any)
	total := int(seats["total"].(float64))
	ok(seats["used"] == float64(occupied), "seats used %v, want %d", seats["used"], occupied)
	ok(occupied <= total, "occupancy %d above %d seats", occupied, total)
	charges := c.all(t, base+"/charges", acc.token)
	charged := map[string]int{}
	for _, chg := range charges {
		ok(chg["reason"] == "seat_purchase", "charge %v is not a seat purchase", chg)
		id, _ := chg["technician_id"].(string)
		charged[id]++
	}
	ok(len(charges) == total-4, "%d charges for %d seats bought", len(charges), total-4)
	ids := map[string]chaosTech{}
	for _, tc := range techs {
		ids[tc.id] = tc
	}
	for id, k := range charged {
		_, known := ids[id]
		ok(known && k == 1, "technician %q charged %d times (known: %v)", id, k, known)
	}

	// Audit: the chain verifies; one record per event (the record id is
	// the event's), and one record per effect the driver was told of.
	_, v, _ := c.do("GET", base+"/audit/verify", acc.token, nil)
	ok(v["ok"] == true && v["records"] == float64(len(records)), "audit verify %v, %d records listed", v, len(records))
	perTarget := map[string]int{}
	seen := map[string]bool{}
	for _, r := range records {
		id := r["id"].(string)
		ok(!seen[id], "audit record %s twice", id)
		seen[id] = true
		target, _ := r["target"].(map[string]any)
		tid, _ := target["id"].(string)
		perTarget[r["action"].(string)+" "+tid]++
	}
	for _, tc := range techs {
		ok(perTarget["technician.created "+tc.id] == 1, "%s: %d technician.created records", tc.email, perTarget["technician.created "+tc.id])
		if tc.disabled {
			ok(perTarget["technician.disabled "+tc.id] == 1, "%s: %d technician.disabled records", tc.email, perTarget["technician.disabled "+tc.id])
		}
		if tc.firstLogin {
			ok(perTarget["technician.first_login "+tc.id] == 1, "%s: %d technician.first_login records", tc.email, perTarget["technician.first_login "+tc.id])
		}
	}

	// HRIS: one delivery per webhook-id however often it was sent, each
	// applied to the technician hired.
	deliveries := c.all(t, base+"/hris/deliveries", acc.token)
	hired := map[string]bool{}
	for _, tc := range techs {
		if tc.hired {
			hired[tc.id] = true
		}
	}
	ok(len(deliveries) == len(hired), "%d HRIS deliveries for %d hires", len(deliveries), len(hired))
	for _, dl := range deliveries {
		id, _ := dl["technician_id"].(string)
		ok(dl["status"] == "applied" && hired[id], "HRIS delivery %v: not an applied hire of a hired technician", dl)
	}

	// The dead-letter subject is empty.
	nc, err := ch.connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	dls, err := eventbus.ListDeadLetters(nc, 10)
	nc.Close()
	ok(err == nil && len(dls) == 0, "dead letters: %v %v", dls, err)

	// The data, read beside the running server: no outbox row left, one
	// occupied seat per enabled technician and none for anyone else, every
	// charge a confirmed purchase reservation, no live hold.
	n += ch.checkData(t, acc.id, ids, occupied, kills)
	return n
}

func assertOne(t *testing.T, n *int, cond bool, format string, args ...any) bool {
	t.Helper()
	if !cond {
		t.Errorf(format, args...)
		return false
	}
	*n++
	return true
}

// chaosChild is the system under test: `roster serve` child processes
// (the test binary playing the roster binary, see TestMain) on fixed ports
// and one data dir, and in the separate mode a nats-server; http is where
// clients send requests, nats the NATS every process uses.
type chaosChild struct {
	t          *testing.T
	dir        string
	http, nats string
	procs      []*chaosProc
	dbs        map[string]*sql.DB
	// pg is the PostgreSQL URL of the separate mode ("": SQLite files).
	pg string
	// pgAs, when set, is each service's own URL (its role, deploy/postgres).
	pgAs map[string]string
	// natsURL, when set, is how the checks connect to NATS (a cluster, a
	// user) instead of nats://<nats>.
	natsURL string
}

func (ch *chaosChild) connectNATS() (*nats.Conn, error) {
	if ch.natsURL != "" {
		return nats.Connect(ch.natsURL)
	}
	return nats.Connect("nats://" + ch.nats)
}

// chaosProc is one process: roster (args for the test binary's childEnv)
// or another executable (exe, argv).
type chaosProc struct {
	name     string
	args     string
	exe      string
	argv     []string
	env      []string // more environment
	http     string   // polled at /readyz
	natsAddr string   // dialled, or
	readyURL string   // polled for a 200
	cmd      *exec.Cmd
	// up is set once the process is ready and cleared when it is killed:
	// the front's health check.
	up   atomic.Bool
	done chan struct{}
	log  lockedWriter
}

func (ch *chaosChild) start(p *chaosProc) {
	ch.t.Helper()
	var cmd *exec.Cmd
	if p.exe != "" {
		cmd = exec.Command(p.exe, p.argv...)
		cmd.Env = append(os.Environ(), p.env...)
	} else {
		cmd = exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+p.args, "ROSTER_OPERATOR_TOKEN="+operator)
	}
	cmd.Stdout = io.Discard
	if p.log.w == nil {
		p.log.w = &bytes.Buffer{}
	}
	cmd.Stderr = &p.log
	if err := cmd.Start(); err != nil {
		ch.t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.done) }()
}

// kill sends SIGKILL and waits for the process to be gone.
func (ch *chaosChild) kill(p *chaosProc) {
	if p.cmd == nil {
		return
	}
	p.up.Store(false)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// awaitReady waits until every process is ready: /readyz answers 200, or
// the NATS port accepts connections.
func (ch *chaosChild) awaitReady() {
	ch.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range ch.procs {
		if p.cmd == nil {
			continue
		}
		for !p.ready() {
			select {
			case <-p.done:
				ch.t.Fatalf("%s exited:\n%s", p.name, p.log.String())
			default:
			}
			if time.Now().After(deadline) {
				ch.t.Fatalf("%s not ready in 60 s:\n%s", p.name, p.log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.up.Store(true)
	}
}

func (p *chaosProc) ready() bool {
	if p.readyURL != "" {
		res, err := http.Get(p.readyURL)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}
	if p.natsAddr != "" {
		c, err := net.DialTimeout("tcp", p.natsAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	res, err := http.Get("http://" + p.http + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == 200
}

// db opens a service's SQLite file beside the running server (WAL lets a
// reader in another process see the last commit).
func (ch *chaosChild) db(t *testing.T, service string) *sql.DB {
	t.Helper()
	if db := ch.dbs[service]; db != nil {
		return db
	}
	if ch.pg != "" {
		dsn := ch.pg
		if u := ch.pgAs[service]; u != "" {
			dsn = u
		}
		db, err := store.Open(context.Background(), store.Config{URL: dsn, Service: service})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if ch.dbs == nil {
			ch.dbs = map[string]*sql.DB{}
		}
		ch.dbs[service] = db.DB
		return db.DB
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(ch.dir, service+".db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if ch.dbs == nil {
		ch.dbs = map[string]*sql.DB{}
	}
	ch.dbs[service] = db
	return db
}

func (ch *chaosChild) outboxEmpty(t *testing.T) bool {
	for _, s := range services {
		var n int
		if err := ch.db(t, s).QueryRow(`SELECT count(*) FROM roster_outbox`).Scan(&n); err != nil || n != 0 {
			return false
		}
	}
	return true
}

// consumersSettled reports whether every durable consumer of every stream
// has nothing pending and nothing awaiting an ack.
func (ch *chaosChild) consumersSettled(t *testing.T) bool {
	nc, err := ch.connectNATS()
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return false
	}
	for stream := range js.StreamNames() {
		for info := range js.ConsumersInfo(stream) {
			if info.NumPending != 0 || info.NumAckPending != 0 {
				return false
			}
		}
	}
	return true
}

func (ch *chaosChild) checkData(t *testing.T, accountID string, techs map[string]chaosTech, occupied, kills int) int {
	t.Helper()
	n := 0
	ok := func(cond bool, format string, args ...any) {
		t.Helper()
		if !cond {
			t.Errorf(format, args...)
			return
		}
		n++
	}
	for _, s := range services {
		var rows int
		err := ch.db(t, s).QueryRow(`SELECT count(*) FROM roster_outbox`).Scan(&rows)
		ok(err == nil && rows == 0, "%s: %d outbox rows left (%v)", s, rows, err)
	}
	sb := ch.db(t, "seatbilling")
	seats := map[string]string{}
	rs, err := sb.Query(`SELECT technician_id, status FROM seats WHERE account_id = $1`, accountID)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var id, status string
		_ = rs.Scan(&id, &status)
		seats[id] = status
	}
	rs.Close()
	var identityTechs int
	_ = ch.db(t, "identity").QueryRow(`SELECT count(*) FROM technicians WHERE account_id = $1`, accountID).Scan(&identityTechs)
	ok(identityTechs == len(techs)+1, "identity holds %d technicians, want %d", identityTechs, len(techs)+1)
	occ := 0
	for id, status := range seats {
		tc, known := techs[id]
		if !known {
			continue // the admin
		}
		if status == "occupied" {
			occ++
		}
		ok(status == map[bool]string{true: "released", false: "occupied"}[tc.disabled], "%s: seat %s (disabled %v)", tc.email, status, tc.disabled)
	}
	for id, tc := range techs {
		_, has := seats[id]
		ok(has, "%s: no seat row", tc.email)
	}
	ok(len(seats) == len(techs)+1, "%d seat rows for %d technicians", len(seats), len(techs)+1)
	ok(occ+1 == occupied, "%d occupied seats, want %d", occ+1, occupied)

	var unmatched, purchases, held int
	_ = sb.QueryRow(`SELECT count(*) FROM charges c LEFT JOIN reservations r
		ON r.account_id = c.account_id AND r.reservation_id = c.reservation_id
		WHERE c.account_id = $1 AND (r.reservation_id IS NULL OR r.status <> 'confirmed' OR r.purchase <> 1 OR r.technician_id <> c.technician_id)`,
		accountID).Scan(&unmatched)
	ok(unmatched == 0, "%d charges without their confirmed purchase", unmatched)
	_ = sb.QueryRow(`SELECT count(*) FROM reservations r WHERE account_id = $1 AND status = 'confirmed' AND purchase = 1
		AND NOT EXISTS (SELECT 1 FROM charges c WHERE c.account_id = r.account_id AND c.reservation_id = r.reservation_id)`,
		accountID).Scan(&purchases)
	ok(purchases == 0, "%d confirmed purchases without their charge", purchases)
	_ = sb.QueryRow(`SELECT count(*) FROM reservations WHERE account_id = $1 AND status = 'held' AND expires_at > $2`,
		accountID, store.Time(time.Now())).Scan(&held)
	// A hold made for a request that a kill cut short (between identity's
	// call to seatbilling and its commit) is reused by the client's retry
	// with the same Idempotency-Key, so none is left (before that fix,
	// each cut request left one, blocking a seat for its 2-minute TTL).
	ok(held == 0, "%d live seat holds left after the settle period (%d kills)", held, kills)
	return n
}

// chaosClient is an HTTP client that tells transport errors (the server
// was killed) from answers.
type chaosClient struct {
	base string
	http *http.Client
	// answered counts the requests answered below 500 (throughput), and
	// notFound the 404s among them (mostly a state not there yet, polled).
	answered, notFound atomic.Int64
}

func (c *chaosClient) do(method, path, token string, body any, hdr ...string) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	if res.StatusCode < 500 {
		c.answered.Add(1)
	}
	if res.StatusCode == 404 {
		c.notFound.Add(1)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out, nil
}

// retry calls f until it reports done, for up to 2 minutes while f's
// error is transient (the server is down, a 5xx, a state not there yet);
// any other error is returned at once.
func (c *chaosClient) retry(f func() (bool, error)) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		done, err := f()
		if done {
			return nil
		}
		if err != nil && !transient(err) {
			return err
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer in 2 minutes: %w", last)
}

// notYet is a state the client waits for (a mail, an event applied).
type notYet struct{ error }

// transient reports a transport error or a wait for a state to appear.
func transient(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var ny notYet
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ny)
}

func (c *chaosClient) until(t *testing.T, what string, f func() (bool, error)) {
	t.Helper()
	if err := c.retry(f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// all follows next_cursor through a listing.
func (c *chaosClient) all(t *testing.T, path, token string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		p := path + "?limit=200"
		if cursor != "" {
			p += "&cursor=" + cursor
		}
		code, body, err := c.do("GET", p, token, nil)
		if err != nil || code != 200 {
			t.Fatalf("GET %s: %d %v %v", p, code, body, err)
		}
		data, _ := body["data"].([]any)
		for _, d := range data {
			out = append(out, d.(map[string]any))
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return ""
	}
	return l.w.String()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}
