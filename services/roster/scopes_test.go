package roster

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/svc"
)

// routeScopes is the scope each account route requires (api.md "Auth").
// Every route of the all-in-one host must be listed: a new route without
// an entry fails TestEveryRouteRefusesATokenWithoutItsScope. Special
// entries: "any" is any token of the account (sessions included; the
// handler may check more), "operator" the operator token only, "public"
// no token (the body or a mailed token authenticates), "session" a
// technician's session token.
var routeScopes = map[string]string{
	"GET /healthz": "public", "GET /readyz": "public", "GET /metrics": "public",
	"POST /v1/accounts":                      "operator",
	"GET /v1/accounts/{acc}":                 "any",
	"POST /v1/accounts/{acc}/tokens":         "any",
	"GET /v1/accounts/{acc}/tokens":          "any",
	"DELETE /v1/accounts/{acc}/tokens/{tok}": "any",

	"GET /v1/accounts/{acc}/sites":                             "technicians:read",
	"POST /v1/accounts/{acc}/sites":                            "technicians:write",
	"POST /v1/accounts/{acc}/sites/{site}/folders":             "technicians:write",
	"GET /v1/accounts/{acc}/technicians":                       "technicians:read",
	"POST /v1/accounts/{acc}/technicians":                      "technicians:write",
	"GET /v1/accounts/{acc}/technicians/{id}":                  "technicians:read",
	"PATCH /v1/accounts/{acc}/technicians/{id}":                "technicians:write",
	"POST /v1/accounts/{acc}/technicians/{id}/disable":         "technicians:write",
	"POST /v1/accounts/{acc}/technicians/{id}/enable":          "technicians:write",
	"POST /v1/accounts/{acc}/technicians/{id}/erase":           "technicians:write",
	"POST /v1/accounts/{acc}/technicians/{id}/licence-removal": "technicians:write",
	"POST /v1/accounts/{acc}/technicians/{id}/invitation":      "technicians:write",
	// atlan (issue 9): invitations, personas, purposes.
	"GET /v1/accounts/{acc}/invitations":                        "technicians:read",
	"POST /v1/accounts/{acc}/invitations":                       "technicians:write",
	"POST /v1/accounts/{acc}/invitations/{id}/resend":           "technicians:write",
	"DELETE /v1/accounts/{acc}/invitations/{id}":                "technicians:write",
	"GET /v1/accounts/{acc}/personas":                           "roles:read",
	"POST /v1/accounts/{acc}/personas":                          "roles:write",
	"GET /v1/accounts/{acc}/personas/{id}":                      "roles:read",
	"PUT /v1/accounts/{acc}/personas/{id}":                      "roles:write",
	"DELETE /v1/accounts/{acc}/personas/{id}":                   "roles:write",
	"PUT /v1/accounts/{acc}/technicians/{id}/personas":          "roles:write",
	"GET /v1/accounts/{acc}/purposes":                           "roles:read",
	"POST /v1/accounts/{acc}/purposes":                          "roles:write",
	"GET /v1/accounts/{acc}/purposes/{id}":                      "roles:read",
	"PUT /v1/accounts/{acc}/purposes/{id}":                      "roles:write",
	"DELETE /v1/accounts/{acc}/purposes/{id}":                   "roles:write",
	"POST /v1/accounts/{acc}/technicians/{id}/password":         "technicians:write",
	"POST /v1/accounts/{acc}/technicians/{id}/unlock":           "technicians:write",
	"GET /v1/accounts/{acc}/technicians/{id}/sessions":          "technicians:read",
	"DELETE /v1/accounts/{acc}/technicians/{id}/sessions":       "technicians:write",
	"DELETE /v1/accounts/{acc}/technicians/{id}/sessions/{sid}": "technicians:write",
	"DELETE /v1/accounts/{acc}/technicians/{id}/totp":           "technicians:write",
	"GET /v1/accounts/{acc}/security-policy":                    "technicians:read",
	"PUT /v1/accounts/{acc}/security-policy":                    "technicians:write",
	"GET /v1/accounts/{acc}/sso":                                "technicians:read",
	"PUT /v1/accounts/{acc}/sso":                                "technicians:write",
	"GET /v1/auth/oidc/{acc}/start":                             "public",
	"GET /v1/auth/oidc/{acc}/callback":                          "public",
	"GET /v1/accounts/{acc}/end-users":                          "technicians:read",
	"POST /v1/accounts/{acc}/end-users":                         "technicians:write",
	"GET /v1/accounts/{acc}/end-users/{id}":                     "technicians:read",
	"POST /v1/accounts/{acc}/end-users/{id}/deactivate":         "technicians:write",
	"POST /v1/accounts/{acc}/end-users/{id}/reactivate":         "technicians:write",
	"GET /v1/accounts/{acc}/end-users/{id}/can-submit-tickets":  "technicians:read",
	"GET /v1/accounts/{acc}/subscription":                       "billing:read",
	// Offboarding and ownership (O-1…O-4): owning systems hold ownership:write.
	"POST /v1/accounts/{acc}/ownership":                        "ownership:write",
	"GET /v1/accounts/{acc}/ownership":                         "technicians:read",
	"GET /v1/accounts/{acc}/ownership/orphans":                 "technicians:read",
	"POST /v1/accounts/{acc}/ownership/reassign":               "technicians:write",
	"DELETE /v1/accounts/{acc}/ownership/{kind}/{id}":          "ownership:write",
	"GET /v1/accounts/{acc}/offboardings/{id}":                 "technicians:read",
	"POST /v1/accounts/{acc}/offboardings/{id}/acks":           "ownership:write",
	"POST /v1/accounts/{acc}/subscription/quote":               "billing:write",
	"GET /v1/accounts/{acc}/charges":                           "billing:read",
	"PUT /v1/accounts/{acc}/subscription/add-ons/{add_on}":     "billing:write",
	"DELETE /v1/accounts/{acc}/subscription/add-ons/{add_on}":  "billing:write",
	"GET /v1/accounts/{acc}/features":                          "billing:read",
	"GET /v1/accounts/{acc}/seats/unused":                      "billing:read",
	"GET /v1/permissions":                                      "any",
	"GET /v1/accounts/{acc}/roles":                             "roles:read",
	"POST /v1/accounts/{acc}/roles":                            "roles:write",
	"GET /v1/accounts/{acc}/roles/{id}":                        "roles:read",
	"PUT /v1/accounts/{acc}/roles/{id}":                        "roles:write",
	"DELETE /v1/accounts/{acc}/roles/{id}":                     "roles:write",
	"GET /v1/accounts/{acc}/technicians/{id}/role":             "roles:read",
	"PUT /v1/accounts/{acc}/technicians/{id}/role":             "roles:write",
	"POST /v1/accounts/{acc}/access/check":                     "roles:read",
	"GET /v1/accounts/{acc}/technicians/{id}/effective-access": "roles:read",
	"GET /v1/accounts/{acc}/audit":                             "audit:read",
	"GET /v1/accounts/{acc}/audit/verify":                      "audit:read",
	"GET /v1/accounts/{acc}/audit/checkpoints":                 "audit:read",
	"GET /v1/accounts/{acc}/audit/stream":                      "audit:read (stream)",
	"GET /v1/audit/keys":                                       "public",
	"GET /v1/audit/stream":                                     "operator",

	// Directory sync (issue 8). A webhook delivery carries no token: its
	// Standard Webhooks signature authenticates it.
	"POST /v1/accounts/{acc}/hris/{source}":                "public",
	"POST /v1/accounts/{acc}/hris/secrets":                 "hris:admin",
	"GET /v1/accounts/{acc}/hris/mapping":                  "hris:admin",
	"PUT /v1/accounts/{acc}/hris/mapping":                  "hris:admin",
	"GET /v1/accounts/{acc}/hris/deliveries":               "hris:admin",
	"GET /v1/accounts/{acc}/hris/deliveries/{id}":          "hris:admin",
	"POST /v1/accounts/{acc}/hris/deliveries/{id}/redrive": "hris:admin",
	"POST /v1/accounts/{acc}/imports":                      "technicians:write",
	"GET /v1/accounts/{acc}/imports/{id}":                  "technicians:read",
	"GET /v1/accounts/{acc}/imports/{id}/rows":             "technicians:read",
	"GET /v1/accounts/{acc}/technicians/{id}/directory":    "technicians:read",
	"GET /v1/accounts/{acc}/end-users/{id}/directory":      "technicians:read",
	"POST /scim/v2/{acc}/.search":                          "scim",
	"GET /scim/v2/{acc}/ServiceProviderConfig":             "scim",
	"GET /scim/v2/{acc}/Schemas":                           "scim",
	"GET /scim/v2/{acc}/Schemas/{id}":                      "scim",
	"GET /scim/v2/{acc}/ResourceTypes":                     "scim",
	"GET /scim/v2/{acc}/ResourceTypes/{id}":                "scim",
	"GET /scim/v2/{acc}/Users":                             "scim",
	"POST /scim/v2/{acc}/Users":                            "scim",
	"POST /scim/v2/{acc}/Users/.search":                    "scim",
	"GET /scim/v2/{acc}/Users/{id}":                        "scim",
	"PUT /scim/v2/{acc}/Users/{id}":                        "scim",
	"PATCH /scim/v2/{acc}/Users/{id}":                      "scim",
	"DELETE /scim/v2/{acc}/Users/{id}":                     "scim",
	"GET /scim/v2/{acc}/Groups":                            "scim",
	"POST /scim/v2/{acc}/Groups":                           "scim",
	"POST /scim/v2/{acc}/Groups/.search":                   "scim",
	"GET /scim/v2/{acc}/Groups/{id}":                       "scim",
	"PUT /scim/v2/{acc}/Groups/{id}":                       "scim",
	"PATCH /scim/v2/{acc}/Groups/{id}":                     "scim",
	"DELETE /scim/v2/{acc}/Groups/{id}":                    "scim",

	"POST /v1/auth/password":               "public",
	"POST /v1/auth/login":                  "public",
	"POST /v1/auth/password-reset":         "public",
	"POST /v1/auth/password-reset/confirm": "public",
	"POST /v1/auth/logout":                 "session",
	"POST /v1/auth/password/change":        "session",
	"GET /v1/auth/sessions":                "session",
	"DELETE /v1/auth/sessions/{sid}":       "session",
	"POST /v1/auth/totp/enroll":            "session",
	"POST /v1/auth/totp/confirm":           "session",
}

// Every route of the all-in-one host is in routeScopes, and every route
// that requires a scope refuses (403) a token of the account holding every
// other scope, and lets through (neither 401 nor 403) a token holding that
// scope alone.
func TestEveryRouteRefusesATokenWithoutItsScope(t *testing.T) {
	t.Parallel()
	h := startHostWith(t, svc.Config{DataDir: t.TempDir(), Now: fixedClock})
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "pro", 3)

	type route struct{ method, pattern string }
	var routes []route
	err := chi.Walk(h.Routes(), func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, route{method, pattern})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.pattern == "/metrics" { // mounted for every method
			continue
		}
		if _, ok := routeScopes[r.method+" "+r.pattern]; !ok {
			t.Errorf("%s %s is not in routeScopes: say which scope it requires", r.method, r.pattern)
		}
	}

	scopes := []string{"technicians:read", "technicians:write", "roles:read", "roles:write", "billing:read", "billing:write", "audit:read", "scim", "hris:admin", "ownership:write"}
	mint := func(name string, scopes []string) string {
		code, body := c.do("POST", "/v1/accounts/"+acc.id+"/tokens", acc.token, map[string]any{"name": name, "scopes": scopes})
		if code != 201 {
			t.Fatalf("mint %v: %d %v", scopes, code, body)
		}
		return body["token"].(string)
	}
	without, only := map[string]string{}, map[string]string{}
	for _, s := range scopes {
		without[s] = mint("without "+s, slices.DeleteFunc(slices.Clone(scopes), func(x string) bool { return x == s }))
		only[s] = mint("only "+s, []string{s})
	}
	path := func(pattern string) string {
		p := strings.ReplaceAll(pattern, "{acc}", acc.id)
		for _, v := range []string{"{id}", "{site}", "{sid}", "{tok}", "{add_on}", "{kind}"} {
			p = strings.ReplaceAll(p, v, "x_nope")
		}
		return p
	}
	checked := 0
	for _, r := range routes {
		// A stream's answer never ends: only its refusal is checked.
		scope, stream := strings.CutSuffix(routeScopes[r.method+" "+r.pattern], " (stream)")
		if !strings.Contains(scope, ":") && scope != "scim" {
			continue
		}
		checked++
		if code, body := c.do(r.method, path(r.pattern), without[scope], map[string]any{}); code != 403 {
			t.Errorf("%s %s without %s: %d %v, want 403", r.method, r.pattern, scope, code, body)
		}
		if stream {
			continue
		}
		if code, body := c.do(r.method, path(r.pattern), only[scope], map[string]any{}); code == 401 || code == 403 {
			t.Errorf("%s %s with %s alone: %d %v", r.method, r.pattern, scope, code, body)
		}
	}
	t.Logf("%d scoped routes checked", checked)
	if checked < 40 {
		t.Fatalf("only %d scoped routes checked", checked)
	}
	// The scopes of issue 7's list are each required by some route.
	for _, s := range []string{"technicians:write", "roles:write", "billing:read", "audit:read"} {
		if !slices.Contains(slices.Collect(mapValues(routeScopes)), s) {
			t.Errorf("no route requires %s", s)
		}
	}
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}
