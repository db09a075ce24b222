package rolepolicy_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/rolepolicy"
	"roster.dev/services/rolepolicy/access"
)

// replica is one rolepolicy process of several on one NATS and one
// database.
type replica struct {
	svc *rolepolicy.Service
	url string
}

// startReplicas starts n rolepolicy services on w and dbURL (the same
// database: on SQLite the same file in w.Dir), each running its catch-up
// loop every catchUp, until the test ends.
func startReplicas(t *testing.T, w *svctest.World, dbURL string, n int, catchUp time.Duration) []replica {
	t.Helper()
	var rs []replica
	for range n {
		s := rolepolicy.New()
		s.SetCatchUp(catchUp)
		url, _, _ := svctest.StartService(t, w, dbURL, s, assignToken)
		done := make(chan error, 1)
		ctx := t.Context()
		go func() { done <- s.Run(ctx) }()
		t.Cleanup(func() {
			if err := <-done; err != nil {
				t.Errorf("rolepolicy Run: %v", err)
			}
		})
		rs = append(rs, replica{svc: s, url: url})
	}
	return rs
}

// check asks replica r's own index, as its rpc.CheckAccess handler does.
func (r replica) check(acc, tech, perm string) access.Decision {
	return r.svc.App().CheckAccess(acc, access.Request{TechnicianID: tech, Permission: perm})
}

// within fails the test unless cond holds within limit, and returns how
// long it took.
func within(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// The access index of every replica converges (issue 13, item 1; R-7): a
// role change made over HTTP on one replica, and a technician change
// applied by whichever replica the shared durable consumer handed the
// event to, reach every replica's access check — through the broadcast in
// milliseconds, and through the catch-up with the broadcast lost.
func TestReplicasConvergeOnRoleChange(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		nw := svctest.NewNATS(t)
		identity := svctest.StartProducer(t, nw, dbURL, "identity")
		const acc, tech, perm = "acc_replicas", "tech_t", "ticketing.auto_assignment"
		// The catch-up is an hour away: only the broadcast can make the
		// first half pass.
		rs := startReplicas(t, nw, dbURL, 2, time.Hour)
		a, b := rs[0], rs[1]

		identity.Emit(t, acc, &identityv1.AccountCreated{Name: "Replicas", Profile: "roster", Plan: "pro",
			BillingPeriod: "monthly", Seats: 5, BillingAnchor: "2026-11-01", AdminTechnicianId: "tech_admin", AdminEmail: "admin@example.com"})
		identity.Emit(t, acc, &identityv1.TechnicianCreated{TechnicianId: tech, Email: "t@example.com", Status: "invited", RequestedRole: "billing"})
		identity.Emit(t, acc, &identityv1.FirstLogin{TechnicianId: tech, Method: "password"})
		// Each event went to one replica; both know all three.
		for i, r := range rs {
			within(t, 30*time.Second, fmt.Sprintf("replica %d: the technician's Billing role", i), func() bool {
				return r.check(acc, tech, perm).Code == access.DeniedPermission
			})
		}
		if d := a.check(acc, "tech_admin", perm); d.Code != access.AllowedAdmin {
			t.Fatalf("replica 0: admin %v", d)
		}

		// Promoted over HTTP on a: b's check allows within the bound.
		status, _, body := svctest.Do(t, http.MethodPut, a.url+rolePath(acc, tech), assignToken, map[string]string{"role": "Admin"})
		if status != http.StatusOK {
			t.Fatalf("PUT role on replica 0: %d %s", status, body)
		}
		took := within(t, 5*time.Second, "replica 1 to allow after the promotion on replica 0", func() bool {
			return b.check(acc, tech, perm).Code == access.AllowedAdmin
		})
		t.Logf("promotion on replica 0 seen by replica 1 after %v (broadcast)", took)

		// Disabled by identity: whichever replica applies it, both deny.
		identity.Emit(t, acc, &identityv1.TechnicianDisabled{TechnicianId: tech})
		for i, r := range rs {
			within(t, 30*time.Second, fmt.Sprintf("replica %d to deny the disabled technician", i), func() bool {
				return r.check(acc, tech, perm).Code == access.DeniedDisabled
			})
		}
	})
}

// With the broadcast lost (replica 0 announces nothing), the catch-up
// alone brings replica 1 to the change within its interval.
func TestReplicasCatchUpWithoutBroadcast(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		nw := svctest.NewNATS(t)
		identity := svctest.StartProducer(t, nw, dbURL, "identity")
		const acc, tech, perm = "acc_catch_up", "tech_t", "ticketing.auto_assignment"
		const catchUp = 100 * time.Millisecond
		rs := startReplicas(t, nw, dbURL, 2, catchUp)
		a, b := rs[0], rs[1]
		identity.Emit(t, acc, &identityv1.AccountCreated{Name: "Catch-up", Profile: "roster", Plan: "pro",
			BillingPeriod: "monthly", Seats: 5, BillingAnchor: "2026-11-01", AdminTechnicianId: "tech_admin", AdminEmail: "admin@example.com"})
		identity.Emit(t, acc, &identityv1.TechnicianCreated{TechnicianId: tech, Email: "t@example.com", Status: "invited", RequestedRole: "billing"})
		identity.Emit(t, acc, &identityv1.FirstLogin{TechnicianId: tech, Method: "password"})
		for i, r := range rs {
			within(t, 30*time.Second, fmt.Sprintf("replica %d: the technician's Billing role", i), func() bool {
				return r.check(acc, tech, perm).Code == access.DeniedPermission
			})
		}

		a.svc.App().SetNotifier(nil)
		status, _, body := svctest.Do(t, http.MethodPut, a.url+rolePath(acc, tech), assignToken, map[string]string{"role": "Admin"})
		if status != http.StatusOK {
			t.Fatalf("PUT role on replica 0: %d %s", status, body)
		}
		took := within(t, 20*catchUp, "replica 1 to allow after the promotion on replica 0", func() bool {
			return b.check(acc, tech, perm).Code == access.AllowedAdmin
		})
		t.Logf("promotion on replica 0 seen by replica 1 after %v (catch-up every %v)", took, catchUp)
	})
}
