package roster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"roster.dev/pkg/mail/mailtest"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
)

// startHostWith runs the four services in-process with cfg (HTTP on a free
// loopback port, the test operator token, NATS not listening unless cfg
// says) until the test ends.
func startHostWith(t *testing.T, cfg svc.Config) *svc.Host {
	t.Helper()
	cfg.HTTP, cfg.OperatorToken = "127.0.0.1:0", operator
	if cfg.NATSListen == "" {
		cfg.NATSListen = "off"
	}
	h, err := svc.Start(context.Background(), cfg, Services()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	select {
	case <-h.Ready():
	case err := <-h.Errors():
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready in 30 s")
	}
	return h
}

// testClock is a clock the test moves forward.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sentMail is one invitation mail as the recipient reads it.
type sentMail struct {
	ID, Subject, Link, Token string
}

var setPasswordLink = regexp.MustCompile(`(?m)^(\S+/set-password\?token=(rsi_[A-Za-z0-9_-]+))\r?$`)

// readMail parses an RFC 5322 message holding one set-password link.
func readMail(t *testing.T, raw []byte) (to string, m sentMail) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("mail: %v\n%s", err, raw)
	}
	body, _ := io.ReadAll(msg.Body)
	addr, err := netmail.ParseAddress(msg.Header.Get("To"))
	if err != nil {
		t.Fatalf("To %q: %v", msg.Header.Get("To"), err)
	}
	link := setPasswordLink.FindSubmatch(body)
	if link == nil {
		t.Fatalf("no set-password link with token= in:\n%s", body)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(msg.Header.Get("Message-ID"), "<"), "@roster>")
	return addr.Address, sentMail{ID: id, Subject: msg.Header.Get("Subject"), Link: string(link[1]), Token: string(link[2])}
}

// mailsTo returns the .eml files in dir addressed to email, by message id.
func mailsTo(t *testing.T, dir, email string) map[string]sentMail {
	t.Helper()
	out := map[string]sentMail{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if to, m := readMail(t, raw); to == email {
			if filepath.Base(f) != m.ID+".eml" {
				t.Fatalf("%s holds message %s", f, m.ID)
			}
			out[m.ID] = m
		}
	}
	return out
}

// awaitMail waits for the mail with this id (an invitation id) to email,
// or for the only one when id is "".
func awaitMail(t *testing.T, dir, email, id string) sentMail {
	t.Helper()
	var got sentMail
	svctest.EventuallySeen(t, "the set-password mail to "+email, func() bool {
		ms := mailsTo(t, dir, email)
		if id == "" && len(ms) == 1 {
			for _, m := range ms {
				got = m
			}
			return true
		}
		got = ms[id]
		return id != "" && got.Token != ""
	}, func() string { return fmt.Sprint(mailsTo(t, dir, email)) })
	return got
}

// post sends a JSON POST without failing the test, for goroutines.
func post(url string, body any) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	res, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, nil
}

const problems = "https://roster.dev/problems/"

func login(c client, acc, email, password string) (int, map[string]any) {
	c.t.Helper()
	return c.do("POST", "/v1/auth/login", "", map[string]any{"account_id": acc, "email": email, "password": password})
}

func addTechnician(t *testing.T, c client, acc account, email string) string {
	t.Helper()
	code, body := c.do("POST", "/v1/accounts/"+acc.id+"/technicians", acc.token, map[string]any{"email": email, "first_name": "Tess", "last_name": "Tech"})
	if code != 201 {
		t.Fatalf("add %s: %d %v", email, code, body)
	}
	return body["id"].(string)
}

// awaitSeats waits until seatbilling has assigned n seats: the reservations
// are confirmed, so moving the clock on cannot expire them.
func awaitSeats(t *testing.T, c client, acc account, n float64) {
	t.Helper()
	svctest.Eventually(t, fmt.Sprintf("%v seats used", n), func() bool {
		_, sub := c.do("GET", "/v1/accounts/"+acc.id+"/subscription", acc.token, nil)
		seats, _ := sub["seats"].(map[string]any)
		return seats != nil && seats["used"] == n
	})
}

// I-4, L-1, I-6, I-11, I-7: a new technician is mailed a single-use link
// (a .eml file under <data>/mail by default); setting the password with it
// activates the technician and records the login; the link works once,
// expires, is replaced by a resend and dies with a disable; logins answer
// the same 401 to every failure; sessions expire and are revoked by a
// disable — on SQLite and PostgreSQL.
func TestInvitationSetPasswordAndLogin(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		dir := t.TempDir()
		t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
		clock := &testClock{now: t0}
		h := startHostWith(t, svc.Config{DataDir: dir, DB: db, Now: clock.Now})
		c := client{t, h.URL()}
		mailDir := filepath.Join(dir, "mail")
		acc := createAccount(t, c, "roster", "pro", 5)
		base := "/v1/accounts/" + acc.id

		// The first admin is invited with the account.
		awaitMail(t, mailDir, "admin@roster.test", "")

		tess := addTechnician(t, c, acc, "tess@acme.test")
		awaitSeats(t, c, acc, 2) // confirmed before the clock moves on
		m := awaitMail(t, mailDir, "tess@acme.test", "")
		if !strings.HasPrefix(m.Link, h.URL()+"/set-password?token=rsi_") || m.Subject != "Set your password for Acme roster on Roster" {
			t.Fatalf("mail: %+v", m)
		}
		if !strings.HasPrefix(m.ID, "inv_") {
			t.Fatalf("message id %q is not the invitation's", m.ID)
		}

		// L-1: the policy answers 422 naming the password; the link
		// stays usable.
		for _, weak := range []string{"short", "tess@acme.test", "password1234"} {
			code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": weak})
			if code != 422 || problemType(p) != problems+"validation" || p["errors"].([]any)[0].(map[string]any)["field"] != "password" {
				t.Fatalf("weak password %q: %d %v", weak, code, p)
			}
		}
		code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": "rsi_unknown", "password": "correct horse battery"})
		if code != 400 || problemType(p) != problems+"invitation-invalid" || strings.Contains(fmt.Sprint(p), acc.id) {
			t.Fatalf("unknown token: %d %v", code, p)
		}

		// The link sets the password: the technician is active, logged in
		// at the clock's time (I-6, I-11).
		const password = "correct horse battery"
		if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": password}); code != 204 {
			t.Fatalf("set password: %d %v", code, p)
		}
		_, got := c.do("GET", base+"/technicians/"+tess, acc.token, nil)
		if got["status"] != "active" || got["last_login_at"] != "2026-11-02T09:00:00Z" {
			t.Fatalf("after the invitation: %v", got)
		}
		// Single use.
		code, p = c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": "another long passphrase"})
		if code != 410 || problemType(p) != problems+"invitation-used" {
			t.Fatalf("second use: %d %v", code, p)
		}
		// I-4: only invited technicians get an invitation again.
		code, p = c.do("POST", base+"/technicians/"+tess+"/invitation", acc.token, nil)
		if code != 409 || problemType(p) != problems+"not-invited" {
			t.Fatalf("resend to an active technician: %d %v", code, p)
		}

		// Login: the invitation was the first login already.
		clock.Advance(time.Hour)
		code, s := login(c, acc.id, "TESS@acme.test ", password)
		if code != 200 || s["first_login"] != false || !strings.HasPrefix(s["session_token"].(string), "rss_") ||
			s["expires_at"] != "2026-11-02T22:00:00Z" {
			t.Fatalf("login: %d %v", code, s)
		}
		_, got = c.do("GET", base+"/technicians/"+tess, acc.token, nil)
		if got["last_login_at"] != "2026-11-02T10:00:00Z" {
			t.Fatalf("I-11 last login: %v", got)
		}
		// Every failure is the same 401 (L-5: nothing says whether the
		// email exists).
		wrong := []struct{ acc, email, password string }{
			{acc.id, "tess@acme.test", "correct horse battery!"}, {acc.id, "nobody@acme.test", password},
			{"acc_nope", "tess@acme.test", password}, {acc.id, "admin@roster.test", password}, // invited, no password yet
		}
		for _, w := range wrong {
			code, p := login(c, w.acc, w.email, w.password)
			if code != 401 || problemType(p) != problems+"invalid-credentials" || p["detail"] != "the email or the password is wrong" {
				t.Fatalf("login %v: %d %v", w, code, p)
			}
		}

		// A session authenticates: it holds no scope yet (403), until it
		// expires after 12 hours (401).
		probe := func(token string) int {
			code, _ := c.do("GET", base+"/technicians/"+tess, token, nil)
			return code
		}
		session := s["session_token"].(string)
		if code := probe(session); code != 403 {
			t.Fatalf("live session: %d", code)
		}
		clock.Advance(12 * time.Hour)
		if code := probe(session); code != 401 {
			t.Fatalf("expired session: %d", code)
		}

		// I-4: links expire after the profile's 7 days; a resend replaces
		// the link (the old one stops working) and the new one works.
		late := addTechnician(t, c, acc, "late@acme.test")
		first := awaitMail(t, mailDir, "late@acme.test", "")
		awaitSeats(t, c, acc, 3)
		clock.Advance(7 * 24 * time.Hour)
		code, p = c.do("POST", "/v1/auth/password", "", map[string]any{"token": first.Token, "password": password})
		if code != 410 || problemType(p) != problems+"invitation-expired" {
			t.Fatalf("expired link: %d %v", code, p)
		}
		code, inv := c.do("POST", base+"/technicians/"+late+"/invitation", acc.token, nil, "Idempotency-Key", "resend-1")
		if code != 202 || inv["technician_id"] != late || inv["id"] == first.ID {
			t.Fatalf("resend: %d %v", code, inv)
		}
		// Retried with its key: the same invitation, no second mail.
		if code, again := c.do("POST", base+"/technicians/"+late+"/invitation", acc.token, nil, "Idempotency-Key", "resend-1"); code != 202 || again["id"] != inv["id"] {
			t.Fatalf("resend retried: %d %v", code, again)
		}
		second := awaitMail(t, mailDir, "late@acme.test", inv["id"].(string))
		if n := len(mailsTo(t, mailDir, "late@acme.test")); n != 2 {
			t.Fatalf("%d mails to late@, want the first and the resent one", n)
		}
		code, p = c.do("POST", "/v1/auth/password", "", map[string]any{"token": first.Token, "password": password})
		if code != 410 || problemType(p) != problems+"invitation-revoked" {
			t.Fatalf("replaced link: %d %v", code, p)
		}
		if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": second.Token, "password": password}); code != 204 {
			t.Fatalf("resent link: %d %v", code, p)
		}

		// I-7: disabling ends the sessions at once, the technician cannot
		// log in, and an invited technician's link dies.
		_, s = login(c, acc.id, "tess@acme.test", password)
		session = s["session_token"].(string)
		if code := probe(session); code != 403 {
			t.Fatalf("live session: %d", code)
		}
		gone := addTechnician(t, c, acc, "gone@acme.test")
		goneMail := awaitMail(t, mailDir, "gone@acme.test", "")
		for _, id := range []string{tess, gone} {
			if code, p := c.do("POST", base+"/technicians/"+id+"/disable", acc.token, nil); code != 200 {
				t.Fatalf("disable: %d %v", code, p)
			}
		}
		if code := probe(session); code != 401 {
			t.Fatalf("session after disable: %d", code)
		}
		if code, p := login(c, acc.id, "tess@acme.test", password); code != 401 || problemType(p) != problems+"invalid-credentials" {
			t.Fatalf("login while disabled: %d %v", code, p)
		}
		code, p = c.do("POST", "/v1/auth/password", "", map[string]any{"token": goneMail.Token, "password": password})
		if code != 410 || problemType(p) != problems+"invitation-revoked" {
			t.Fatalf("link of a disabled technician: %d %v", code, p)
		}
	})
}

// I-4 workaround, I-6: an admin sets a temporary password; twenty identical
// concurrent first logins yield exactly one first_login=true and exactly
// one FirstLogin event on the stream (and one audit record); disabling the
// technician then revokes all twenty sessions (I-7).
func TestConcurrentFirstLoginsEmitOneFirstLogin(t *testing.T) {
	// Not in parallel with the others: its many concurrent requests
	// meet deadlines that a machine busy with other tests can miss.
	svctest.EachBackend(t, func(t *testing.T, db string) {
		h := startHostWith(t, svc.Config{DataDir: t.TempDir(), DB: db, NATSListen: "127.0.0.1:0", Now: fixedClock})
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "pro", 3)
		base := "/v1/accounts/" + acc.id
		tess := addTechnician(t, c, acc, "tess@acme.test")
		const password = "temporary passphrase 7"

		// The admin's route: behind technicians:write, policy-checked,
		// honouring Idempotency-Key.
		route := base + "/technicians/" + tess + "/password"
		if code, _ := c.do("POST", route, "", map[string]any{"password": password}); code != 401 {
			t.Fatalf("no token: %d", code)
		}
		if code, p := c.do("POST", route, acc.token, map[string]any{"password": "short"}); code != 422 ||
			p["errors"].([]any)[0].(map[string]any)["field"] != "password" {
			t.Fatalf("weak: %d %v", code, p)
		}
		code, hdr, _ := svctest.Do(t, "POST", h.URL()+route, acc.token, map[string]any{"password": password}, "Idempotency-Key", "pw-1")
		if code != 204 {
			t.Fatalf("set temporary password: %d", code)
		}
		code, hdr, _ = svctest.Do(t, "POST", h.URL()+route, acc.token, map[string]any{"password": password}, "Idempotency-Key", "pw-1")
		if code != 204 || hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retried: %d %v", code, hdr)
		}
		if code, p := c.do("POST", route, acc.token, map[string]any{"password": "another passphrase 8"}, "Idempotency-Key", "pw-1"); code != 422 ||
			problemType(p) != problems+"idempotency-key-reused" {
			t.Fatalf("key reused with another password: %d %v", code, p)
		}

		const n = 20
		var wg sync.WaitGroup
		results := make([]map[string]any, n)
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body, err := post(h.URL()+"/v1/auth/login", map[string]any{"account_id": acc.id, "email": "tess@acme.test", "password": password})
				if err == nil && code != 200 {
					err = fmt.Errorf("login %d: %d %v", i, code, body)
				}
				if err != nil {
					errs <- err
				}
				results[i] = body
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		firsts := 0
		for _, r := range results {
			if r["first_login"] == true {
				firsts++
			}
		}
		if firsts != 1 {
			t.Fatalf("%d logins answered first_login=true, want exactly 1", firsts)
		}
		_, got := c.do("GET", base+"/technicians/"+tess, acc.token, nil)
		if got["status"] != "active" || got["last_login_at"] != "2026-11-23T12:00:00Z" {
			t.Fatalf("after the logins: %v", got)
		}

		// Disable: every session ends at once (I-7). TechnicianDisabled,
		// emitted after every login committed, marks the point from which
		// the stream and the audit log hold everything the logins emitted.
		for _, r := range results {
			if code, _ := c.do("GET", base+"/technicians/"+tess, r["session_token"].(string), nil); code != 403 {
				t.Fatalf("live session: %d", code)
			}
		}
		if code, p := c.do("POST", base+"/technicians/"+tess+"/disable", acc.token, nil); code != 200 {
			t.Fatalf("disable: %d %v", code, p)
		}
		for _, r := range results {
			if code, _ := c.do("GET", base+"/technicians/"+tess, r["session_token"].(string), nil); code != 401 {
				t.Fatalf("session after disable: %d", code)
			}
		}

		nc, err := nats.Connect(h.NATSURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			t.Fatal(err)
		}
		subject := "roster.events.identity." + acc.id + "."
		svctest.Eventually(t, "TechnicianDisabled on the stream", func() bool {
			return svctest.SubjectMsgs(t, js, "ROSTER_IDENTITY", subject+"technician_disabled")[subject+"technician_disabled"] == 1
		})
		if got := svctest.SubjectMsgs(t, js, "ROSTER_IDENTITY", subject+"first_login"); got[subject+"first_login"] != 1 {
			t.Fatalf("FirstLogin events: %v, want exactly 1", got)
		}
		auditCount := func(action string) int {
			_, a := c.do("GET", base+"/audit?action="+action, acc.token, nil)
			return count(a)
		}
		svctest.Eventually(t, "technician.disabled audited", func() bool { return auditCount("technician.disabled") == 1 })
		if n := auditCount("technician.first_login"); n != 1 {
			t.Fatalf("%d technician.first_login audit records, want 1", n)
		}
	})
}

// api.md "Mail": with --mail smtp://… the invitation reaches an SMTP
// server, its link under --public-url; a mail the server refuses stays
// queued and is retried until it is delivered; no .eml file is written.
func TestInvitationBySMTP(t *testing.T) {
	t.Parallel()
	sink := mailtest.Start(t)
	sink.Reject(true)
	dir := t.TempDir()
	h := startHostWith(t, svc.Config{DataDir: dir, Mail: sink.URL(), PublicURL: "https://roster.example.com/", Now: fixedClock})
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "pro", 2)
	tess := addTechnician(t, c, acc, "tess@acme.test")
	svctest.Eventually(t, "the invitations refused", func() bool { return sink.Rejected() >= 2 }) // the admin's and Tess's
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("%d messages accepted while refusing", n)
	}
	sink.Reject(false)
	var got mailtest.Received
	svctest.Eventually(t, "the invitation delivered after retries", func() bool {
		for _, m := range sink.Messages() {
			if len(m.To) == 1 && m.To[0] == "tess@acme.test" {
				got = m
				return true
			}
		}
		return false
	})
	if got.From != "roster@localhost" {
		t.Fatalf("envelope from %q", got.From)
	}
	to, m := readMail(t, got.Data)
	if to != "tess@acme.test" || !strings.HasPrefix(m.Link, "https://roster.example.com/set-password?token=rsi_") {
		t.Fatalf("mail to %s: %+v", to, m)
	}
	if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": "correct horse battery"}); code != 204 {
		t.Fatalf("set password: %d %v", code, p)
	}
	if _, got := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+tess, acc.token, nil); got["status"] != "active" {
		t.Fatalf("technician: %v", got)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "mail", "*")); len(files) != 0 {
		t.Fatalf("files written with SMTP: %v", files)
	}
}

// --mail and --public-url (ROSTER_MAIL, ROSTER_PUBLIC_URL) are checked at
// start, with errors that name the flag.
func TestMailFlags(t *testing.T) {
	for _, c := range []struct {
		mail, publicURL, want string
	}{
		{"", "", ""},
		{"file:///var/lib/roster/mail", "https://roster.example.com", ""},
		{"smtp://127.0.0.1:2525", "http://127.0.0.1:8080/", ""},
		{"http://mail.example.com", "", "--mail"},
		{"smtp://", "", "--mail"},
		{"", "roster.example.com", "--public-url"},
		{"", "ftp://roster.example.com", "--public-url"},
		{"", "https://roster.example.com/?a=b", "--public-url"},
	} {
		t.Run(c.mail+" "+c.publicURL, func(t *testing.T) {
			t.Setenv("ROSTER_MAIL", c.mail)
			t.Setenv("ROSTER_PUBLIC_URL", c.publicURL)
			var cfg Config
			cmd := &cobra.Command{Use: "serve"}
			cfg.bind(cmd.Flags())
			if err := applyEnv(cmd); err != nil {
				t.Fatal(err)
			}
			if cfg.Mail != c.mail || cfg.PublicURL != c.publicURL {
				t.Fatalf("from the environment: %q %q", cfg.Mail, cfg.PublicURL)
			}
			err := cfg.validate()
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)) {
				t.Fatalf("validate: %v, want %q", err, c.want)
			}
		})
	}
}

// --stream-replicas (ROSTER_STREAM_REPLICAS, issue 13): 1 to 5, more than
// 1 only on an external NATS.
func TestStreamReplicasFlag(t *testing.T) {
	for _, c := range []struct {
		replicas, natsURL, want string
	}{
		{"", "", ""},
		{"1", "", ""},
		{"3", "nats://n1:4222,nats://n2:4222,nats://n3:4222", ""},
		{"5", "nats://n1:4222", ""},
		{"3", "", "--stream-replicas 3 needs --nats-url"},
		{"0", "nats://n1:4222", "--stream-replicas must be 1 to 5"},
		{"6", "nats://n1:4222", "--stream-replicas must be 1 to 5"},
	} {
		t.Run(c.replicas+" "+c.natsURL, func(t *testing.T) {
			if c.replicas != "" {
				t.Setenv("ROSTER_STREAM_REPLICAS", c.replicas)
			}
			t.Setenv("ROSTER_NATS_URL", c.natsURL)
			var cfg Config
			cmd := &cobra.Command{Use: "serve"}
			cfg.bind(cmd.Flags())
			if err := applyEnv(cmd); err != nil {
				t.Fatal(err)
			}
			if c.replicas == "" && cfg.StreamReplicas != 1 {
				t.Fatalf("default --stream-replicas %d, want 1", cfg.StreamReplicas)
			}
			err := cfg.validate()
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)) {
				t.Fatalf("validate: %v, want %q", err, c.want)
			}
		})
	}
	t.Run("not a number", func(t *testing.T) {
		t.Setenv("ROSTER_STREAM_REPLICAS", "three")
		var cfg Config
		cmd := &cobra.Command{Use: "serve"}
		cfg.bind(cmd.Flags())
		if err := applyEnv(cmd); err == nil || !strings.Contains(err.Error(), "ROSTER_STREAM_REPLICAS") {
			t.Fatalf("applyEnv: %v, want an error naming ROSTER_STREAM_REPLICAS", err)
		}
	})
}

// --ack-wait (ROSTER_ACK_WAIT): the redelivery time of an event whose
// consumer died, 30 s by default; the cluster fault test lowers it.
func TestAckWaitFlag(t *testing.T) {
	for _, c := range []struct{ env, want string }{
		{"", ""}, {"5s", ""}, {"10m", ""}, {"500ms", "--ack-wait must be 1s to 10m"}, {"11m", "--ack-wait must be 1s to 10m"},
	} {
		t.Run(c.env, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("ROSTER_ACK_WAIT", c.env)
			}
			var cfg Config
			cmd := &cobra.Command{Use: "serve"}
			cfg.bind(cmd.Flags())
			if err := applyEnv(cmd); err != nil {
				t.Fatal(err)
			}
			if c.env == "" && cfg.AckWait != 30*time.Second {
				t.Fatalf("default --ack-wait %v, want 30s", cfg.AckWait)
			}
			err := cfg.validate()
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)) {
				t.Fatalf("validate: %v, want %q", err, c.want)
			}
		})
	}
}
