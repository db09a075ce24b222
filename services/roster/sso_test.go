package roster

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
)

// browser is an HTTP client that keeps cookies and shows redirects
// instead of following them.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) browser {
	jar, _ := cookiejar.New(nil)
	return browser{t, &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b browser) get(u string) (int, http.Header, map[string]any) {
	b.t.Helper()
	res, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, res.Header, out
}

// signOn runs the authorization code flow in a browser: Roster's start,
// the IdP's authorize (which signs in the queued user at once), Roster's
// callback. It returns the callback's answer and the callback URL.
func signOn(t *testing.T, b browser, h *svc.Host, acc string) (int, map[string]any, string) {
	t.Helper()
	code, hdr, p := b.get(h.URL() + "/v1/auth/oidc/" + acc + "/start")
	if code != 302 {
		t.Fatalf("start: %d %v", code, p)
	}
	authz, _ := url.Parse(hdr.Get("Location"))
	q := authz.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("redirect_uri") != h.URL()+"/v1/auth/oidc/"+acc+"/callback" {
		t.Fatalf("authorization request: %s", authz)
	}
	code, hdr, p = b.get(authz.String())
	if code != 302 {
		t.Fatalf("IdP authorize: %d %v", code, p)
	}
	callback := hdr.Get("Location")
	code, _, p = b.get(callback)
	return code, p, callback
}

// L-6, I-6, S-8: single sign-on against a real OIDC provider running in
// the test (mockoidc: discovery, JWKS, signed ID tokens, PKCE checked at
// the token endpoint): the IdP's email activates an invited technician
// with exactly one FirstLogin; the callback works once and only in the
// browser that started; an email of nobody is refused (no
// self-registration); enforced SSO turns password login off; a plan
// without SSO gets 403 plan-gate.
func TestOIDCSingleSignOn(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, testOIDCSingleSignOn)
}

func testOIDCSingleSignOn(t *testing.T, db string) {
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	idp.CodeChallengeMethodsSupported = []string{"S256"}
	cfg := idp.Config()

	h := startHostWith(t, svc.Config{DataDir: t.TempDir(), DB: db, Now: fixedClock})
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "pro", 3)
	base := "/v1/accounts/" + acc.id
	tess := addTechnician(t, c, acc, "tess@acme.test")

	if code, p := c.do("GET", base+"/sso", acc.token, nil); code != 404 || problemType(p) != problems+"sso-not-configured" {
		t.Fatalf("no configuration: %d %v", code, p)
	}
	if code, p := c.do("PUT", base+"/sso", acc.token, map[string]any{"issuer": "ftp://idp", "client_id": ""}); code != 422 || len(p["errors"].([]any)) != 3 {
		t.Fatalf("bad configuration: %d %v", code, p)
	}
	code, v := c.do("PUT", base+"/sso", acc.token, map[string]any{"issuer": cfg.Issuer, "client_id": cfg.ClientID, "client_secret": cfg.ClientSecret})
	if code != 200 || v["client_secret_set"] != true || v["client_secret"] != nil || v["enforce"] != false {
		t.Fatalf("configure: %d %v", code, v)
	}

	// The invited technician signs on: activated, first login.
	b := newBrowser(t)
	idp.QueueUser(&mockoidc.MockUser{Subject: "okta-1", Email: "tess@acme.test", EmailVerified: true})
	code, s, callback := signOn(t, b, h, acc.id)
	if code != 200 || s["first_login"] != true || s["technician_id"] != tess {
		t.Fatalf("sign-on: %d %v", code, s)
	}
	if code, _ := c.do("GET", "/v1/auth/sessions", s["session_token"].(string), nil); code != 200 {
		t.Fatalf("SSO session: %d", code)
	}
	if _, got := c.do("GET", base+"/technicians/"+tess, acc.token, nil); got["status"] != "active" {
		t.Fatalf("after the sign-on: %v", got)
	}
	// The callback works once.
	if code, _, p := b.get(callback); code != 400 || problemType(p) != problems+"sso-state-invalid" {
		t.Fatalf("replayed callback: %d %v", code, p)
	}
	// Only in the browser that started the sign-on (login CSRF).
	idp.QueueUser(&mockoidc.MockUser{Subject: "okta-1", Email: "tess@acme.test", EmailVerified: true})
	code, hdr, _ := b.get(h.URL() + "/v1/auth/oidc/" + acc.id + "/start")
	_, hdr, _ = b.get(hdr.Get("Location"))
	if code, _, p := newBrowser(t).get(hdr.Get("Location")); code != 400 || problemType(p) != problems+"sso-state-invalid" {
		t.Fatalf("callback in another browser: %d %v", code, p)
	}

	// A second sign-on: no second FirstLogin.
	idp.QueueUser(&mockoidc.MockUser{Subject: "okta-1", Email: "TESS@acme.test", EmailVerified: true})
	if code, s, _ := signOn(t, b, h, acc.id); code != 200 || s["first_login"] != false {
		t.Fatalf("second sign-on: %d %v", code, s)
	}
	// Nobody with that email: refused, nobody created.
	idp.QueueUser(&mockoidc.MockUser{Subject: "okta-2", Email: "stranger@acme.test", EmailVerified: true})
	if code, p, _ := signOn(t, b, h, acc.id); code != 403 || problemType(p) != problems+"sso-no-technician" {
		t.Fatalf("unknown email: %d %v", code, p)
	}
	if _, list := c.do("GET", base+"/technicians?email=stranger@acme.test", acc.token, nil); count(list) != 0 {
		t.Fatalf("a technician was created: %v", list)
	}
	svctest.Eventually(t, "two SSO logins audited", func() bool {
		_, a := c.do("GET", base+"/audit?action=login.succeeded", acc.token, nil)
		return count(a) == 2
	})
	if first := auditRecords(t, c, acc, "technician.first_login", 1); first[0]["data"].(map[string]any)["method"] != "sso" {
		t.Fatalf("FirstLogin: %v", first[0])
	}

	// Enforced: password login is off for the account, for any email.
	withPassword(t, c, acc, tess, "correct horse battery")
	if code, _ := login(c, acc.id, "tess@acme.test", "correct horse battery"); code != 200 {
		t.Fatalf("password login before enforcing: %d", code)
	}
	code, v = c.do("PUT", base+"/sso", acc.token, map[string]any{"issuer": cfg.Issuer, "client_id": cfg.ClientID, "enforce": true})
	if code != 200 || v["enforce"] != true || v["client_secret_set"] != true {
		t.Fatalf("enforce (keeping the secret): %d %v", code, v)
	}
	for _, email := range []string{"tess@acme.test", "nobody@acme.test"} {
		if code, p := login(c, acc.id, email, "correct horse battery"); code != 403 || problemType(p) != problems+"sso-enforced" {
			t.Fatalf("password login of %s under enforced SSO: %d %v", email, code, p)
		}
	}
	idp.QueueUser(&mockoidc.MockUser{Subject: "okta-1", Email: "tess@acme.test", EmailVerified: true})
	if code, s, _ := signOn(t, b, h, acc.id); code != 200 {
		t.Fatalf("sign-on under enforced SSO: %d %v", code, s)
	}

	// S-8: atera-msp Growth has no SSO.
	msp := createAccount(t, c, "atera-msp", "growth", 3)
	if code, p := c.do("PUT", "/v1/accounts/"+msp.id+"/sso", msp.token, map[string]any{"issuer": cfg.Issuer, "client_id": cfg.ClientID, "client_secret": "x"}); code != 403 || problemType(p) != problems+"plan-gate" {
		t.Fatalf("SSO on atera-msp growth: %d %v", code, p)
	}
	if code, _, p := b.get(h.URL() + "/v1/auth/oidc/" + msp.id + "/start"); code != 403 || problemType(p) != problems+"plan-gate" {
		t.Fatalf("start on atera-msp growth: %d %v", code, p)
	}
}
