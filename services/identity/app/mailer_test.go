package app_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"roster.dev/pkg/mail"
	"roster.dev/pkg/store"
	"roster.dev/services/identity/adapters"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/migrations"
)

type fakeTransport struct {
	mu   sync.Mutex
	fail bool
	sent []mail.Message
	n    int
}

func (f *fakeTransport) Send(_ context.Context, m mail.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.fail {
		return errors.New("550 mailbox unavailable")
	}
	f.sent = append(f.sent, m)
	return nil
}

// flows.md: the mailer sends from its outbox, retried until sent — a
// refused mail stays queued and waits before the next attempt; a sent one
// is forgotten, so its secret link leaves the database.
func TestDeliverMail(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DataDir: t.TempDir(), Service: "identity"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	st := adapters.Store{DB: db}
	tr := &fakeTransport{fail: true}
	c := &app.Credentials{App: &app.App{DB: db}, Creds: st, Mail: tr, Log: slog.New(slog.DiscardHandler)}
	created := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	queued := app.OutboxMail{ID: "inv_1", AccountID: "acc_1", To: "tess@acme.test", Subject: "Set your password", Body: "token=rsi_x", CreatedAt: created}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return st.QueueMail(ctx, tx, queued) }); err != nil {
		t.Fatal(err)
	}
	row := func() (attempts int, next, reason string, ok bool) {
		err := db.QueryRowContext(ctx, `SELECT attempts, next_attempt_at, last_error FROM mail_outbox WHERE id = 'inv_1'`).Scan(&attempts, &next, &reason)
		return attempts, next, reason, err == nil
	}

	// Refused: kept, with the reason, not due again at once.
	if sent, err := c.DeliverMail(ctx); sent != 0 || err != nil {
		t.Fatalf("DeliverMail = %d, %v", sent, err)
	}
	attempts, next, reason, ok := row()
	if !ok || attempts != 1 || reason != "550 mailbox unavailable" || next <= store.Time(time.Now()) {
		t.Fatalf("after a refusal: attempts %d, next %q, reason %q, kept %v", attempts, next, reason, ok)
	}
	if _, err := c.DeliverMail(ctx); err != nil || tr.n != 1 {
		t.Fatalf("retried before its time: %d sends, %v", tr.n, err)
	}

	// Due again and accepted: sent once, under the invitation's id, then
	// forgotten.
	tr.fail = false
	if _, err := db.ExecContext(ctx, `UPDATE mail_outbox SET next_attempt_at = '' WHERE id = 'inv_1'`); err != nil {
		t.Fatal(err)
	}
	if sent, err := c.DeliverMail(ctx); sent != 1 || err != nil {
		t.Fatalf("DeliverMail = %d, %v", sent, err)
	}
	want := mail.Message{ID: "inv_1", To: "tess@acme.test", Subject: "Set your password", Text: "token=rsi_x", Date: created}
	if len(tr.sent) != 1 || tr.sent[0] != want {
		t.Fatalf("sent %+v, want %+v", tr.sent, want)
	}
	if _, _, _, ok := row(); ok {
		t.Fatal("the sent mail is still queued")
	}
}
