package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/svc"
	"roster.dev/services/audit"
	"roster.dev/services/identity"
	"roster.dev/services/rolepolicy"
	"roster.dev/services/seatbilling"
)

const operatorToken = "operator-token-for-deploy-tests"

// urlFor is the --nats-url of user: every node, with the user's password.
func (c *natsCluster) urlFor(user string) string {
	var us []string
	for _, u := range c.urls {
		us = append(us, strings.Replace(u, "nats://", "nats://"+user+":"+password(user)+"@", 1))
	}
	return strings.Join(us, ",")
}

// do sends a JSON request and decodes the JSON answer.
func do(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

// Each service as its own process (a host per service, as `roster serve
// <service>` runs it) on the NATS cluster of deploy/nats, each with its
// own user (issue 13): the permissions of nats.conf let every flow through
// — streams created with replicas 3, events, durable consumers,
// request-reply in both directions, the public audit stream — which a
// missing subject would stop.
func TestServicesRunWithTheirNATSUsers(t *testing.T) {
	c := startNATSCluster(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Started at once with the cluster: the first service waits for
	// JetStream's meta leader and creates the streams with its own user.
	hosts := map[string]*svc.Host{}
	for _, s := range []svc.Service{identity.New(), seatbilling.New(), rolepolicy.New(),
		audit.NewWith(audit.Options{SigningKeyFile: filepath.Join(t.TempDir(), "audit-signing.key")})} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		h, err := svc.Start(ctx, svc.Config{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", NATSURL: c.urlFor(s.Name()),
			OperatorToken: operatorToken, StreamReplicas: 3, Log: log}, s)
		cancel()
		if err != nil {
			t.Fatalf("%s with its NATS user: %v", s.Name(), err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = h.Stop(ctx)
		})
		select {
		case <-h.Ready():
		case err := <-h.Errors():
			t.Fatalf("%s: %v", s.Name(), err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s not ready", s.Name())
		}
		hosts[s.Name()] = h
	}

	reader, _ := c.connect(t, "audit-reader")
	audited, err := reader.SubscribeSync("roster.audit.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.Flush(); err != nil {
		t.Fatal(err)
	}

	code, created := do(t, "POST", hosts["identity"].URL()+"/v1/accounts", operatorToken, map[string]any{
		"name": "Acme", "profile": "roster", "plan": "growth", "billing_period": "monthly", "seats": 2,
		"admin": map[string]any{"email": "admin@acme.test", "first_name": "Ada", "last_name": "Admin"},
	})
	if code != 201 {
		t.Fatalf("create account: %d %v", code, created)
	}
	acc := created["account"].(map[string]any)["id"].(string)
	token := created["api_token"].(string)
	// seatbilling opened the subscription from identity's AccountCreated.
	waitFor(t, "the subscription on seatbilling", func() bool {
		code, _ := do(t, "GET", hosts["seatbilling"].URL()+"/v1/accounts/"+acc+"/subscription", operatorToken, nil)
		return code == 200
	})
	// identity asks seatbilling for a seat (rpc.ReserveSeat).
	code, tech := do(t, "POST", hosts["identity"].URL()+"/v1/accounts/"+acc+"/technicians", token,
		map[string]any{"email": "tess@acme.test", "first_name": "Tess", "last_name": "Tech"})
	if code != 201 {
		t.Fatalf("add technician: %d %v", code, tech)
	}
	techID := tech["id"].(string)
	// rolepolicy authenticates the account token with identity
	// (rpc.Authenticate) and knows the technician from identity's event.
	waitFor(t, "the technician's role on rolepolicy", func() bool {
		code, _ := do(t, "GET", hosts["rolepolicy"].URL()+"/v1/accounts/"+acc+"/technicians/"+techID+"/role", token, nil)
		return code == 200
	})
	// audit recorded it and published it on the public stream.
	want := "roster.audit." + acc + "."
	deadline := time.Now().Add(20 * time.Second)
	seen := map[string]bool{}
	for !seen["technician.created"] {
		m, err := audited.NextMsg(time.Until(deadline))
		if err != nil {
			t.Fatalf("audit records on the public stream: %v (seen %v)", err, seen)
		}
		if strings.HasPrefix(m.Subject, want) {
			seen[strings.TrimPrefix(m.Subject, want)] = true
		}
	}
	t.Logf("audit actions seen by the reader: %s", fmt.Sprint(seen))

	// Each process's token cache runs its consumer of identity's stream
	// with its own user, and a token revoked through identity is refused
	// by the next request to another process (issue 18: the revoking
	// request waits until every cache dropped it).
	nc, _ := c.connect(t, "identity")
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	caches := 0
	for ci := range js.ConsumersInfo("ROSTER_IDENTITY") {
		if strings.HasPrefix(ci.Name, "auth_") {
			caches++
		}
	}
	if caches != len(hosts) {
		t.Fatalf("%d token caches' consumers, want one per process (%d)", caches, len(hosts))
	}
	base := "/v1/accounts/" + acc
	code, minted := do(t, "POST", hosts["identity"].URL()+base+"/tokens", token, map[string]any{"name": "reader", "scopes": []string{"roles:read"}})
	if code != 201 {
		t.Fatalf("mint: %d %v", code, minted)
	}
	secret := minted["token"].(string)
	for range 3 {
		if code, body := do(t, "GET", hosts["rolepolicy"].URL()+base+"/technicians/"+techID+"/role", secret, nil); code != 200 {
			t.Fatalf("a new token on rolepolicy: %d %v", code, body)
		}
	}
	if code, body := do(t, "DELETE", hosts["identity"].URL()+base+"/tokens/"+minted["id"].(string), token, nil); code != 204 {
		t.Fatalf("revoke: %d %v", code, body)
	}
	if code, _ := do(t, "GET", hosts["rolepolicy"].URL()+base+"/technicians/"+techID+"/role", secret, nil); code != 401 {
		t.Fatalf("a revoked token on rolepolicy, the next request: %d", code)
	}
}
