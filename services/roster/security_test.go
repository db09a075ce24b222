package roster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
)

// withPassword gives a technician a temporary password (I-4's admin route).
func withPassword(t *testing.T, c client, acc account, techID, password string) {
	t.Helper()
	if code, body := c.do("POST", "/v1/accounts/"+acc.id+"/technicians/"+techID+"/password", acc.token, map[string]any{"password": password}); code != 204 {
		t.Fatalf("temporary password: %d %v", code, body)
	}
}

// auditRecords waits until the account's audit log holds want records of
// action, and returns them.
func auditRecords(t *testing.T, c client, acc account, action string, want int) []map[string]any {
	t.Helper()
	var got []map[string]any
	svctest.EventuallySeen(t, fmt.Sprintf("%d %s audit records", want, action), func() bool {
		_, a := c.do("GET", "/v1/accounts/"+acc.id+"/audit?limit=500&action="+action, acc.token, nil)
		got = nil
		d, _ := a["data"].([]any)
		for _, r := range d {
			got = append(got, r.(map[string]any))
		}
		return len(got) == want
	}, func() string { return fmt.Sprint(got) })
	return got
}

// L-2: fifty parallel wrong passwords lock the technician exactly once
// (the counter is atomic), after which the right password gets 423 too;
// every failure and the lock are audited with the source address; the
// locks escalate (1 min, 2 min) until an admin must unlock; the admin's
// unlock (audited) lets the right password in — on SQLite and PostgreSQL.
func TestLockoutParallelAttemptsAndAdminUnlock(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
		h := startHostWith(t, svc.Config{DataDir: t.TempDir(), DB: db, Now: clock.Now})
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "pro", 3)
		base := "/v1/accounts/" + acc.id
		tess := addTechnician(t, c, acc, "tess@acme.test")
		const password = "correct horse battery"
		withPassword(t, c, acc, tess, password)

		// Escalation policy: the third lock in a row waits for an admin.
		code, pol := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"lockout_admin_after": 2})
		if code != 200 || pol["lockout_threshold"] != 5.0 || pol["lockout_admin_after"] != 2.0 || pol["lockout_max_seconds"] != 900.0 {
			t.Fatalf("put policy: %d %v", code, pol)
		}
		if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"lockout_threshold": 0, "session_overflow": "x"}); code != 422 || len(p["errors"].([]any)) != 2 {
			t.Fatalf("bad policy: %d %v", code, p)
		}
		if _, got := c.do("GET", base+"/security-policy", acc.token, nil); got["lockout_threshold"] != 5.0 || got["lockout_admin_after"] != 2.0 {
			t.Fatalf("policy after a refused PUT: %v", got)
		}

		const n = 50
		var wg sync.WaitGroup
		codes := make(chan int, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body, err := post(h.URL()+"/v1/auth/login", map[string]any{"account_id": acc.id, "email": "tess@acme.test", "password": "wrong horse battery"})
				if err != nil {
					t.Error(err)
				}
				if code == 423 && (problemType(body) != problems+"account-locked" || body["retry_after"] != 60.0) {
					t.Errorf("423: %v", body)
				}
				codes <- code
			}()
		}
		wg.Wait()
		close(codes)
		counts := map[int]int{}
		for code := range codes {
			counts[code]++
		}
		// The first four failures answer 401; the fifth locks (423), and
		// every one after, whenever it was checked, is refused as locked.
		if counts[401] != 4 || counts[423] != n-4 {
			t.Fatalf("answers: %v, want 4×401 and %d×423", counts, n-4)
		}
		code, p := login(c, acc.id, "tess@acme.test", password)
		if code != 423 || problemType(p) != problems+"account-locked" {
			t.Fatalf("right password while locked: %d %v", code, p)
		}

		// Audited: every attempt with its source address, one lock.
		failed := auditRecords(t, c, acc, "login.failed", n+1)
		for _, r := range failed {
			if r["source_address"] != "127.0.0.1" {
				t.Fatalf("login.failed without the source address: %v", r)
			}
		}
		locked := auditRecords(t, c, acc, "technician.locked", 1)
		if locked[0]["source_address"] != "127.0.0.1" || locked[0]["target"].(map[string]any)["id"] != tess {
			t.Fatalf("technician.locked: %v", locked[0])
		}

		// The lock ends after a minute; five more failures lock for two.
		clock.Advance(61 * time.Second)
		for i := range 5 {
			code, p := login(c, acc.id, "tess@acme.test", "wrong horse battery")
			if want := map[bool]int{true: 423, false: 401}[i == 4]; code != want {
				t.Fatalf("failure %d after the first lock: %d %v", i+1, code, p)
			}
			if i == 4 && p["retry_after"] != 120.0 {
				t.Fatalf("second lock: %v", p)
			}
		}
		clock.Advance(121 * time.Second)
		for range 5 {
			login(c, acc.id, "tess@acme.test", "wrong horse battery")
		}
		// The third lock in a row waits for an admin, however long.
		clock.Advance(24 * time.Hour)
		code, p = login(c, acc.id, "tess@acme.test", password)
		if code != 423 || p["retry_after"] != nil {
			t.Fatalf("third lock: %d %v", code, p)
		}
		auditRecords(t, c, acc, "technician.locked", 3)

		// The admin unlocks (behind technicians:write, Idempotency-Key).
		route := base + "/technicians/" + tess + "/unlock"
		if code, _ := c.do("POST", route, "", nil); code != 401 {
			t.Fatalf("unlock without a token: %d", code)
		}
		code, u := c.do("POST", route, acc.token, nil, "Idempotency-Key", "unlock-1")
		if code != 200 || u["was_locked"] != true || u["technician_id"] != tess {
			t.Fatalf("unlock: %d %v", code, u)
		}
		if code, again := c.do("POST", route, acc.token, nil, "Idempotency-Key", "unlock-1"); code != 200 || again["was_locked"] != true {
			t.Fatalf("unlock retried: %d %v", code, again)
		}
		if code, p := c.do("POST", base+"/technicians/tech_nope/unlock", acc.token, nil); code != 404 {
			t.Fatalf("unlock unknown: %d %v", code, p)
		}
		if code, s := login(c, acc.id, "tess@acme.test", password); code != 200 || s["session_token"] == nil {
			t.Fatalf("login after the unlock: %d %v", code, s)
		}
		unlocked := auditRecords(t, c, acc, "technician.unlocked", 1)
		if unlocked[0]["source_address"] != "127.0.0.1" {
			t.Fatalf("technician.unlocked: %v", unlocked[0])
		}
		// A successful login restarts the escalation: four failures do
		// not lock, a fifth locks for one minute again.
		for i := range 5 {
			code, p := login(c, acc.id, "tess@acme.test", "wrong horse battery")
			if i == 4 && (code != 423 || p["retry_after"] != 60.0) {
				t.Fatalf("lock after a success: %d %v", code, p)
			}
		}
	})
}
