package adapters_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"roster.dev/pkg/outbox"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/audit/adapters"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
	"roster.dev/services/audit/migrations"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

type env struct {
	db     *store.DB
	app    *app.App
	outbox *outbox.Outbox
}

func newEnv(t testing.TB, dbURL string) *env {
	t.Helper()
	ctx := context.Background()
	db := svctest.OpenDB(t, dbURL, t.TempDir(), "audit")
	if err := db.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	ob := outbox.New(db, nil)
	if err := ob.Init(ctx); err != nil {
		t.Fatal(err)
	}
	st := adapters.Store{DB: db}
	return &env{db: db, outbox: ob, app: &app.App{Chain: st, Records: st, Stream: adapters.Stream{Outbox: ob}}}
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func entry(account string, i int) domain.Entry {
	return domain.Entry{
		EventID:       fmt.Sprintf("evt-%s-%d", account, i),
		EventType:     "roster.identity.v1.TechnicianCreated",
		AccountID:     account,
		OccurredAt:    t0.Add(time.Duration(i) * time.Minute),
		Actor:         domain.Actor{Type: domain.ActorTechnician, ID: fmt.Sprintf("tech_actor%d", i%2)},
		CorrelationID: fmt.Sprintf("req-%d", i),
		Data:          json.RawMessage(fmt.Sprintf(`{"technician_id":"tech_%d","email":"t%d@example.com"}`, i, i)),
	}
}

func (e *env) record(t testing.TB, en domain.Entry) (domain.Record, bool) {
	t.Helper()
	var r domain.Record
	var appended bool
	err := e.db.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		r, appended, err = e.app.Record(context.Background(), tx, en)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, appended
}

func (e *env) all(t testing.TB, account string) []domain.Record {
	t.Helper()
	var out []domain.Record
	err := adapters.Store{DB: e.db}.Scan(context.Background(), account, func(r domain.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) verify(t testing.TB, account string) app.Verification {
	t.Helper()
	v, err := e.app.Verify(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := e.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// appends to one account from many transactions at once queue on the
// account's head: every sequence is taken once, with no gap, and the chain
// links; other accounts' chains are independent.
func TestConcurrentAppendsQueuePerAccount(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		accounts := []string{"acc_a", "acc_b", "acc_c"}
		const perAccount = 30
		var wg sync.WaitGroup
		errs := make(chan error, len(accounts)*perAccount)
		for _, acc := range accounts {
			for i := 1; i <= perAccount; i++ {
				wg.Go(func() {
					errs <- e.db.InTx(context.Background(), func(tx *sql.Tx) error {
						_, _, err := e.app.Record(context.Background(), tx, entry(acc, i))
						return err
					})
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, acc := range accounts {
			rs := e.all(t, acc)
			if len(rs) != perAccount {
				t.Fatalf("%s: %d records, want %d", acc, len(rs), perAccount)
			}
			for i, r := range rs {
				if r.Sequence != int64(i+1) {
					t.Fatalf("%s: record %d has sequence %d", acc, i, r.Sequence)
				}
			}
			if v := e.verify(t, acc); !v.OK || v.Records != perAccount {
				t.Fatalf("%s: verify = %+v", acc, v)
			}
		}
		// one outbox row per record, committed with it.
		if n, err := e.outbox.Pending(context.Background()); err != nil || n != len(accounts)*perAccount {
			t.Fatalf("outbox holds %d rows (%v), want %d", n, err, len(accounts)*perAccount)
		}
	})
}

// an event recorded twice makes one record and one stream message.
func TestSameEventIsRecordedOnce(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		first, appended := e.record(t, entry("acc_a", 1))
		if !appended || first.Sequence != 1 {
			t.Fatalf("first record: %+v, appended %v", first, appended)
		}
		if _, appended := e.record(t, entry("acc_a", 1)); appended {
			t.Fatal("the same event was appended twice")
		}
		second, _ := e.record(t, entry("acc_a", 2))
		if second.Sequence != 2 || second.PrevHash != first.Hash {
			t.Fatalf("next record: sequence %d prev %s, want 2 after %s", second.Sequence, second.PrevHash, first.Hash)
		}
		if n, _ := e.outbox.Pending(context.Background()); n != 2 {
			t.Fatalf("outbox holds %d rows, want 2", n)
		}
	})
}

// the record and its stream message commit together or not at all.
func TestRolledBackAppendLeavesNothing(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.record(t, entry("acc_a", 1))
		boom := errors.New("the event's handling failed after the append")
		err := e.db.InTx(context.Background(), func(tx *sql.Tx) error {
			if _, _, err := e.app.Record(context.Background(), tx, entry("acc_a", 2)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		if rs := e.all(t, "acc_a"); len(rs) != 1 {
			t.Fatalf("%d records after the rollback, want 1", len(rs))
		}
		if n, _ := e.outbox.Pending(context.Background()); n != 1 {
			t.Fatalf("outbox holds %d rows after the rollback, want 1", n)
		}
		if r, _ := e.record(t, entry("acc_a", 2)); r.Sequence != 2 {
			t.Fatalf("the retried event got sequence %d, want 2", r.Sequence)
		}
	})
}

// query by action, actor, target and time range, with a cursor.
func TestListFiltersAndPages(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		for i := 1; i <= 12; i++ {
			en := entry("acc_a", i)
			if i%3 == 0 {
				en.EventType = "roster.identity.v1.TechnicianDisabled"
			}
			e.record(t, en)
		}
		e.record(t, entry("acc_b", 1))

		seqs := func(f app.Filter) []int64 {
			t.Helper()
			var out []int64
			for {
				p, err := e.app.List(context.Background(), f)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range p.Records {
					out = append(out, r.Sequence)
				}
				if p.Next == 0 {
					return out
				}
				f.After = p.Next
			}
		}
		tests := []struct {
			name string
			f    app.Filter
			want []int64
		}{
			{"all, pages of 5", app.Filter{Limit: 5}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
			{"action", app.Filter{Action: "technician.disabled", Limit: 2}, []int64{3, 6, 9, 12}},
			{"actor", app.Filter{Actor: "tech_actor1", Limit: 50}, []int64{1, 3, 5, 7, 9, 11}},
			{"target", app.Filter{Target: "tech_7"}, []int64{7}},
			{"since inclusive, until exclusive", app.Filter{Since: t0.Add(4 * time.Minute), Until: t0.Add(8 * time.Minute)}, []int64{4, 5, 6, 7}},
			{"after a cursor", app.Filter{After: 10}, []int64{11, 12}},
			{"nothing", app.Filter{Action: "role.created"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tt.f.AccountID = "acc_a"
				if got := seqs(tt.f); fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("sequences %v, want %v", got, tt.want)
				}
			})
		}
		p, err := e.app.List(context.Background(), app.Filter{AccountID: "acc_a", Limit: 12})
		if err != nil || len(p.Records) != 12 || p.Next != 0 {
			t.Fatalf("a page that holds the rest: %d records, next %d, %v", len(p.Records), p.Next, err)
		}
	})
}

// verify finds tampering done directly in the database.
func TestVerifyDetectsTamperingInTheDatabase(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		// shift moves records from seq on one place up, last first, as a
		// forger making room for an inserted record does.
		shift := func(t *testing.T, acc string, from int) {
			for s := 5; s >= from; s-- {
				e.exec(t, `UPDATE audit_records SET sequence = sequence + 1 WHERE account_id = $1 AND sequence = $2`, acc, s)
			}
		}
		forge := func(t *testing.T, acc string, seq int64, prev string, rehash bool) {
			r := e.all(t, acc)[0]
			r.ID, r.Sequence, r.PrevHash = "aud_forged_"+acc, seq, prev
			r.Data = json.RawMessage(`{"technician_id":"tech_ghost"}`)
			if rehash {
				h, err := domain.HashOf(r)
				if err != nil {
					t.Fatal(err)
				}
				r.Hash = h
			}
			e.exec(t, `INSERT INTO audit_records (account_id, sequence, id, action, actor_type, actor_id, target_type, target_id,
				time, correlation_id, data, source_address, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
				r.AccountID, r.Sequence, r.ID, r.Action, r.Actor.Type, r.Actor.ID, r.Target.Type, r.Target.ID,
				store.Time(r.Time), r.CorrelationID, string(r.Data), r.SourceAddress, r.PrevHash, r.Hash)
		}
		tests := []struct {
			name   string
			tamper func(t *testing.T, acc string, rs []domain.Record)
			bad    int64
		}{
			{"untouched", func(*testing.T, string, []domain.Record) {}, 0},
			{"data changed", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `UPDATE audit_records SET data = '{"technician_id":"tech_3","email":"evil@example.com"}' WHERE account_id = $1 AND sequence = 3`, acc)
			}, 3},
			{"data no longer JSON", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `UPDATE audit_records SET data = 'gone' WHERE account_id = $1 AND sequence = 2`, acc)
			}, 2},
			{"actor changed", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `UPDATE audit_records SET actor_id = 'tech_someone_else' WHERE account_id = $1 AND sequence = 4`, acc)
			}, 4},
			{"time changed", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `UPDATE audit_records SET time = $2 WHERE account_id = $1 AND sequence = 1`, acc, store.Time(t0.Add(-time.Hour)))
			}, 1},
			{"time unreadable", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `UPDATE audit_records SET time = 'yesterday' WHERE account_id = $1 AND sequence = 1`, acc)
			}, 1},
			{"removed", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `DELETE FROM audit_records WHERE account_id = $1 AND sequence = 3`, acc)
			}, 3},
			{"last removed", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `DELETE FROM audit_records WHERE account_id = $1 AND sequence = 5`, acc)
			}, 5},
			{"inserted, hash wrong", func(t *testing.T, acc string, rs []domain.Record) {
				shift(t, acc, 3)
				forge(t, acc, 3, rs[1].Hash, false)
			}, 3},
			{"inserted, hash recomputed", func(t *testing.T, acc string, rs []domain.Record) {
				shift(t, acc, 3)
				forge(t, acc, 3, rs[1].Hash, true)
			}, 4},
			{"inserted past the end", func(t *testing.T, acc string, rs []domain.Record) {
				forge(t, acc, 6, rs[4].Hash, true)
			}, 6},
			{"reordered", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `UPDATE audit_records SET sequence = -1 WHERE account_id = $1 AND sequence = 3`, acc)
				e.exec(t, `UPDATE audit_records SET sequence = 3 WHERE account_id = $1 AND sequence = 4`, acc)
				e.exec(t, `UPDATE audit_records SET sequence = 4 WHERE account_id = $1 AND sequence = -1`, acc)
			}, 3},
			{"replaced by another account's record", func(t *testing.T, acc string, _ []domain.Record) {
				e.exec(t, `DELETE FROM audit_records WHERE account_id = $1 AND sequence = 2`, acc)
				e.exec(t, `UPDATE audit_records SET account_id = $1 WHERE account_id = $2 AND sequence = 2`, acc, "acc_other_"+acc)
			}, 2},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				acc := fmt.Sprintf("acc_t%d", i)
				other := "acc_other_" + acc
				for j := 1; j <= 5; j++ {
					e.record(t, entry(acc, j))
					e.record(t, entry(other, j))
				}
				tt.tamper(t, acc, e.all(t, acc))
				v := e.verify(t, acc)
				if tt.bad == 0 {
					if !v.OK || v.FirstBadSequence != nil || v.Records != 5 {
						t.Fatalf("verify = %+v, want ok with 5 records", v)
					}
					return
				}
				if v.OK || v.FirstBadSequence == nil || *v.FirstBadSequence != tt.bad {
					got := "nil"
					if v.FirstBadSequence != nil {
						got = fmt.Sprint(*v.FirstBadSequence)
					}
					t.Fatalf("verify = ok %v, first bad %s; want first bad %d", v.OK, got, tt.bad)
				}
			})
		}
	})
}

// verify takes no lock, yet never reports a chain that is being
// appended to as broken.
func TestVerifyDuringAppends(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		const n = 60
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 1; i <= n; i++ {
				if err := e.db.InTx(context.Background(), func(tx *sql.Tx) error {
					_, _, err := e.app.Record(context.Background(), tx, entry("acc_a", i))
					return err
				}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		checks := 0
		for running := true; running; checks++ {
			select {
			case <-done:
				running = false
			default:
			}
			v, err := e.app.Verify(context.Background(), "acc_a")
			if err != nil {
				t.Fatal(err)
			}
			if !v.OK {
				t.Fatalf("verify during appends = %+v (after %d checks)", v, checks)
			}
		}
		if v := e.verify(t, "acc_a"); !v.OK || v.Records != n {
			t.Fatalf("final verify = %+v", v)
		}
	})
}

// a time filter finds exactly the records a scan of the whole chain
// would, also when records arrive out of time order (an event delivered
// late has a later sequence and an earlier time): the time_hwm bound never
// skips a match.
func TestTimeFiltersWithLateRecords(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		rng := rand.New(rand.NewPCG(7, 8))
		for i := range 300 {
			en := entry("acc_late", i)
			// Mostly in order; one in five up to three hours late.
			en.OccurredAt = t0.Add(time.Duration(i)*time.Minute - time.Duration(rng.IntN(5)/4*rng.IntN(180))*time.Minute)
			e.record(t, en)
		}
		all := e.all(t, "acc_late")
		for q := range 60 {
			f := app.Filter{AccountID: "acc_late", Limit: 500}
			f.Since = t0.Add(time.Duration(rng.IntN(330)-15) * time.Minute)
			if q%2 == 0 {
				f.Until = f.Since.Add(time.Duration(rng.IntN(120)) * time.Minute)
			}
			if q%3 == 0 {
				f.After = int64(rng.IntN(300))
			}
			var want []int64
			for _, r := range all {
				if r.Sequence > f.After && !r.Time.Before(f.Since) && (f.Until.IsZero() || r.Time.Before(f.Until)) {
					want = append(want, r.Sequence)
				}
			}
			page, err := e.app.List(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range page.Records {
				got = append(got, r.Sequence)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("filter %+v:\n got %v\nwant %v", f, got, want)
			}
		}
	})
}
