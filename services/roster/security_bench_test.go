package roster

import (
	"context"
	"encoding/json"
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
	h, err := svc.Start(context.Background(), svc.Config{DataDir: b.TempDir(), HTTP: "127.0.0.1:0", OperatorToken: operator,
		NATSListen: "off", Now: fixedClock}, Services()...)
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
	return h.URL(), acc
}
