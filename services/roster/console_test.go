package roster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/roster/console"
)

// chromium finds the browser for the console tests; .ci/run installs the
// Debian package and sets ROSTER_REQUIRE_CHROMIUM, so in CI a missing
// browser fails instead of skipping.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ROSTER_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium is required (ROSTER_REQUIRE_CHROMIUM) but not installed: apt-get install -y chromium")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); the console's browser test is skipped")
	return ""
}

// headlessChromium starts a headless Chromium for the test, with the flags of
// issue 12, at 1280 px wide.
func headlessChromium(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancel(); cancelAlloc() })
	// Start the browser on this context: the steps' shorter contexts
	// derived from it must not own it.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshots is where the click-through saves its pages:
// $ROSTER_SCREENSHOTS (docs/screenshots when refreshing the committed
// copies), else a temporary folder.
func screenshots(t *testing.T) string {
	dir := os.Getenv("ROSTER_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserSteps are the browser tests' steps: run actions (on failure, the
// page's text is in the message), save a screenshot into shots, read an
// element's text, wait until a script is true.
func browserSteps(t *testing.T, shots string) (run func(context.Context, string, ...chromedp.Action), shot func(context.Context, string),
	text func(context.Context, string) string, waitFor func(context.Context, string)) {
	run = func(ctx context.Context, what string, actions ...chromedp.Action) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Run(step, actions...); err != nil {
			var loc, body string
			diag, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_ = chromedp.Run(diag, chromedp.Location(&loc), chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &body))
			t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
		}
	}
	shot = func(ctx context.Context, name string) {
		t.Helper()
		// Right after a navigation the page may not be laid out yet
		// ("0 width"): wait for the body, and retry a few times.
		var png []byte
		var err error
		for range 20 {
			step, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = chromedp.Run(step, chromedp.WaitVisible("body", chromedp.ByQuery), chromedp.FullScreenshot(&png, 100))
			cancel()
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text = func(ctx context.Context, sel string) string {
		t.Helper()
		var s string
		run(ctx, "read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}
	// waitFor evaluates js until it is true: across a navigation, when the
	// page before already had the element a selector would wait for.
	waitFor = func(ctx context.Context, js string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			var ok bool
			if err := chromedp.Run(ctx, chromedp.Evaluate(js, &ok)); err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				var loc, body string
				_ = chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &body))
				t.Fatalf("not true in 15 s at %s: %s\n%s", loc, js, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return run, shot, text, waitFor
}

// The console's click-through in a real headless Chromium (issue 12): the
// first admin sets the password through the mailed link and signs in;
// adds a technician, then another until the seat confirmation shows the
// prorated quote (S-3), and confirms it; a field error shows next to its
// field; the new technician sets the password through the link and signs
// in (a session without admin rights is shown the API's 403, not a blank
// page); the admin edits a role, and a concurrent save shows the conflict
// disables the technician through the preview (O-3: the dry run's
// cost effect and the ticket she owns, previewed again with a successor);
// imports a CSV and sets up directory sync; and the audit log, open in another
// tab, shows the entries appear live. Each page is screenshot.
func TestConsoleClickThrough(t *testing.T) {
	ctx := headlessChromium(t)
	shots := screenshots(t)
	dir := t.TempDir()
	clock := &testClock{now: time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)}
	h := startHostWith(t, svc.Config{DataDir: dir, Now: clock.Now, Routes: console.Mount})
	c := client{t, h.URL()}
	mailDir := filepath.Join(dir, "mail")
	acc := createAccount(t, c, "roster", "pro", 2)
	base := h.URL()
	const password = "correct horse battery staple"

	run, shot, text, waitFor := browserSteps(t, shots)
	signIn := func(email, pw string) {
		t.Helper()
		run(ctx, "sign in as "+email,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible("#login-form", chromedp.ByQuery),
			chromedp.SetValue(`input[name=account_id]`, acc.id, chromedp.ByQuery),
			chromedp.SetValue(`input[name=email]`, email, chromedp.ByQuery),
			chromedp.SetValue(`input[name=password]`, pw, chromedp.ByQuery),
			chromedp.Click(`#login-form button[type=submit]`, chromedp.ByQuery),
			chromedp.WaitVisible(`#logout`, chromedp.ByQuery))
	}
	setPassword := func(link string) {
		t.Helper()
		if !strings.HasPrefix(link, base+"/set-password?token=") {
			t.Fatalf("the mailed link %q does not open the console", link)
		}
		run(ctx, "set the password",
			chromedp.Navigate(link),
			chromedp.WaitVisible("#set-password-form", chromedp.ByQuery),
			chromedp.SetValue(`input[name=password]`, password, chromedp.ByQuery),
			chromedp.SetValue(`input[name=confirm]`, password, chromedp.ByQuery),
			chromedp.Click(`#set-password-form button`, chromedp.ByQuery),
			chromedp.WaitVisible("#password-set", chromedp.ByQuery))
	}

	// The first admin: the mailed link, then a refused and an accepted login.
	setPassword(awaitMail(t, mailDir, "admin@roster.test", "").Link)
	shot(ctx, "01-set-password")
	run(ctx, "wrong password",
		chromedp.Navigate(base+"/login"),
		chromedp.SetValue(`input[name=account_id]`, acc.id, chromedp.ByQuery),
		chromedp.SetValue(`input[name=email]`, "admin@roster.test", chromedp.ByQuery),
		chromedp.SetValue(`input[name=password]`, "not it", chromedp.ByQuery),
		chromedp.Click(`#login-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#problem", chromedp.ByQuery))
	if got := text(ctx, "#problem"); !strings.Contains(got, "the email or the password is wrong") {
		t.Fatalf("refused login shows %q", got)
	}
	shot(ctx, "02-login-refused")
	signIn("admin@roster.test", password)

	// Add a technician: a field error first, then the one free seat.
	add := func(email, first string) {
		t.Helper()
		run(ctx, "add "+email,
			chromedp.Navigate(base+"/technicians"),
			chromedp.WaitVisible("#add-form", chromedp.ByQuery),
			chromedp.SendKeys(`#add-form input[name=email]`, email, chromedp.ByQuery),
			chromedp.SendKeys(`#add-form input[name=first_name]`, first, chromedp.ByQuery),
			chromedp.SendKeys(`#add-form input[name=last_name]`, "Tech", chromedp.ByQuery),
			chromedp.Click(`#add-form button[type=submit]`, chromedp.ByQuery))
	}
	add("tess@roster.test", "")
	run(ctx, "field error", chromedp.WaitVisible(`#add-form .field-error`, chromedp.ByQuery))
	if got := text(ctx, "#add-form .field-error"); got != "is required" {
		t.Fatalf("first_name field error: %q", got)
	}
	add("tess@roster.test", "Tess")
	run(ctx, "added", chromedp.WaitVisible("#flash", chromedp.ByQuery))
	awaitSeats(t, c, acc, 2)

	// Every seat is taken: the confirmation shows the prorated quote (S-3:
	// 21 of 30 days left at the pro plan's price) before buying.
	add("ned@roster.test", "Ned")
	run(ctx, "seat confirmation", chromedp.WaitVisible("#seat-confirm", chromedp.ByQuery))
	if got := text(ctx, "#quote-amount"); !strings.HasPrefix(got, "$") {
		t.Fatalf("quote: %q", got)
	}
	if got := text(ctx, "#seat-confirm"); !strings.Contains(got, "21 of 30 days left") || !strings.Contains(got, "2026-11-30") {
		t.Fatalf("seat confirmation: %q", got)
	}
	shot(ctx, "04-seat-confirmation")
	run(ctx, "confirm the purchase",
		chromedp.Click("#confirm-purchase", chromedp.ByQuery),
		chromedp.WaitVisible("#flash", chromedp.ByQuery))
	if got := text(ctx, "#flash"); !strings.Contains(got, "Seat purchased") {
		t.Fatalf("after the purchase: %q", got)
	}
	run(ctx, "list shows both", chromedp.WaitVisible(`tr[data-email="ned@roster.test"]`, chromedp.ByQuery))
	awaitSeats(t, c, acc, 3)
	shot(ctx, "03-technicians")
	// Search narrows the list in place (htmx), and the URL follows.
	var before string
	run(ctx, "mark the page", chromedp.Evaluate(`window.__mark = "kept"`, &before))
	run(ctx, "search", chromedp.SendKeys(`input[name=q]`, "ned", chromedp.ByQuery))
	waitFor(ctx, `document.querySelectorAll('#tech-table tbody tr').length === 1 && !!document.querySelector('tr[data-email="ned@roster.test"]')`)
	waitFor(ctx, `location.search.includes("q=ned") && window.__mark === "kept"`)

	// The technician's mailed link, then their sign-in: their session holds
	// no admin scope, and the page shows the API's 403 problem.
	tessMail := awaitMail(t, mailDir, "tess@roster.test", "")
	run(ctx, "sign out", chromedp.Click("#logout", chromedp.ByQuery), chromedp.WaitVisible("#login-form", chromedp.ByQuery))
	setPassword(tessMail.Link)
	signIn("tess@roster.test", password)
	run(ctx, "technician's view", chromedp.WaitVisible("#problem", chromedp.ByQuery))
	if got := text(ctx, "#problem"); !strings.Contains(got, "technicians:read") {
		t.Fatalf("technician's view: %q", got)
	}
	shot(ctx, "05-signed-in-technician")
	run(ctx, "sign out", chromedp.Click("#logout", chromedp.ByQuery), chromedp.WaitVisible("#login-form", chromedp.ByQuery))

	// The admin edits a role; a save on a stale version shows the conflict.
	signIn("admin@roster.test", password)
	run(ctx, "create a role",
		chromedp.Navigate(base+"/roles"),
		chromedp.WaitVisible("#new-role", chromedp.ByQuery),
		chromedp.SetValue(`#new-role input[name=name]`, "Tier 2", chromedp.ByQuery),
		chromedp.Click(`#new-role button`, chromedp.ByQuery),
		chromedp.WaitVisible("#role-form", chromedp.ByQuery),
		chromedp.Click(`#role-form input[name=permissions]`, chromedp.ByQuery),
		chromedp.Click("#save-role", chromedp.ByQuery))
	waitFor(ctx, `document.querySelector('#flash')?.textContent === 'Role saved'`)
	var checked []string
	run(ctx, "read the toggles", chromedp.Evaluate(`[...document.querySelectorAll('#role-form input[name=permissions]:checked')].map(e => e.value)`, &checked))
	if len(checked) != 1 {
		t.Fatalf("saved role holds %v, want one permission", checked)
	}
	shot(ctx, "06-role-editor")
	var loc string
	run(ctx, "where", chromedp.Location(&loc))
	roleID := strings.TrimPrefix(strings.SplitN(loc, "?", 2)[0], base+"/roles/")
	_, role := c.do("GET", "/v1/accounts/"+acc.id+"/roles/"+roleID, acc.token, nil)
	if code, p := c.do("PUT", "/v1/accounts/"+acc.id+"/roles/"+roleID, acc.token,
		map[string]any{"name": "Tier 2", "permissions": role["permissions"], "site_ids": []string{}},
		"If-Match", fmt.Sprintf("%q", fmt.Sprint(role["version"]))); code != 200 {
		t.Fatalf("concurrent save: %d %v", code, p)
	}
	run(ctx, "stale save",
		chromedp.Click(`#role-form input[name=permissions]:not(:checked)`, chromedp.ByQuery),
		chromedp.Click("#save-role", chromedp.ByQuery),
		chromedp.WaitVisible("#conflict", chromedp.ByQuery))
	if got := text(ctx, "#problem"); !strings.Contains(got, "changed since the version in If-Match") {
		t.Fatalf("conflict problem: %q", got)
	}
	shot(ctx, "07-role-conflict")

	// The audit log in a second tab, tailing live.
	auditTab, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	if err := chromedp.Run(auditTab); err != nil {
		t.Fatalf("second tab: %v", err)
	}
	run(auditTab, "audit log",
		chromedp.Navigate(base+"/audit"),
		chromedp.WaitVisible("#verify-ok", chromedp.ByQuery),
		chromedp.WaitVisible(`#live[data-live=open]`, chromedp.ByQuery))

	// Disable with the preview (O-3), from the row menu: Tess owns an open
	// ticket; the preview shows what happens to it and the seat's cost
	// effect, then again with the admin chosen as her successor.
	_, l := c.do("GET", "/v1/accounts/"+acc.id+"/technicians?email=tess@roster.test", acc.token, nil)
	tessID := l["data"].([]any)[0].(map[string]any)["id"].(string)
	if code, p := c.do("POST", "/v1/accounts/"+acc.id+"/ownership", acc.token, map[string]any{"items": []map[string]any{
		{"kind": "ticket", "id": "T-1001", "owner_id": tessID, "status": "open"}}}); code != 200 {
		t.Fatalf("ownership: %d %v", code, p)
	}
	run(ctx, "disable preview",
		chromedp.Navigate(base+"/technicians"),
		chromedp.Click(`tr[data-email="tess@roster.test"] details.menu summary`, chromedp.ByQuery),
		chromedp.Click(`tr[data-email="tess@roster.test"] .menu-items a[href$="/disable"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#disable-preview", chromedp.ByQuery),
		chromedp.WaitVisible(`#offboarding-actions tr[data-kind="ticket"]`, chromedp.ByQuery))
	if got := text(ctx, "#cost-effect"); !strings.Contains(got, "0 → 1") || !strings.Contains(got, "$417.00") {
		t.Fatalf("cost effect: %q", got)
	}
	run(ctx, "preview with a successor",
		chromedp.SetValue(`#successor-form select[name=successor_id]`, acc.adminID, chromedp.ByQuery),
		chromedp.Click(`#successor-form button`, chromedp.ByQuery))
	waitFor(ctx, `location.search.includes("successor_id=") && document.querySelector('#preview')?.innerText.includes("handed over to")`)
	shot(ctx, "08-disable-preview")
	run(ctx, "disable",
		chromedp.Click("#confirm-disable", chromedp.ByQuery),
		chromedp.WaitVisible("#flash", chromedp.ByQuery))
	if got := text(ctx, "#tech-status"); got != "disabled" {
		t.Fatalf("status after disable: %q", got)
	}

	// The entries appear in the tail without a reload.
	run(auditTab, "live entries",
		chromedp.WaitVisible(`#live-rows tr[data-action="technician.disabled"]`, chromedp.ByQuery))
	shot(auditTab, "09-audit-live")

	// A CSV import: the progress updates in place until done, then the
	// per-row report names the refused row.
	csvFile := filepath.Join(t.TempDir(), "technicians.csv")
	if err := os.WriteFile(csvFile, []byte("email,first_name,last_name\nivy@roster.test,Ivy,Tech\nnot-an-email,Bad,Row\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(ctx, "import",
		chromedp.Navigate(base+"/imports"),
		chromedp.WaitVisible("#import-form", chromedp.ByQuery),
		chromedp.SetUploadFiles(`#import-form input[type=file]`, []string{csvFile}, chromedp.ByQuery),
		chromedp.Click(`#import-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#progress", chromedp.ByQuery))
	waitFor(ctx, `document.querySelector('#progress')?.dataset.status === 'done'`)
	if created, refused := text(ctx, "#import-created"), text(ctx, "#import-refused"); created != "1" || refused != "1" {
		t.Fatalf("import: %s created, %s refused", created, refused)
	}
	run(ctx, "the refused row", chromedp.WaitVisible(`#import-rows tr[data-outcome="refused"]`, chromedp.ByQuery))
	shot(ctx, "12-import")

	// Directory sync: a mapping saved in the editor, a secret shown once,
	// and a delivery signed with it listed with its outcome.
	mapping := `{"rules": [{"when": {"department": "IT Support"}, "then": {"kind": "technician", "role": "Tier 2"}}], "default": {"kind": "ignore"}}`
	run(ctx, "mapping",
		chromedp.Navigate(base+"/directory"),
		chromedp.WaitVisible("#mapping-form", chromedp.ByQuery),
		chromedp.SetValue(`#mapping-form textarea`, mapping, chromedp.ByQuery),
		chromedp.Click(`#mapping-form button`, chromedp.ByQuery))
	waitFor(ctx, `document.querySelector('#flash')?.textContent === 'Mapping saved'`)
	run(ctx, "secret",
		chromedp.Click(`form[action="/directory/secret"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("#hris-secret code", chromedp.ByQuery))
	sender := &hrisSender{c: c, path: "/v1/accounts/" + acc.id + "/hris/generic", clock: clock.Now, secret: text(ctx, "#hris-secret code")}
	if code, p := sender.send("wh-console-1", 0, employeeEvent("employee.hired", "E-1", "olga@roster.test", "Olga", "Ops", "Facilities", "")); code != 202 {
		t.Fatalf("delivery: %d %v", code, p)
	}
	svctest.Eventually(t, "the delivery handled", func() bool {
		_, l := c.do("GET", "/v1/accounts/"+acc.id+"/hris/deliveries", acc.token, nil)
		d, _ := l["data"].([]any)
		return len(d) == 1 && d[0].(map[string]any)["status"] != "pending"
	})
	run(ctx, "deliveries", chromedp.Navigate(base+"/directory"), chromedp.WaitVisible(`#deliveries tr[data-status]`, chromedp.ByQuery))
	shot(ctx, "13-directory-sync")

	run(ctx, "subscription", chromedp.Navigate(base+"/subscription"), chromedp.WaitVisible("#seat-chart", chromedp.ByQuery))
	if got := text(ctx, "#charges"); !strings.Contains(got, "seat_purchase") {
		t.Fatalf("charges: %q", got)
	}
	shot(ctx, "10-subscription")

	run(ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/technicians"),
		chromedp.WaitVisible("#tech-table", chromedp.ByQuery))
	shot(ctx, "11-technicians-phone")
	t.Logf("screenshots in %s", shots)
}

// The console's login keeps the session token in an HttpOnly,
// SameSite=Strict cookie, never in a URL, a page or a log line; a POST from
// another origin is refused (CSRF); an admin's session may use the API as
// an admin, a plain technician's may not.
func TestConsoleSessionCookieAndCSRF(t *testing.T) {
	dir := t.TempDir()
	logs := &lockedWriter{w: &bytes.Buffer{}}
	h := startHostWith(t, svc.Config{DataDir: dir, Routes: console.Mount,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "pro", 3)
	link := awaitMail(t, filepath.Join(dir, "mail"), "admin@roster.test", "")
	const password = "correct horse battery staple"
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := func(path, origin string, v url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", h.URL()+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	if res := form("/set-password", h.URL(), url.Values{"token": {link.Token}, "password": {password}, "confirm": {password}}); res.StatusCode != 200 {
		t.Fatalf("set password: %d", res.StatusCode)
	}
	creds := url.Values{"account_id": {acc.id}, "email": {"admin@roster.test"}, "password": {password}}

	// Cross-site: another origin, or none at all, is refused.
	for _, origin := range []string{"https://evil.example", ""} {
		if res := form("/login", origin, creds); res.StatusCode != 403 {
			t.Fatalf("login from %q: %d", origin, res.StatusCode)
		}
	}
	res := form("/login", h.URL(), creds)
	if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/technicians") {
		t.Fatalf("login: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
			t.Fatalf("cookie %s: HttpOnly %v SameSite %v Path %q", ck.Name, ck.HttpOnly, ck.SameSite, ck.Path)
		}
		if ck.Name == "roster_session" {
			session = ck
		}
	}
	if session == nil || !strings.HasPrefix(session.Value, "rss_") || session.Secure {
		t.Fatalf("session cookie: %+v", session)
	}
	if strings.Contains(res.Header.Get("Location"), session.Value) {
		t.Fatal("the token is in the redirect")
	}
	// The admin's session acts as an admin on the API (every account
	// scope), and the pages never show the token.
	if code, body := c.do("GET", "/v1/accounts/"+acc.id+"/technicians", session.Value, nil); code != 200 {
		t.Fatalf("admin session: %d %v", code, body)
	}
	for _, page := range []string{"/technicians", "/roles", "/subscription", "/audit"} {
		req, _ := http.NewRequest("GET", h.URL()+page, nil)
		req.AddCookie(session)
		req.AddCookie(&http.Cookie{Name: "roster_account", Value: acc.id})
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || strings.Contains(string(b), session.Value) {
			t.Fatalf("%s: %d (token shown: %v)", page, res.StatusCode, strings.Contains(string(b), session.Value))
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("%s: CSP %q", page, csp)
		}
	}
	// A plain technician's session holds no scope (403), so its pages show
	// the API's problem.
	tess := addTechnician(t, c, acc, "tess@roster.test")
	m := awaitMail(t, filepath.Join(dir, "mail"), "tess@roster.test", "")
	if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": password}); code != 204 {
		t.Fatalf("tess's password: %d %v", code, p)
	}
	_, s := login(c, acc.id, "tess@roster.test", password)
	if code, _ := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+tess, s["session_token"].(string), nil); code != 403 {
		t.Fatalf("technician session: %d", code)
	}

	// L-5 through the console: "Forgot your password?", the mailed reset
	// link opens the console's reset page, the new password signs in.
	page := func(res *http.Response) string {
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if res := form("/forgot-password", h.URL(), url.Values{"account_id": {acc.id}, "email": {"admin@roster.test"}}); res.StatusCode != 200 ||
		!strings.Contains(page(res), `id="reset-sent"`) {
		t.Fatalf("forgot password: %d", res.StatusCode)
	}
	var reset []string
	svctest.Eventually(t, "the reset mail", func() bool {
		reset = resetMails(t, filepath.Join(dir, "mail"), "admin@roster.test")
		return len(reset) == 1
	})
	if res, err := http.Get(h.URL() + "/reset-password?token=" + reset[0]); err != nil || res.StatusCode != 200 ||
		!strings.Contains(page(res), `action="/reset-password"`) {
		t.Fatalf("reset page: %v", err)
	}
	const newPassword = "another horse battery staple"
	if res := form("/reset-password", h.URL(), url.Values{"token": {reset[0]}, "password": {newPassword}, "confirm": {newPassword}}); res.StatusCode != 200 ||
		!strings.Contains(page(res), `id="password-set"`) {
		t.Fatalf("reset: %d", res.StatusCode)
	}
	// The link works once: the second use shows the API's problem.
	if res := form("/reset-password", h.URL(), url.Values{"token": {reset[0]}, "password": {newPassword}, "confirm": {newPassword}}); res.StatusCode < 400 ||
		!strings.Contains(page(res), `id="problem"`) {
		t.Fatalf("reset link used twice: %d", res.StatusCode)
	}
	creds.Set("password", newPassword)
	res = form("/login", h.URL(), creds)
	if res.StatusCode != 303 {
		t.Fatalf("login with the new password: %d", res.StatusCode)
	}
	session = nil
	for _, ck := range res.Cookies() {
		if ck.Name == "roster_session" {
			session = ck
		}
	}

	// L-3 through the console: with a second factor enrolled, the password
	// alone asks for the code (the password is not echoed into the page);
	// a wrong code is refused; the right one signs in.
	code, e := c.do("POST", "/v1/auth/totp/enroll", session.Value, nil)
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, e)
	}
	secret := e["secret"].(string)
	now, _ := totp.GenerateCode(secret, time.Now())
	if code, p := c.do("POST", "/v1/auth/totp/confirm", session.Value, map[string]any{"code": now}); code != 200 {
		t.Fatalf("confirm: %d %v", code, p)
	}
	res = form("/login", h.URL(), creds)
	if body := page(res); res.StatusCode != 401 || !strings.Contains(body, `name="totp"`) || strings.Contains(body, newPassword) {
		t.Fatalf("login without the code: %d", res.StatusCode)
	}
	creds.Set("totp", "000000")
	if res = form("/login", h.URL(), creds); res.StatusCode != 401 || !strings.Contains(page(res), "Invalid second factor") {
		t.Fatalf("wrong code: %d", res.StatusCode)
	}
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	creds.Set("totp", next)
	if res = form("/login", h.URL(), creds); res.StatusCode != 303 {
		t.Fatalf("login with the code: %d %s", res.StatusCode, page(res))
	}

	all := logs.String()
	for _, secret := range []string{session.Value, link.Token, password, reset[0], newPassword} {
		if strings.Contains(all, secret) {
			t.Fatalf("a secret is in the logs")
		}
	}
}

// The console on an atlan account (issue 12, page 7; R-9, I-5): the admin
// creates a persona and edits its grants (an unknown UI area refused);
// invites two emails at once with a base role and the persona and sees
// them pending; opens a user's access and takes the persona away; an
// address already invited is refused with the problem's title and detail;
// resends one invitation (a new id) and revokes the other; creates a
// purpose on the purposes page (without classifications refused first); the roles page shows the base roles read-only (no
// permission editor); the subscription shows guest seats apart. Each page
// is screenshot.
func TestConsoleAtlan(t *testing.T) {
	ctx := headlessChromium(t)
	shots := screenshots(t)
	dir := t.TempDir()
	h := startHostWith(t, svc.Config{DataDir: dir, Now: fixedClock, Routes: console.Mount})
	c := client{t, h.URL()}
	mailDir := filepath.Join(dir, "mail")
	acc := atlanAccount(t, c, "premier", 3)
	base := h.URL()
	const password = "correct horse battery staple"
	run, shot, text, waitFor := browserSteps(t, shots)

	link := awaitMail(t, mailDir, "admin@atlan.test", "").Link
	run(ctx, "the admin sets the password",
		chromedp.Navigate(link),
		chromedp.WaitVisible("#set-password-form", chromedp.ByQuery),
		chromedp.SetValue(`input[name=password]`, password, chromedp.ByQuery),
		chromedp.SetValue(`input[name=confirm]`, password, chromedp.ByQuery),
		chromedp.Click(`#set-password-form button`, chromedp.ByQuery),
		chromedp.WaitVisible("#password-set", chromedp.ByQuery))
	run(ctx, "sign in",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible("#login-form", chromedp.ByQuery),
		chromedp.SetValue(`input[name=account_id]`, acc.id, chromedp.ByQuery),
		chromedp.SetValue(`input[name=email]`, "admin@atlan.test", chromedp.ByQuery),
		chromedp.SetValue(`input[name=password]`, password, chromedp.ByQuery),
		chromedp.Click(`#login-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#logout`, chromedp.ByQuery))

	// The menu offers the layered model's pages, as the API answered.
	run(ctx, "users page", chromedp.Navigate(base+"/users"), chromedp.WaitVisible("#invite-form", chromedp.ByQuery))
	if got := text(ctx, "header nav"); !strings.Contains(got, "Personas") || !strings.Contains(got, "Purposes") {
		t.Fatalf("menu: %q", got)
	}

	// A persona first, so that the invitation can carry it.
	run(ctx, "create a persona",
		chromedp.Navigate(base+"/personas"),
		chromedp.WaitVisible("#new-persona", chromedp.ByQuery),
		chromedp.SetValue(`#new-persona input[name=name]`, "Data steward", chromedp.ByQuery),
		chromedp.Click(`#new-persona button`, chromedp.ByQuery),
		chromedp.WaitVisible("#persona-form", chromedp.ByQuery))
	// A UI area the profile does not have is refused, naming it.
	run(ctx, "edit the persona",
		chromedp.SetValue(`#persona-form input[name="g0.connection"]`, "snowflake-prod", chromedp.ByQuery),
		chromedp.SetValue(`#persona-form input[name="g0.asset_types"]`, "table, view", chromedp.ByQuery),
		chromedp.Click(`#persona-form input[name="g0.actions"][value="read"]`, chromedp.ByQuery),
		chromedp.Click(`#persona-form input[name="g0.actions"][value="update_metadata"]`, chromedp.ByQuery),
		chromedp.SetValue(`#persona-form input[name=ui]`, "glossary, spaceship", chromedp.ByQuery),
		chromedp.Click("#save-persona", chromedp.ByQuery),
		chromedp.WaitVisible("#problem", chromedp.ByQuery))
	if got := text(ctx, "#problem"); !strings.Contains(got, "spaceship") || !strings.Contains(got, "422") {
		t.Fatalf("refused persona: %q", got)
	}
	run(ctx, "save the persona",
		chromedp.SetValue(`#persona-form input[name=ui]`, "glossary", chromedp.ByQuery),
		chromedp.Click("#save-persona", chromedp.ByQuery))
	waitFor(ctx, `document.querySelector('#flash')?.textContent === 'Persona saved'`)
	var grant string
	run(ctx, "the saved grant", chromedp.Value(`#persona-form input[name="g0.connection"]`, &grant, chromedp.ByQuery))
	if grant != "snowflake-prod" {
		t.Fatalf("saved grant connection %q", grant)
	}
	shot(ctx, "15-atlan-persona")
	run(ctx, "a persona that is not there", chromedp.Navigate(base+"/personas/persona_nope"), chromedp.WaitVisible("#problem", chromedp.ByQuery))
	if got := text(ctx, "#problem"); !strings.Contains(got, "404") || !strings.Contains(got, "persona_nope") {
		t.Fatalf("unknown persona: %q", got)
	}

	// Invite two emails at once as Members holding the persona: pending.
	run(ctx, "invite",
		chromedp.Navigate(base+"/users"),
		chromedp.WaitVisible("#invite-form", chromedp.ByQuery),
		chromedp.SetValue(`#invite-form textarea[name=emails]`, "ann@atlan.test, bob@atlan.test", chromedp.ByQuery),
		chromedp.SetValue(`#invite-form select[name=base_role]`, "Member", chromedp.ByQuery),
		chromedp.Click(`#invite-form input[name=personas]`, chromedp.ByQuery),
		chromedp.Click(`#invite-form button[type=submit]`, chromedp.ByQuery))
	waitFor(ctx, `document.querySelector('#flash')?.textContent === '2 invitation(s) sent'`)
	run(ctx, "pending",
		chromedp.WaitVisible(`#invitations tr[data-email="ann@atlan.test"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#invitations tr[data-email="bob@atlan.test"]`, chromedp.ByQuery))
	if got := text(ctx, `#invitations tr[data-email="ann@atlan.test"]`); !strings.Contains(got, "Member") || !strings.Contains(got, "pending") {
		t.Fatalf("pending invitation: %q", got)
	}
	// The persona travelled with the invitation (rolepolicy assigns it).
	svctest.Eventually(t, "the persona assigned", func() bool {
		_, l := c.do("GET", "/v1/accounts/"+acc.id+"/technicians?email=ann@atlan.test", acc.token, nil)
		d, _ := l["data"].([]any)
		if len(d) != 1 {
			return false
		}
		_, e := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+d[0].(map[string]any)["id"].(string)+"/effective-access", acc.token, nil)
		return strings.Contains(fmt.Sprint(e["personas"]), "Data steward")
	})
	shot(ctx, "14-atlan-users")

	// Ann's page: her three layers, and the personas she holds.
	run(ctx, "a user's access",
		chromedp.Click(`#users tr[data-email="ann@atlan.test"] a`, chromedp.ByQuery),
		chromedp.WaitVisible("#access", chromedp.ByQuery),
		chromedp.WaitVisible("#acceptance-note", chromedp.ByQuery))
	if got := text(ctx, "#access-personas"); !strings.Contains(got, "Data steward") || !strings.Contains(got, "snowflake-prod") {
		t.Fatalf("ann's personas: %q", got)
	}
	var held int
	run(ctx, "held", chromedp.Evaluate(`document.querySelectorAll('#personas-form input:checked').length`, &held))
	if held != 1 {
		t.Fatalf("%d personas ticked, want 1", held)
	}
	shot(ctx, "19-atlan-user-access")
	// Taking the persona away: none ticked.
	run(ctx, "take the persona away",
		chromedp.Click(`#personas-form input[name=persona_ids]`, chromedp.ByQuery),
		chromedp.Click(`#personas-form button`, chromedp.ByQuery))
	waitFor(ctx, `document.querySelector('#flash')?.textContent === 'Personas saved' && document.querySelector('#access-personas').innerText.includes('none')`)
	run(ctx, "back to users", chromedp.Navigate(base+"/users"), chromedp.WaitVisible("#invite-form", chromedp.ByQuery))

	// The same address again: the page shows the API's refusal.
	run(ctx, "invite twice",
		chromedp.SetValue(`#invite-form textarea[name=emails]`, "ANN@atlan.test", chromedp.ByQuery),
		chromedp.Click(`#invite-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#problem", chromedp.ByQuery))
	if got := text(ctx, "#problem"); !strings.Contains(strings.ToLower(got), "ann@atlan.test") || !strings.Contains(got, "409") {
		t.Fatalf("invite twice: %q", got)
	}
	// Resend Ann's: a new link, so a new invitation id, still pending.
	var annInv string
	run(ctx, "ann's invitation",
		chromedp.Navigate(base+"/users"),
		chromedp.WaitVisible(`#invitations tr[data-email="ann@atlan.test"]`, chromedp.ByQuery),
		chromedp.AttributeValue(`#invitations tr[data-email="ann@atlan.test"] form`, "action", &annInv, nil, chromedp.ByQuery),
		chromedp.Click(`#invitations tr[data-email="ann@atlan.test"] button.resend`, chromedp.ByQuery))
	waitFor(ctx, fmt.Sprintf(`document.querySelector('#flash')?.textContent.startsWith('Invitation sent again') &&
		document.querySelector('#invitations tr[data-email="ann@atlan.test"] form')?.getAttribute('action') !== %q`, annInv))
	// Revoke Bob's: gone from the pending list, his account deactivated.
	run(ctx, "revoke",
		chromedp.Navigate(base+"/users"),
		chromedp.WaitVisible(`#invitations tr[data-email="bob@atlan.test"]`, chromedp.ByQuery),
		chromedp.Click(`#invitations tr[data-email="bob@atlan.test"] button.revoke`, chromedp.ByQuery))
	waitFor(ctx, `document.querySelector('#flash')?.textContent === 'Invitation revoked' && !document.querySelector('#invitations tr[data-email="bob@atlan.test"]')`)
	if got := text(ctx, `#users tr[data-email="bob@atlan.test"]`); !strings.Contains(got, "disabled") {
		t.Fatalf("bob after the revocation: %q", got)
	}

	// A purpose: PII masked for everyone but its members.
	run(ctx, "purposes page",
		chromedp.Navigate(base+"/purposes"),
		chromedp.WaitVisible("#purposes", chromedp.ByQuery),
		chromedp.Click("#new-purpose", chromedp.ByQuery),
		chromedp.WaitVisible("#purpose-form", chromedp.ByQuery),
		chromedp.SetValue(`#purpose-form input[name=name]`, "Customer PII", chromedp.ByQuery),
		chromedp.Click("#save-purpose", chromedp.ByQuery),
		chromedp.WaitVisible("#problem", chromedp.ByQuery))
	// Without classifications the API refuses, naming the field.
	if got := text(ctx, "#problem"); !strings.Contains(got, "classifications") || !strings.Contains(got, "422") {
		t.Fatalf("refused purpose: %q", got)
	}
	run(ctx, "the purpose",
		chromedp.WaitVisible("#purpose-form", chromedp.ByQuery),
		chromedp.SetValue(`#purpose-form input[name=classifications]`, "PII", chromedp.ByQuery),
		chromedp.Click(`#purpose-form input[name=members][value="`+acc.adminID+`"]`, chromedp.ByQuery),
		chromedp.Click(`#purpose-form input[name=actions][value="read"]`, chromedp.ByQuery),
		chromedp.SetValue(`#policy`, "mask", chromedp.ByQuery),
		chromedp.Click("#save-purpose", chromedp.ByQuery))
	waitFor(ctx, `document.querySelector('#flash')?.textContent === 'Purpose saved'`)
	run(ctx, "purposes list", chromedp.Navigate(base+"/purposes"), chromedp.WaitVisible("#purposes", chromedp.ByQuery))
	if got := text(ctx, "#purposes"); !strings.Contains(got, "Customer PII") || !strings.Contains(got, "mask") || !strings.Contains(got, "Ada Admin") {
		t.Fatalf("purposes: %q", got)
	}
	shot(ctx, "16-atlan-purposes")

	// The roles page: the base roles, read-only, no permission editor.
	run(ctx, "base roles", chromedp.Navigate(base+"/roles"), chromedp.WaitVisible("#base-roles", chromedp.ByQuery))
	var editors int
	run(ctx, "no editor", chromedp.Evaluate(`document.querySelectorAll('#new-role, #role-form, input[name=permissions]').length`, &editors))
	if got := text(ctx, "#base-roles"); editors != 0 || !strings.Contains(got, "Admin") || !strings.Contains(got, "Guest") || !strings.Contains(got, "Member") {
		t.Fatalf("base roles (%d editors): %q", editors, got)
	}
	shot(ctx, "17-atlan-base-roles")

	// A guest accepts (through the API): the subscription shows the guest
	// seat apart (S-2).
	if code, p := c.do("POST", "/v1/accounts/"+acc.id+"/invitations", acc.token, map[string]any{"emails": []string{"gus@atlan.test"}, "base_role": "Guest"}); code != 201 {
		t.Fatalf("invite a guest: %d %v", code, p)
	}
	if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": awaitMail(t, mailDir, "gus@atlan.test", "").Token, "password": password}); code != 204 {
		t.Fatalf("the guest accepts: %d %v", code, p)
	}
	svctest.Eventually(t, "the guest seat", func() bool {
		_, sub := c.do("GET", "/v1/accounts/"+acc.id+"/subscription", acc.token, nil)
		sep, _ := sub["separate_seats"].(map[string]any)
		return sep["Guest"] == 1.0
	})
	run(ctx, "subscription", chromedp.Navigate(base+"/subscription"), chromedp.WaitVisible("#separate-seats", chromedp.ByQuery))
	if got := text(ctx, "#separate-seats"); !strings.Contains(got, "Guest seats") || !strings.Contains(got, "1 of the 2 used") {
		t.Fatalf("separate seats: %q", got)
	}
	shot(ctx, "18-atlan-subscription")

	// At a phone's width the pages fit: no page-wide horizontal scrolling
	// (wide tables scroll inside their own box).
	run(ctx, "phone width", chromedp.EmulateViewport(390, 844))
	for _, page := range []string{"/users", "/personas", "/purposes", "/roles", "/subscription"} {
		run(ctx, "phone "+page, chromedp.Navigate(base+page), chromedp.WaitVisible("main", chromedp.ByQuery))
		var width int
		run(ctx, "width of "+page, chromedp.Evaluate(`document.documentElement.scrollWidth`, &width))
		if width > 390 {
			t.Errorf("%s is %d px wide at a 390 px phone width", page, width)
		}
	}
	run(ctx, "phone users", chromedp.Navigate(base+"/users"), chromedp.WaitVisible("#invite-form", chromedp.ByQuery))
	shot(ctx, "20-atlan-users-phone")
}
