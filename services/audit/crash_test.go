package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/audit"
	"roster.dev/services/audit/adapters"
	"roster.dev/services/audit/app"
)

// The crash test runs the audit service in a second copy of this test
// binary, which it kills; childEnv tells the copy to be that service.
const childEnv = "ROSTER_AUDIT_CHILD"

// runChild hosts the audit service alone, as `roster serve audit` does,
// against the parent's NATS and database, until it is killed.
func runChild() int {
	h, err := svc.Start(context.Background(), svc.Config{
		DataDir: os.Getenv("CHILD_DIR"), HTTP: "127.0.0.1:0", NATSURL: os.Getenv("CHILD_NATS"), DB: os.Getenv("CHILD_DB"),
		OperatorToken: operatorToken, AckWait: 2 * time.Second,
	}, audit.NewWith(audit.Options{SigningKeyFile: filepath.Join(os.Getenv("CHILD_DIR"), "audit-signing.key"),
		Checkpoints: app.CheckpointPolicy{Every: 25, Interval: 200 * time.Millisecond}}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit child:", err)
		return 1
	}
	err = <-h.Errors()
	fmt.Fprintln(os.Stderr, "audit child:", err)
	return 1
}

// under crashes: the audit service is killed (SIGKILL) again and
// again while a burst of events for three accounts arrives; afterwards
// every event is recorded exactly once, each account's chain verifies with
// its signed checkpoints, and each record was published once on the public
// stream. On both databases.
func TestAuditConsumerKilledDuringABurst(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		producer := svctest.StartProducer(t, w, dbURL, "identity")
		accounts := []string{"acc_k1", "acc_k2", "acc_k3"}
		const perAccount = 300

		// The burst: each account's events from its own goroutine, in
		// small transactions, while the audit dies and restarts.
		var emitted atomic.Int64
		var wg sync.WaitGroup
		ctx := context.Background()
		for _, acc := range accounts {
			wg.Go(func() {
				for i := 0; i < perAccount; i += 3 {
					evs := []eventbus.Event{}
					for j := i; j < i+3; j++ {
						evs = append(evs, &identityv1.TechnicianCreated{TechnicianId: fmt.Sprintf("tech_%s_%d", acc, j),
							Email: fmt.Sprintf("t%d@%s.example", j, acc), Status: "invited"})
					}
					err := producer.DB.InTx(ctx, func(tx *sql.Tx) error { return producer.Bus.Emit(ctx, tx, acc, evs...) })
					if err != nil {
						t.Error(err)
						return
					}
					emitted.Add(3)
					time.Sleep(time.Duration(rand.IntN(8)) * time.Millisecond)
				}
			})
		}

		kills := 0
		start := func() (*exec.Cmd, chan error) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_DB="+dbURL, "CHILD_DIR="+w.Dir, "CHILD_NATS="+w.ClientURL())
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			return cmd, done
		}
		recorded := func() int64 {
			db := svctest.OpenDB(t, dbURL, w.Dir, "audit")
			var n int64
			// Before the first child migrated, the table does not exist.
			_ = db.QueryRow(`SELECT count(*) FROM audit_records`).Scan(&n)
			db.Close()
			return n
		}
		total := int64(len(accounts) * perAccount)
		for kills < 10 || recorded() < total/2 {
			if kills >= 40 {
				t.Fatalf("after %d kills only %d of %d events are recorded", kills, recorded(), total)
			}
			// Kill each child only once it has recorded something, at a
			// random moment after that: a slow start (race detector, busy
			// machine) must not turn the test into forty kills during
			// start-up with no work done.
			before := recorded()
			cmd, done := start()
			progress := time.Now().Add(20 * time.Second)
			for recorded() == before && emitted.Load() > before {
				select {
				case err := <-done:
					t.Fatalf("the audit child stopped by itself: %v", err)
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(progress) {
					t.Fatalf("the audit child recorded nothing in 20 s (%d recorded, %d emitted)", before, emitted.Load())
				}
			}
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("the audit child stopped by itself: %v", err)
			default:
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-done
			kills++
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("%d kills; %d of %d events recorded before the last restart", kills, recorded(), total)

		// The last restart catches up with the rest.
		last, done := start()
		t.Cleanup(func() {
			select {
			case err := <-done:
				t.Errorf("the last audit child stopped: %v", err)
				return
			default:
			}
			_ = last.Process.Kill()
			<-done
		})
		db := svctest.OpenDB(t, dbURL, w.Dir, "audit")
		svctest.EventuallySeen(t, "every event recorded", func() bool { return recorded() == total },
			func() string { return fmt.Sprintf("%d of %d", recorded(), total) })
		svctest.Eventually(t, "each record published", func() bool {
			return svctest.StreamMsgs(t, w.JS, eventbus.StreamAudit) >= uint64(total)
		})
		st := adapters.Store{DB: db}
		checker := &app.App{Chain: st, Records: st, Checkpoints: st}

		var distinct, events int64
		if err := db.QueryRow(`SELECT count(DISTINCT id), count(*) FROM audit_records`).Scan(&distinct, &events); err != nil {
			t.Fatal(err)
		}
		if distinct != total || events != total {
			t.Fatalf("%d records (%d distinct), want exactly %d", events, distinct, total)
		}
		// The running child signs each head within its interval; verify
		// once it has, so that no checkpoint is added while the test counts.
		for _, acc := range accounts {
			svctest.Eventually(t, acc+"'s head signed", func() bool {
				var last int64
				_ = db.QueryRow(`SELECT COALESCE(MAX(sequence), 0) FROM audit_checkpoints WHERE account_id = $1`, acc).Scan(&last)
				return last == perAccount
			})
		}
		for _, acc := range accounts {
			v, err := checker.Verify(ctx, acc)
			if err != nil {
				t.Fatal(err)
			}
			if !v.OK || v.Records != perAccount {
				t.Fatalf("%s after %d kills: %+v", acc, kills, v)
			}
			var cps int64
			if err := db.QueryRow(`SELECT count(*) FROM audit_checkpoints WHERE account_id = $1`, acc).Scan(&cps); err != nil ||
				cps < perAccount/25 || v.Checkpoints != cps {
				t.Fatalf("%s: %d checkpoints, %d verified, want at least %d (%v)", acc, cps, v.Checkpoints, perAccount/25, err)
			}
		}
		// Nothing more arrives: still exactly once after a settle period.
		time.Sleep(500 * time.Millisecond)
		if n := svctest.StreamMsgs(t, w.JS, eventbus.StreamAudit); n != uint64(total) {
			t.Fatalf("%d messages on %s, want %d", n, eventbus.StreamAudit, total)
		}
	})
}
