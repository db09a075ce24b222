package roster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
)

// L-1, L-5: a failed login and a reset request cost the same whether or
// not the email belongs to a technician. Through the all-in-one host over
// HTTP (SQLite), with lockout and rate limits raised so every attempt is a
// plain failure:
//
//	go test -run '^$' -bench 'LoginFailure|ResetRequest' -benchtime 40x -count 3 roster.dev/services/roster
func BenchmarkLoginFailure(b *testing.B) {
	for _, who := range []string{"known", "unknown"} {
		b.Run(who, func(b *testing.B) {
			url, accID := benchHost(b)
			body := map[string]any{"account_id": accID, "email": who + "@acme.test", "password": "wrong horse battery"}
			b.ResetTimer()
			for range b.N {
				if code, _, _ := svctest.Do(b, "POST", url+"/v1/auth/login", "", body); code != 401 {
					b.Fatalf("login: %d", code)
				}
			}
		})
	}
}

func BenchmarkResetRequest(b *testing.B) {
	for _, who := range []string{"known", "unknown"} {
		b.Run(who, func(b *testing.B) {
			url, accID := benchHost(b)
			body := map[string]any{"account_id": accID, "email": who + "@acme.test"}
			b.ResetTimer()
			for range b.N {
				if code, _, _ := svctest.Do(b, "POST", url+"/v1/auth/password-reset", "", body); code != 202 {
					b.Fatalf("reset: %d", code)
				}
			}
		})
	}
}

// benchHost starts the all-in-one host with an account whose technician
// known@acme.test has a password; lockout and rate limits out of the way.
func benchHost(b *testing.B) (string, string) {
	f := benchHostWith(b, svc.Config{})
	return f.url, f.acc
}

// benchFixture is what benchHostWith set up.
type benchFixture struct {
	url, acc, token, tech string
}

// benchHostWith is benchHost with cfg's TokenCacheTTL, returning the
// account's API token and the technician too.
func benchHostWith(b *testing.B, cfg svc.Config) benchFixture {
	h, err := svc.Start(context.Background(), svc.Config{DataDir: b.TempDir(), HTTP: "127.0.0.1:0", OperatorToken: operator,
		NATSListen: "off", Now: fixedClock, TokenCacheTTL: cfg.TokenCacheTTL}, Services()...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Stop(context.Background()) })
	select {
	case <-h.Ready():
	case <-time.After(30 * time.Second):
		b.Fatal("not ready")
	}
	call := func(method, path, token string, body any, want int) map[string]any {
		code, _, raw := svctest.Do(b, method, h.URL()+path, token, body)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		if code != want {
			b.Fatalf("%s %s: %d %s", method, path, code, raw)
		}
		return out
	}
	created := call("POST", "/v1/accounts", operator, map[string]any{"name": "Bench", "profile": "roster", "plan": "pro",
		"billing_period": "monthly", "seats": 3, "admin": map[string]any{"email": "admin@acme.test", "first_name": "A", "last_name": "A"}}, 201)
	acc, tok := created["account"].(map[string]any)["id"].(string), created["api_token"].(string)
	base := "/v1/accounts/" + acc
	svctest.Eventually(b, "the subscription", func() bool {
		code, _, _ := svctest.Do(b, "GET", h.URL()+base+"/subscription", tok, nil)
		return code == 200
	})
	tech := call("POST", base+"/technicians", tok, map[string]any{"email": "known@acme.test", "first_name": "K", "last_name": "K"}, 201)
	call("POST", base+"/technicians/"+tech["id"].(string)+"/password", tok, map[string]any{"password": "correct horse battery"}, 204)
	call("PUT", base+"/security-policy", tok, map[string]any{"lockout_threshold": 100, "rate_limit_per_address": 100000, "rate_limit_per_account": 1000000}, 200)
	return benchFixture{url: h.URL(), acc: acc, token: tok, tech: tech["id"].(string)}
}

// Issue 18, "HTTP access check, 16 clients": 16 clients check a
// technician's access (POST …/access/check, rolepolicy's in-memory index)
// or read their role (GET …/technicians/{id}/role, a SQL read), with an
// API token or a technician's session, every request authenticated;
// without the token cache every one asks identity over NATS, with it only
// the first of each token:
//
//	go test -run '^$' -bench AuthenticatedRequests -benchtime 20000x -count 3 roster.dev/services/roster
func BenchmarkAuthenticatedRequests(b *testing.B) {
	for _, cache := range []struct {
		name string
		ttl  time.Duration
	}{{"no-cache", -1}, {"cache", 0}} {
		for _, route := range []string{"check", "role"} {
			for _, kind := range []string{"api-token", "session"} {
				b.Run(route+"/"+kind+"/"+cache.name, func(b *testing.B) {
					f := benchHostWith(b, svc.Config{TokenCacheTTL: cache.ttl})
					token := f.token
					if kind == "session" {
						code, _, raw := svctest.Do(b, "POST", f.url+"/v1/auth/login", "",
							map[string]any{"account_id": f.acc, "email": "admin@acme.test", "password": "correct horse battery"})
						if code != 200 {
							// The admin has no password yet: give one, then log in.
							token = benchAdminSession(b, f)
						} else {
							var s map[string]any
							_ = json.Unmarshal(raw, &s)
							token = s["session_token"].(string)
						}
					}
					method, url, body := "GET", f.url+"/v1/accounts/"+f.acc+"/technicians/"+f.tech+"/role", ""
					if route == "check" {
						method, url = "POST", f.url+"/v1/accounts/"+f.acc+"/access/check"
						body = fmt.Sprintf(`{"technician_id":%q,"permission":%q}`, f.tech, benchPermission(b, f))
					}
					client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
					b.Cleanup(client.CloseIdleConnections)
					get := func() error {
						req, _ := http.NewRequest(method, url, strings.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+token)
						if body != "" {
							req.Header.Set("Content-Type", "application/json")
						}
						res, err := client.Do(req)
						if err != nil {
							return err
						}
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != 200 {
							return fmt.Errorf("%s %s: %d", method, url, res.StatusCode)
						}
						return nil
					}
					if err := get(); err != nil {
						b.Fatal(err)
					}
					b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := get(); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
				})
			}
		}
	}
}

// benchPermission is a permission of the roster profile's catalogue.
func benchPermission(b *testing.B, f benchFixture) string {
	code, _, raw := svctest.Do(b, "GET", f.url+"/v1/permissions?profile=roster", f.token, nil)
	var perms struct {
		Data []struct{ ID string } `json:"data"`
	}
	if err := json.Unmarshal(raw, &perms); code != 200 || err != nil || len(perms.Data) == 0 {
		b.Fatalf("permissions: %d %s", code, raw)
	}
	return perms.Data[0].ID
}

// benchAdminSession gives the account's admin a password and logs in.
func benchAdminSession(b *testing.B, f benchFixture) string {
	var admin string
	svctest.Eventually(b, "the admin", func() bool {
		_, _, raw := svctest.Do(b, "GET", f.url+"/v1/accounts/"+f.acc+"/technicians", f.token, nil)
		var list struct {
			Data []struct{ ID, Email string } `json:"data"`
		}
		_ = json.Unmarshal(raw, &list)
		for _, t := range list.Data {
			if t.Email == "admin@acme.test" {
				admin = t.ID
			}
		}
		return admin != ""
	})
	if code, _, raw := svctest.Do(b, "POST", f.url+"/v1/accounts/"+f.acc+"/technicians/"+admin+"/password", f.token,
		map[string]any{"password": "correct horse battery"}); code != 204 {
		b.Fatalf("admin password: %d %s", code, raw)
	}
	code, _, raw := svctest.Do(b, "POST", f.url+"/v1/auth/login", "",
		map[string]any{"account_id": f.acc, "email": "admin@acme.test", "password": "correct horse battery"})
	var s map[string]any
	_ = json.Unmarshal(raw, &s)
	if code != 200 {
		b.Fatalf("login: %d %s", code, raw)
	}
	return s["session_token"].(string)
}

// Issue 18: what read-your-writes revocation costs. Each iteration mints
// an API token, uses it twice (the second use is served by the cache),
// revokes it (timed: the revoking request waits until every token cache
// dropped it) and checks that the next request is refused:
//
//	go test -run '^$' -bench TokenRevoke -benchtime 300x -count 3 roster.dev/services/roster
func BenchmarkTokenRevoke(b *testing.B) {
	for _, cache := range []struct {
		name string
		ttl  time.Duration
	}{{"no-cache", -1}, {"cache", 0}} {
		b.Run(cache.name, func(b *testing.B) {
			f := benchHostWith(b, svc.Config{TokenCacheTTL: cache.ttl})
			base := f.url + "/v1/accounts/" + f.acc
			var revoking time.Duration
			b.ResetTimer()
			for range b.N {
				code, _, raw := svctest.Do(b, "POST", base+"/tokens", f.token, map[string]any{"name": "r", "scopes": []string{"roles:read"}})
				var tok struct{ ID, Token string }
				if err := json.Unmarshal(raw, &tok); code != 201 || err != nil {
					b.Fatalf("mint: %d %s", code, raw)
				}
				for range 2 {
					if code, _, _ := svctest.Do(b, "GET", base+"/roles", tok.Token, nil); code != 200 {
						b.Fatalf("use: %d", code)
					}
				}
				t0 := time.Now()
				if code, _, raw := svctest.Do(b, "DELETE", base+"/tokens/"+tok.ID, f.token, nil); code != 204 {
					b.Fatalf("revoke: %d %s", code, raw)
				}
				revoking += time.Since(t0)
				if code, _, _ := svctest.Do(b, "GET", base+"/roles", tok.Token, nil); code != 401 {
					b.Fatalf("revoked token: %d", code)
				}
			}
			b.ReportMetric(float64(revoking.Microseconds())/float64(b.N), "revoke-µs")
		})
	}
}
