package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"roster.dev/pkg/mail"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/identity/adapters"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/migrations"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// slowTransport takes its time over each mail, so that two mailers overlap.
type slowTransport struct {
	mu   sync.Mutex
	sent map[string]int
}

func (s *slowTransport) Send(_ context.Context, m mail.Message) error {
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[m.ID]++
	return nil
}

// Two identity replicas' mailers on one database (issue 13): each queued
// mail is sent once, not once per replica — a mailer claims its batch
// (DueMail) before it sends.
func TestMailersOfReplicasSendEachMailOnce(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		dir := t.TempDir()
		tr := &slowTransport{sent: map[string]int{}}
		var mailers []*app.Credentials
		for range 2 {
			db, err := store.Open(ctx, store.Config{URL: dbURL, DataDir: dir, Service: "identity"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(ctx, migrations.FS); err != nil {
				t.Fatal(err)
			}
			mailers = append(mailers, &app.Credentials{App: &app.App{DB: db}, Creds: adapters.Store{DB: db}, Mail: tr, Log: slog.New(slog.DiscardHandler)})
		}
		const n = 120
		db := mailers[0].App.DB
		st := adapters.Store{DB: db}
		created := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			for i := range n {
				m := app.OutboxMail{ID: fmt.Sprintf("inv_%03d", i), AccountID: "acc_1", To: "t@acme.test", Subject: "Set your password",
					Body: "token", CreatedAt: created.Add(time.Duration(i) * time.Second)}
				if err := st.QueueMail(ctx, tx, m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		sent := make([]int, len(mailers))
		for i, c := range mailers {
			wg.Go(func() {
				for {
					k, err := c.DeliverMail(ctx)
					if err != nil {
						t.Errorf("mailer %d: %v", i, err)
						return
					}
					sent[i] += k
					var left int
					if err := c.App.DB.QueryRowContext(ctx, `SELECT count(*) FROM mail_outbox`).Scan(&left); err != nil {
						t.Errorf("mailer %d: %v", i, err)
						return
					}
					if left == 0 {
						return
					}
					if k == 0 {
						time.Sleep(time.Millisecond) // the other mailer's batch
					}
				}
			})
		}
		wg.Wait()
		if len(tr.sent) != n || sent[0]+sent[1] != n {
			t.Fatalf("%d mails sent (%v by mailer), want %d", len(tr.sent), sent, n)
		}
		for id, k := range tr.sent {
			if k != 1 {
				t.Errorf("mail %s sent %d times", id, k)
			}
		}
		t.Logf("mails sent by each mailer: %v", sent)
	})
}
