package ports

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"roster.dev/services/identity/app"
)

// FuzzLoginBody: the login route's body parser (POST /v1/auth/login)
// either decodes a request — in which the server-side fields cannot be
// set by the client — or answers a problem (400/422), never a panic.
func FuzzLoginBody(f *testing.F) {
	f.Add([]byte(`{"account_id":"acc_1","email":"tess@acme.test","password":"correct horse battery","totp":"123456"}`))
	f.Add([]byte(`{"account_id":"acc_1","email":"x","password":"y","device_label":"laptop","SourceAddress":"10.0.0.1"}`))
	f.Add([]byte(`{"email":1}`))
	f.Add([]byte(`{"a":`))
	f.Add([]byte(``))
	f.Add([]byte(`{"account_id":"acc_1"}{"account_id":"acc_2"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/v1/auth/login", bytes.NewReader(raw))
		var req app.Login
		if _, ok := body(w, r, &req, false); ok {
			if req.SourceAddress != "" {
				t.Fatalf("the client set the source address: %q", req.SourceAddress)
			}
			return
		}
		if w.Code != 400 && w.Code != 413 && w.Code != 422 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
			t.Fatalf("%d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		var p map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p["type"] == nil {
			t.Fatalf("not a problem: %s", w.Body)
		}
	})
}

// FuzzTokenBody: the token-bearing bodies (set password, reset confirm,
// TOTP confirm) decode or answer a problem.
func FuzzTokenBody(f *testing.F) {
	f.Add([]byte(`{"token":"rsr_abc","password":"a new long passphrase"}`))
	f.Add([]byte(`{"token":null}`))
	f.Add([]byte(`{"code":"123456"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/v1/auth/password-reset/confirm", bytes.NewReader(raw))
		var req struct {
			Token    string `json:"token"`
			Password string `json:"password"`
		}
		if _, ok := body(w, r, &req, false); !ok && w.Code < 400 {
			t.Fatalf("refused with %d", w.Code)
		}
	})
}

// FuzzOwnershipEvent: whatever an owning system publishes on
// roster.ownership.>, decoding never panics; an event read as readable
// names an account and a kind from its subject, and a kind in the body
// that is not the subject's is refused (O-4).
func FuzzOwnershipEvent(f *testing.F) {
	f.Add("roster.ownership.acc_1.ticket", []byte(`{"id":"T1","owner_id":"tec_1","status":"open"}`))
	f.Add("roster.ownership.acc_1.report", []byte(`{"op":"delete","id":"R1"}`))
	f.Add("roster.ownership.acc_1.ticket", []byte(`{"kind":"asset","id":"T1"}`))
	f.Add("roster.ownership.acc_1", []byte(`{}`))
	f.Add("roster.ownership.acc_1.a.b", []byte(`{"id":1}`))
	f.Add("roster.ownership..ticket", []byte(`not json`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		ev := DecodeOwnership(subject, 7, nil, data)
		if ev.Unreadable != nil {
			return
		}
		if ev.AccountID == "" || ev.Item.Kind == "" || strings.Contains(ev.Item.Kind, ".") || ev.Seq != 7 {
			t.Fatalf("readable event %+v from %q", ev, subject)
		}
		var m map[string]any
		if json.Unmarshal(data, &m) == nil {
			if k, ok := m["kind"].(string); ok && k != "" && k != ev.Item.Kind {
				t.Fatalf("body kind %q accepted on %q", k, subject)
			}
		}
	})
}
