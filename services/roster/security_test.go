package roster

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

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
	// Not in parallel with the others: its many concurrent requests
	// meet deadlines that a machine busy with other tests can miss.
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
		code, hdr, p := svctestDo(t, "POST", h.URL()+"/v1/auth/login", "", map[string]any{"account_id": acc.id, "email": "tess@acme.test", "password": password})
		if code != 423 || problemType(p) != problems+"account-locked" || hdr.Get("Retry-After") == "" {
			t.Fatalf("right password while locked: %d %v %v", code, hdr, p)
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
		// The CLI: the policy, and the unlock.
		cli := []string{"--server=" + h.URL(), "--token=" + acc.token, "--account=" + acc.id}
		out, err := run(t, append([]string{"security", "policy", "--set", "lockout_threshold=7"}, cli...)...)
		if err != nil || !strings.Contains(out, "lockout_threshold") || !strings.Contains(out, "7") {
			t.Fatalf("security policy --set: %v\n%s", err, out)
		}
		out, err = run(t, append([]string{"security", "unlock", tess}, cli...)...)
		if err != nil || !strings.Contains(out, tess+" unlocked") {
			t.Fatalf("security unlock: %v\n%s", err, out)
		}
		if code, _ := login(c, acc.id, "tess@acme.test", password); code != 200 {
			t.Fatalf("login after the CLI unlock: %d", code)
		}
	})
}

// loginAs logs in with a device label and returns the session token.
func loginAs(t *testing.T, c client, acc account, email, password, device string) string {
	t.Helper()
	code, s := c.do("POST", "/v1/auth/login", "", map[string]any{"account_id": acc.id, "email": email, "password": password, "device_label": device})
	if code != 200 {
		t.Fatalf("login from %s: %d %v", device, code, s)
	}
	return s["session_token"].(string)
}

// L-4: sessions record device, address and last use; the account's cap
// ends the oldest or refuses the new login; the technician lists and
// revokes their own, an admin anyone's (also from the CLI); idle and
// absolute expiry; a password change and a disable end them all (I-7).
func TestSessionsCapListRevokeAndExpiry(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
		h := startHostWith(t, svc.Config{DataDir: t.TempDir(), DB: db, Now: clock.Now})
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "pro", 3)
		base := "/v1/accounts/" + acc.id
		tess := addTechnician(t, c, acc, "tess@acme.test")
		const password = "correct horse battery"
		withPassword(t, c, acc, tess, password)
		live := func(token string) bool {
			code, _ := c.do("GET", "/v1/auth/sessions", token, nil)
			return code == 200
		}
		listOwn := func(token string) []map[string]any {
			t.Helper()
			code, body := c.do("GET", "/v1/auth/sessions", token, nil)
			if code != 200 {
				t.Fatalf("own sessions: %d %v", code, body)
			}
			var out []map[string]any
			for _, s := range body["data"].([]any) {
				out = append(out, s.(map[string]any))
			}
			return out
		}

		// Cap 2, ending the oldest.
		if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"max_sessions": 2, "session_overflow": "end_oldest"}); code != 200 {
			t.Fatalf("policy: %d %v", code, p)
		}
		laptop := loginAs(t, c, acc, "tess@acme.test", password, "laptop")
		clock.Advance(time.Second)
		phone := loginAs(t, c, acc, "tess@acme.test", password, "phone")
		clock.Advance(time.Second)
		tablet := loginAs(t, c, acc, "tess@acme.test", password, "tablet")
		if live(laptop) || !live(phone) || !live(tablet) {
			t.Fatalf("end_oldest: laptop %v phone %v tablet %v", live(laptop), live(phone), live(tablet))
		}
		ss := listOwn(tablet)
		if len(ss) != 2 || ss[0]["device_label"] != "tablet" || ss[0]["current"] != true || ss[1]["device_label"] != "phone" ||
			ss[1]["current"] != false || ss[0]["source_address"] != "127.0.0.1" || ss[0]["last_used_at"] == nil {
			t.Fatalf("own sessions: %v", ss)
		}
		auditRecords(t, c, acc, "sessions.revoked", 1)

		// Refuse: a third login is 409 until the technician ends one.
		if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"session_overflow": "refuse"}); code != 200 {
			t.Fatalf("policy: %d %v", code, p)
		}
		code, p := c.do("POST", "/v1/auth/login", "", map[string]any{"account_id": acc.id, "email": "tess@acme.test", "password": password})
		if code != 409 || problemType(p) != problems+"session-limit" || p["max_sessions"] != 2.0 {
			t.Fatalf("refused login: %d %v", code, p)
		}
		if !live(phone) || !live(tablet) {
			t.Fatal("a refused login ended a session")
		}
		phoneID := ss[1]["id"].(string)
		// A technician's route takes a session token.
		if code, _ := c.do("DELETE", "/v1/auth/sessions/"+phoneID, operator, nil); code != 403 {
			t.Fatalf("operator on a technician's route: %d", code)
		}
		if code, p := c.do("DELETE", "/v1/auth/sessions/"+phoneID, tablet, nil); code != 204 {
			t.Fatalf("revoke own: %d %v", code, p)
		}
		if live(phone) {
			t.Fatal("revoked session still live")
		}
		desk := loginAs(t, c, acc, "tess@acme.test", password, "desk")

		// The admin's view and revocation, with an API token.
		code, list := c.do("GET", base+"/technicians/"+tess+"/sessions", acc.token, nil)
		if code != 200 || count(list) != 2 {
			t.Fatalf("admin list: %d %v", code, list)
		}
		deskID := list["data"].([]any)[0].(map[string]any)["id"].(string)
		if code, _ := c.do("DELETE", base+"/technicians/"+tess+"/sessions/"+deskID, acc.token, nil); code != 204 || live(desk) {
			t.Fatalf("admin revoke: %d", code)
		}
		if code, _ := c.do("DELETE", base+"/technicians/"+tess+"/sessions/"+deskID, acc.token, nil); code != 404 {
			t.Fatalf("revoke twice: %d", code)
		}
		// Logout ends the current session.
		if code, _ := c.do("POST", "/v1/auth/logout", tablet, nil); code != 204 || live(tablet) {
			t.Fatalf("logout: %d", code)
		}

		// Idle 30 min, absolute 1 h: a session used every 20 minutes
		// lives until the absolute expiry; one left alone ends after 30.
		if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"session_idle_minutes": 30, "session_absolute_hours": 1, "max_sessions": 0}); code != 200 {
			t.Fatalf("policy: %d %v", code, p)
		}
		busy := loginAs(t, c, acc, "tess@acme.test", password, "busy")
		idle := loginAs(t, c, acc, "tess@acme.test", password, "idle")
		for range 2 {
			clock.Advance(20 * time.Minute)
			if !live(busy) {
				t.Fatal("a session in use ended")
			}
		}
		if live(idle) {
			t.Fatal("a session unused for 40 minutes is live")
		}
		clock.Advance(19 * time.Minute)
		if !live(busy) {
			t.Fatal("busy session ended before its absolute expiry")
		}
		clock.Advance(2 * time.Minute)
		if live(busy) {
			t.Fatal("a session lived past its absolute expiry")
		}

		// The technician changes their password: the other sessions end,
		// the caller's stays; a wrong current password is a failure.
		mine := loginAs(t, c, acc, "tess@acme.test", password, "mine")
		theirs := loginAs(t, c, acc, "tess@acme.test", password, "theirs")
		if code, p := c.do("POST", "/v1/auth/password/change", mine, map[string]any{"current_password": "wrong horse battery", "new_password": "yet another passphrase"}); code != 401 {
			t.Fatalf("change with a wrong password: %d %v", code, p)
		}
		if code, p := c.do("POST", "/v1/auth/password/change", mine, map[string]any{"current_password": password, "new_password": "short"}); code != 422 ||
			p["errors"].([]any)[0].(map[string]any)["field"] != "new_password" {
			t.Fatalf("change to a weak password: %d %v", code, p)
		}
		if code, p := c.do("POST", "/v1/auth/password/change", mine, map[string]any{"current_password": password, "new_password": password + "!"}); code != 204 {
			t.Fatalf("change: %d %v", code, p)
		}
		if !live(mine) || live(theirs) {
			t.Fatalf("after a change: mine %v theirs %v", live(mine), live(theirs))
		}

		// An admin's password change ends every session, and so does a
		// disable.
		one := loginAs(t, c, acc, "tess@acme.test", password+"!", "one")
		withPassword(t, c, acc, tess, "another long passphrase")
		if live(one) || live(mine) {
			t.Fatal("session survived a password change")
		}
		two := loginAs(t, c, acc, "tess@acme.test", "another long passphrase", "two")
		out, err := run(t, "security", "sessions", tess, "--server="+h.URL(), "--token="+acc.token, "--account="+acc.id)
		if err != nil || !strings.Contains(out, "two") || !strings.Contains(out, "127.0.0.1") {
			t.Fatalf("security sessions: %v\n%s", err, out)
		}
		if out, err := run(t, "security", "revoke", tess, "--server="+h.URL(), "--token="+acc.token, "--account="+acc.id); err != nil || live(two) {
			t.Fatalf("security revoke: %v\n%s", err, out)
		}
		three := loginAs(t, c, acc, "tess@acme.test", "another long passphrase", "three")
		if code, p := c.do("POST", base+"/technicians/"+tess+"/disable", acc.token, nil); code != 200 || live(three) {
			t.Fatalf("disable: %d %v", code, p)
		}
		revoked := auditRecords(t, c, acc, "sessions.revoked", 8)
		reasons := map[string]int{}
		for _, r := range revoked {
			reasons[r["data"].(map[string]any)["reason"].(string)]++
		}
		if reasons["session_cap"] != 1 || reasons["revoked"] != 3 || reasons["logout"] != 1 || reasons["password_changed"] != 2 || reasons["disabled"] != 1 {
			t.Fatalf("revocations audited: %v", reasons)
		}
	})
}

// I-7, I-9 with the token cache (issue 18): what identity answers for a
// session changes on the very next request through any service — the
// scopes of a promoted or demoted admin, a revoked session, a disabled
// technician — although every process keeps verified tokens.
func TestSessionChangesReachTheNextRequest(t *testing.T) {
	t.Parallel()
	h := startHostWith(t, svc.Config{DataDir: t.TempDir(), Now: fixedClock})
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "pro", 3)
	base := "/v1/accounts/" + acc.id
	tess := addTechnician(t, c, acc, "tess@acme.test")
	const password = "correct horse battery"
	withPassword(t, c, acc, tess, password)
	ses := loginAs(t, c, acc, "tess@acme.test", password, "laptop")
	// Routes of three services, read with the session.
	routes := []string{base + "/technicians", base + "/subscription", base + "/roles"}
	status := func(token string) []int {
		var out []int
		for _, r := range routes {
			code, _ := c.do("GET", r, token, nil)
			out = append(out, code)
		}
		return out
	}
	expect := func(what string, token string, want int) {
		t.Helper()
		for i, code := range status(token) {
			if code != want {
				t.Fatalf("%s: GET %s %d, want %d", what, routes[i], code, want)
			}
		}
	}
	for range 3 {
		expect("a technician without a role's scopes", ses, 403)
	}
	for range 5 {
		if code, p := c.do("PUT", base+"/technicians/"+tess+"/role", acc.token, map[string]any{"role": "Admin"}); code != 200 {
			t.Fatalf("promote: %d %v", code, p)
		}
		expect("promoted to Admin", ses, 200)
		if code, p := c.do("PUT", base+"/technicians/"+tess+"/role", acc.token, map[string]any{"role": "Beginner"}); code != 200 {
			t.Fatalf("demote: %d %v", code, p)
		}
		expect("demoted", ses, 403)
	}
	if code, p := c.do("PUT", base+"/technicians/"+tess+"/role", acc.token, map[string]any{"role": "Admin"}); code != 200 {
		t.Fatalf("promote: %d %v", code, p)
	}
	other := loginAs(t, c, acc, "tess@acme.test", password, "phone")
	expect("a new session", other, 200)
	expect("the first session", ses, 200)
	code, list := c.do("GET", base+"/technicians/"+tess+"/sessions", acc.token, nil)
	if code != 200 || count(list) != 2 {
		t.Fatalf("sessions: %d %v", code, list)
	}
	var phoneID string
	for _, s := range list["data"].([]any) {
		if s.(map[string]any)["device_label"] == "phone" {
			phoneID = s.(map[string]any)["id"].(string)
		}
	}
	if code, _ := c.do("DELETE", base+"/technicians/"+tess+"/sessions/"+phoneID, acc.token, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	expect("a revoked session", other, 401)
	expect("the session left", ses, 200)
	if code, p := c.do("POST", base+"/technicians/"+tess+"/disable", acc.token, nil); code != 200 {
		t.Fatalf("disable: %d %v", code, p)
	}
	expect("a disabled technician's session", ses, 401)
}

var resetLink = regexp.MustCompile(`(?m)^\S+/reset-password\?token=(rsr_[A-Za-z0-9_-]+)\r?$`)

// resetMails returns the reset tokens mailed to email, from the mail dir.
func resetMails(t *testing.T, dir, email string) []string {
	t.Helper()
	var out []string
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(msg.Header.Get("To"), email) {
			continue
		}
		body, _ := io.ReadAll(msg.Body)
		if m := resetLink.FindSubmatch(body); m != nil {
			out = append(out, string(m[1]))
		}
	}
	return out
}

// L-5: a reset request answers the same 202, byte for byte, whether or not
// the email exists (and does the same work: one queued request); only a
// technician with a password is mailed a link. The link works once,
// sets the password, ends every session and lifts the lock (L-2).
func TestPasswordResetWithoutEnumeration(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, db string) {
		dir := t.TempDir()
		clock := &testClock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
		h := startHostWith(t, svc.Config{DataDir: dir, DB: db, Now: clock.Now})
		c := client{t, h.URL()}
		mailDir := filepath.Join(dir, "mail")
		acc := createAccount(t, c, "roster", "pro", 3)
		tess := addTechnician(t, c, acc, "tess@acme.test")
		const password = "correct horse battery"
		withPassword(t, c, acc, tess, password)
		session := loginAs(t, c, acc, "tess@acme.test", password, "laptop")
		for range 5 { // locked (L-2)
			login(c, acc.id, "tess@acme.test", "wrong horse battery")
		}
		if code, _ := login(c, acc.id, "tess@acme.test", password); code != 423 {
			t.Fatalf("not locked: %d", code)
		}

		ask := func(acc, email string) (int, string) {
			code, _, body := svctest.Do(t, "POST", h.URL()+"/v1/auth/password-reset", "", map[string]any{"account_id": acc, "email": email})
			return code, string(body)
		}
		codeU, unknown := ask(acc.id, "nobody@acme.test")
		codeO, otherAcc := ask("acc_nope", "tess@acme.test")
		codeK, known := ask(acc.id, "Tess@acme.test")
		if codeU != 202 || codeO != 202 || codeK != 202 || unknown != known || otherAcc != known {
			t.Fatalf("answers differ: %d %s / %d %s / %d %s", codeU, unknown, codeO, otherAcc, codeK, known)
		}
		if code, _ := ask(acc.id, ""); code != 422 {
			t.Fatalf("no email: %d", code)
		}
		var tokens []string
		svctest.Eventually(t, "the reset mail", func() bool { tokens = resetMails(t, mailDir, "tess@acme.test"); return len(tokens) == 1 })
		if n := len(resetMails(t, mailDir, "nobody@acme.test")); n != 0 {
			t.Fatalf("%d mails to an unknown email", n)
		}
		token := tokens[0]

		if code, p := c.do("POST", "/v1/auth/password-reset/confirm", "", map[string]any{"token": token, "password": "short"}); code != 422 {
			t.Fatalf("weak password: %d %v", code, p)
		}
		if code, p := c.do("POST", "/v1/auth/password-reset/confirm", "", map[string]any{"token": "rsr_nope", "password": "a new long passphrase"}); code != 400 || problemType(p) != problems+"reset-invalid" {
			t.Fatalf("unknown token: %d %v", code, p)
		}
		if code, p := c.do("POST", "/v1/auth/password-reset/confirm", "", map[string]any{"token": token, "password": "a new long passphrase"}); code != 204 {
			t.Fatalf("confirm: %d %v", code, p)
		}
		if code, p := c.do("POST", "/v1/auth/password-reset/confirm", "", map[string]any{"token": token, "password": "a third long passphrase"}); code != 410 || problemType(p) != problems+"reset-used" {
			t.Fatalf("second use: %d %v", code, p)
		}
		if code, _ := c.do("GET", "/v1/auth/sessions", session, nil); code != 401 {
			t.Fatalf("session after the reset: %d", code)
		}
		if code, _ := login(c, acc.id, "tess@acme.test", password); code != 401 {
			t.Fatalf("old password: %d", code)
		}
		loginAs(t, c, acc, "tess@acme.test", "a new long passphrase", "after reset")
		unlocked := auditRecords(t, c, acc, "technician.unlocked", 1)
		if unlocked[0]["data"].(map[string]any)["reason"] != "password_reset" {
			t.Fatalf("unlock: %v", unlocked[0])
		}
		requested := auditRecords(t, c, acc, "password_reset.requested", 1)
		if requested[0]["source_address"] != "127.0.0.1" {
			t.Fatalf("reset request audited: %v", requested[0])
		}

		// A link expires after an hour.
		ask(acc.id, "tess@acme.test")
		svctest.Eventually(t, "the second reset mail", func() bool { tokens = resetMails(t, mailDir, "tess@acme.test"); return len(tokens) == 2 })
		clock.Advance(61 * time.Minute)
		for _, tok := range tokens {
			if tok == token {
				continue
			}
			if code, p := c.do("POST", "/v1/auth/password-reset/confirm", "", map[string]any{"token": tok, "password": "a third long passphrase"}); code != 410 || problemType(p) != problems+"reset-expired" {
				t.Fatalf("expired link: %d %v", code, p)
			}
		}
	})
}

// L-3: under a policy requiring a second factor, a technician without one
// gets an enrolment-only session; enrolment gives a provisioning URI and a
// QR code, confirmation ten recovery codes. A TOTP code works once in its
// window (replay refused), a recovery code once ever; second-factor
// failures lock on their own. "admins" requires it of admins only.
func TestTOTPSecondFactor(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
		h := startHostWith(t, svc.Config{DataDir: t.TempDir(), DB: db, Now: clock.Now})
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "pro", 3)
		base := "/v1/accounts/" + acc.id
		tess := addTechnician(t, c, acc, "tess@acme.test")
		const password = "correct horse battery"
		withPassword(t, c, acc, tess, password)
		withPassword(t, c, acc, acc.adminID, password)
		totpLogin := func(email, code string) (int, map[string]any) {
			return c.do("POST", "/v1/auth/login", "", map[string]any{"account_id": acc.id, "email": email, "password": password, "totp": code})
		}

		// "admins": only the admin's session is enrolment-only.
		if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"require_second_factor": "admins"}); code != 200 {
			t.Fatalf("policy: %d %v", code, p)
		}
		if _, s := totpLogin("tess@acme.test", ""); s["second_factor_enrollment_required"] != false {
			t.Fatalf("technician under admins: %v", s)
		}
		if _, s := totpLogin("admin@roster.test", ""); s["second_factor_enrollment_required"] != true {
			t.Fatalf("admin under admins: %v", s)
		}

		// "all": Tess's session serves enrolment only.
		if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"require_second_factor": "all"}); code != 200 {
			t.Fatalf("policy: %d %v", code, p)
		}
		code, s := totpLogin("tess@acme.test", "")
		if code != 200 || s["second_factor_enrollment_required"] != true {
			t.Fatalf("login without a factor: %d %v", code, s)
		}
		session := s["session_token"].(string)
		if code, p := c.do("GET", "/v1/auth/sessions", session, nil); code != 403 || problemType(p) != problems+"second-factor-enrollment-required" {
			t.Fatalf("enrolment-only session elsewhere: %d %v", code, p)
		}
		code, e := c.do("POST", "/v1/auth/totp/enroll", session, nil)
		if code != 201 || !strings.HasPrefix(e["provisioning_uri"].(string), "otpauth://totp/Roster:tess@acme.test?") {
			t.Fatalf("enroll: %d %v", code, e)
		}
		qr, err := base64.StdEncoding.DecodeString(e["qr_png"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(qr)); err != nil {
			t.Fatalf("qr_png: %v", err)
		}
		secret := e["secret"].(string)
		codeAt := func(at time.Time) string {
			code, err := totp.GenerateCode(secret, at)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
		if code, p := c.do("POST", "/v1/auth/totp/confirm", session, map[string]any{"code": "000000"}); code != 422 {
			t.Fatalf("wrong confirmation code: %d %v", code, p)
		}
		code, rc := c.do("POST", "/v1/auth/totp/confirm", session, map[string]any{"code": codeAt(clock.Now())})
		if code != 200 || len(rc["recovery_codes"].([]any)) != 10 {
			t.Fatalf("confirm: %d %v", code, rc)
		}
		recovery := stringList(rc["recovery_codes"])
		if code, _ := c.do("GET", "/v1/auth/sessions", session, nil); code != 200 {
			t.Fatalf("session after the enrolment: %d", code)
		}
		if code, _ := c.do("POST", "/v1/auth/totp/enroll", session, nil); code != 409 {
			t.Fatalf("enroll twice: %d", code)
		}

		// The password alone is not enough now.
		if code, p := totpLogin("tess@acme.test", ""); code != 401 || problemType(p) != problems+"second-factor-required" {
			t.Fatalf("no code: %d %v", code, p)
		}
		// The confirmation's code cannot be replayed in its window.
		if code, p := totpLogin("tess@acme.test", codeAt(clock.Now())); code != 401 || problemType(p) != problems+"invalid-second-factor" {
			t.Fatalf("replayed confirmation code: %d %v", code, p)
		}
		// Ten parallel logins with the next code: exactly one gets in.
		clock.Advance(30 * time.Second)
		next := codeAt(clock.Now())
		var wg sync.WaitGroup
		oks := make(chan map[string]any, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, s, err := post(h.URL()+"/v1/auth/login", map[string]any{"account_id": acc.id, "email": "tess@acme.test", "password": password, "totp": next})
				if err != nil {
					t.Error(err)
				}
				if code == 200 {
					oks <- s
				}
			}()
		}
		wg.Wait()
		close(oks)
		if len(oks) != 1 {
			t.Fatalf("%d parallel logins with one code got in, want 1", len(oks))
		}
		if s := <-oks; s["second_factor_enrollment_required"] != false {
			t.Fatalf("login with the next code: %v", s)
		}
		// The nine refused replays locked the second factor (L-3: five
		// failures); an admin unlocks.
		if code, p := totpLogin("tess@acme.test", next); code != 423 {
			t.Fatalf("replayed code after nine replays: %d %v", code, p)
		}
		if code, _ := c.do("POST", base+"/technicians/"+tess+"/unlock", acc.token, nil); code != 200 {
			t.Fatalf("unlock: %d", code)
		}
		if code, p := totpLogin("tess@acme.test", next); code != 401 || problemType(p) != problems+"invalid-second-factor" {
			t.Fatalf("replayed code: %d %v", code, p)
		}
		// A recovery code works once, however it is typed.
		if code, s := totpLogin("tess@acme.test", strings.ToUpper(recovery[0])); code != 200 {
			t.Fatalf("recovery code: %d %v", code, s)
		}
		if code, _ := totpLogin("tess@acme.test", recovery[0]); code != 401 {
			t.Fatalf("recovery code reused: %d", code)
		}
		auditRecords(t, c, acc, "recovery_code.used", 1)
		auditRecords(t, c, acc, "second_factor.enrolled", 1)

		// Second-factor failures lock the second factor: with the right
		// password and, then, the right code, 423 until an admin unlocks.
		clock.Advance(30 * time.Second)
		for i := range 4 { // one failure counted since the last success (the reused recovery code)
			code, p := totpLogin("tess@acme.test", "123456")
			if i == 3 && (code != 423 || p["retry_after"] != 60.0) {
				t.Fatalf("fifth second-factor failure: %d %v", code, p)
			}
		}
		if code, _ := totpLogin("tess@acme.test", codeAt(clock.Now())); code != 423 {
			t.Fatalf("right code while locked: %d", code)
		}
		for _, l := range auditRecords(t, c, acc, "technician.locked", 2) { // the replays' and this one
			if l["data"].(map[string]any)["factor"] != "totp" {
				t.Fatalf("lock: %v", l)
			}
		}
		if code, _ := c.do("POST", base+"/technicians/"+tess+"/unlock", acc.token, nil); code != 200 {
			t.Fatalf("unlock: %d", code)
		}
		if code, p := totpLogin("tess@acme.test", codeAt(clock.Now())); code != 200 {
			t.Fatalf("after the unlock: %d %v", code, p)
		}
		// An admin removes the factor (a lost phone): enrolment again.
		if code, _ := c.do("DELETE", base+"/technicians/"+tess+"/totp", acc.token, nil); code != 204 {
			t.Fatalf("remove: %d", code)
		}
		_, s = totpLogin("tess@acme.test", "")
		if s["second_factor_enrollment_required"] != true {
			t.Fatalf("after the removal: %v", s)
		}
		// An enrolment-only session can log out.
		if code, _ := c.do("POST", "/v1/auth/logout", s["session_token"].(string), nil); code != 204 {
			t.Fatalf("logout of an enrolment-only session: %d", code)
		}
	})
}

// API tokens: minted with scopes and an expiry, listed without secrets
// with their last use, revoked at once (by a token holding their scopes),
// audited; an expired token is refused.
func TestAPITokensListRevokeExpiry(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, testAPITokensListRevokeExpiry)
}

func testAPITokensListRevokeExpiry(t *testing.T, db string) {
	clock := &testClock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	h := startHostWith(t, svc.Config{DataDir: t.TempDir(), DB: db, Now: clock.Now})
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "pro", 3)
	base := "/v1/accounts/" + acc.id
	mint := func(name string, scopes []string, expires string) (string, string) {
		body := map[string]any{"name": name, "scopes": scopes}
		if expires != "" {
			body["expires_at"] = expires
		}
		code, tok := c.do("POST", base+"/tokens", acc.token, body)
		if code != 201 {
			t.Fatalf("mint: %d %v", code, tok)
		}
		return tok["id"].(string), tok["token"].(string)
	}
	billingID, billing := mint("billing", []string{"billing:read"}, "")
	_, short := mint("short", []string{"billing:read"}, "2026-11-02T10:00:00Z")
	_, reader := mint("reader", []string{"technicians:read"}, "")
	if code, _ := c.do("GET", base+"/subscription", billing, nil); code != 200 {
		t.Fatalf("billing token: %d", code)
	}
	code, list := c.do("GET", base+"/tokens", reader, nil)
	if code != 200 || count(list) != 4 {
		t.Fatalf("list: %d %v", code, list)
	}
	for _, d := range list["data"].([]any) {
		tok := d.(map[string]any)
		if _, ok := tok["token"]; ok {
			t.Fatalf("a listed token shows its secret: %v", tok)
		}
		if tok["id"] == billingID && tok["last_used_at"] != "2026-11-02T09:00:00Z" {
			t.Fatalf("last use: %v", tok)
		}
	}
	// A token in use records its use at most once a minute, through the
	// token caches too (identity's cache_until ends at the next minute).
	clock.Advance(2 * time.Minute)
	_, list = c.do("GET", base+"/tokens", reader, nil)
	for _, d := range list["data"].([]any) {
		if tok := d.(map[string]any); tok["name"] == "reader" && tok["last_used_at"] != "2026-11-02T09:02:00Z" {
			t.Fatalf("last use after two minutes: %v", tok)
		}
	}
	// Revoking needs every scope of the token revoked.
	if code, p := c.do("DELETE", base+"/tokens/"+billingID, reader, nil); code != 403 {
		t.Fatalf("revoke without its scope: %d %v", code, p)
	}
	if code, _ := c.do("DELETE", base+"/tokens/"+billingID, acc.token, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := c.do("GET", base+"/subscription", billing, nil); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	if code, _ := c.do("DELETE", base+"/tokens/"+billingID, acc.token, nil); code != 404 {
		t.Fatalf("revoke twice: %d", code)
	}
	auditRecords(t, c, acc, "api_token.revoked", 1)
	if code, _ := c.do("GET", base+"/subscription", short, nil); code != 200 {
		t.Fatalf("short-lived token: %d", code)
	}
	clock.Advance(time.Hour)
	if code, _ := c.do("GET", base+"/subscription", short, nil); code != 401 {
		t.Fatalf("expired token: %d", code)
	}
}

// postFrom sends a JSON POST from the loopback address ip (127.0.0.x), so
// a test can be several clients.
func postFrom(t *testing.T, ip, url string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	defer tr.CloseIdleConnections()
	b, _ := json.Marshal(body)
	res, err := (&http.Client{Transport: tr}).Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, res.Header, out
}

// Item 8: the login, reset and token routes are rate-limited per source
// address within an account and per account (the account's policy),
// answering 429 with Retry-After; other addresses and accounts go on.
func TestRateLimits(t *testing.T) {
	h := startHostWith(t, svc.Config{DataDir: t.TempDir(), Now: fixedClock})
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "pro", 3)
	other := createAccount(t, c, "roster", "pro", 3)
	base := "/v1/accounts/" + acc.id
	if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"rate_limit_per_address": 3, "rate_limit_per_account": 5}); code != 200 ||
		p["rate_limit_per_address"] != 3.0 {
		t.Fatalf("policy: %d %v", code, p)
	}
	loginFrom := func(ip, accID string) (int, http.Header, map[string]any) {
		return postFrom(t, ip, h.URL()+"/v1/auth/login", map[string]any{"account_id": accID, "email": "nobody@acme.test", "password": "wrong horse battery"})
	}
	// Per address: three attempts (logins and resets alike), then 429.
	for range 2 {
		if code, _, p := loginFrom("127.0.0.2", acc.id); code != 401 {
			t.Fatalf("login: %d %v", code, p)
		}
	}
	if code, _, p := postFrom(t, "127.0.0.2", h.URL()+"/v1/auth/password-reset", map[string]any{"account_id": acc.id, "email": "x@acme.test"}); code != 202 {
		t.Fatalf("reset: %d %v", code, p)
	}
	code, hdr, p := loginFrom("127.0.0.2", acc.id)
	if code != 429 || problemType(p) != problems+"rate-limited" || hdr.Get("Retry-After") == "" || p["retry_after"].(float64) < 1 {
		t.Fatalf("fourth request from one address: %d %v %v", code, hdr, p)
	}
	if code, _, _ := postFrom(t, "127.0.0.2", h.URL()+"/v1/auth/password-reset", map[string]any{"account_id": acc.id, "email": "x@acme.test"}); code != 429 {
		t.Fatalf("reset after the limit: %d", code)
	}
	// Another account is not limited by this one's buckets.
	if code, _, _ := loginFrom("127.0.0.2", other.id); code != 401 {
		t.Fatalf("another account: %d", code)
	}
	// Per account: two more addresses use up the account's five (refused
	// requests do not count).
	for _, ip := range []string{"127.0.0.3", "127.0.0.4"} {
		if code, _, _ := loginFrom(ip, acc.id); code != 401 {
			t.Fatalf("from %s: %d", ip, code)
		}
	}
	if code, _, _ := loginFrom("127.0.0.5", acc.id); code != 429 {
		t.Fatalf("sixth request for the account: %d", code)
	}
	// The token route is limited by the same account buckets.
	code, hdr, p = svctestDo(t, "POST", h.URL()+base+"/tokens", acc.token, map[string]any{"name": "x", "scopes": []string{"billing:read"}})
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("mint while limited: %d %v", code, p)
	}
}

func svctestDo(t *testing.T, method, url, token string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	code, hdr, b := svctest.Do(t, method, url, token, body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return code, hdr, out
}

// L-4 under concurrency: ten parallel logins against a cap of three
// open exactly three sessions when refusing, and leave exactly three live
// when ending the oldest.
func TestSessionCapUnderParallelLogins(t *testing.T) {
	// Not in parallel with the others: its many concurrent requests
	// meet deadlines that a machine busy with other tests can miss.
	svctest.EachBackend(t, func(t *testing.T, db string) {
		h := startHostWith(t, svc.Config{DataDir: t.TempDir(), DB: db, Now: fixedClock})
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "pro", 3)
		base := "/v1/accounts/" + acc.id
		tess := addTechnician(t, c, acc, "tess@acme.test")
		const password = "correct horse battery"
		withPassword(t, c, acc, tess, password)
		parallel := func() map[int]int {
			var wg sync.WaitGroup
			codes := make(chan int, 10)
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, _, err := post(h.URL()+"/v1/auth/login", map[string]any{"account_id": acc.id, "email": "tess@acme.test", "password": password})
					if err != nil {
						t.Error(err)
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
			return counts
		}
		liveSessions := func() int {
			_, list := c.do("GET", base+"/technicians/"+tess+"/sessions", acc.token, nil)
			return count(list)
		}
		if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"max_sessions": 3, "session_overflow": "refuse"}); code != 200 {
			t.Fatalf("policy: %d %v", code, p)
		}
		if got := parallel(); got[200] != 3 || got[409] != 7 || liveSessions() != 3 {
			t.Fatalf("refuse: %v, %d live", got, liveSessions())
		}
		if code, _ := c.do("DELETE", base+"/technicians/"+tess+"/sessions", acc.token, nil); code != 204 || liveSessions() != 0 {
			t.Fatalf("revoke all: %d", code)
		}
		if code, p := c.do("PUT", base+"/security-policy", acc.token, map[string]any{"session_overflow": "end_oldest"}); code != 200 {
			t.Fatalf("policy: %d %v", code, p)
		}
		if got := parallel(); got[200] != 10 || liveSessions() != 3 {
			t.Fatalf("end_oldest: %v, %d live", got, liveSessions())
		}
	})
}
