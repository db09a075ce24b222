package adapters_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/audit/adapters"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
	"roster.dev/services/audit/migrations"
)

// go test -run - -bench 'Audit1M' -benchtime 1x ./services/audit/adapters
// (docs/performance.md). -audit.records sets the chain's length.
var benchRecords = flag.Int("audit.records", 1_000_000, "records in the benchmarks' audit chain")

const benchAccount = "acc_bench"

var (
	benchOnce sync.Once
	benchDB   *store.DB
	benchErr  error
)

var benchActions = []string{"technician.created", "technician.invited", "seat.assigned", "role.assigned", "login.succeeded",
	"login.failed", "technician.first_login", "charge.recorded", "technician.disabled", "seat.released"}

// benchChain builds, once per run, an account with *benchRecords records in
// a SQLite database (the all-in-one's): ten actions, 1,000 actors, 100,000
// targets, a year of time, written in batches as the service would with
// checkpoints every 1,000 records.
func benchChain(b *testing.B) *store.DB {
	benchOnce.Do(func() {
		ctx := context.Background()
		db, err := store.Open(ctx, store.Config{DataDir: b.TempDir(), Service: "audit"})
		if err != nil {
			benchErr = err
			return
		}
		if benchErr = db.Migrate(ctx, migrations.FS); benchErr != nil {
			return
		}
		st := adapters.Store{DB: db}
		signer := domain.NewSigner(mustSigningKey())
		if benchErr = st.AddKey(ctx, signer.PublicKey(), time.Now()); benchErr != nil {
			return
		}
		start := time.Now()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		step := 365 * 24 * time.Hour / time.Duration(*benchRecords)
		rng := rand.New(rand.NewPCG(1, 2))
		var head domain.Head
		const batch = 5000
		for n := 0; n < *benchRecords; n += batch {
			benchErr = db.InTx(ctx, func(tx *sql.Tx) error {
				if _, _, err := st.LockHead(ctx, tx, benchAccount); err != nil {
					return err
				}
				for i := n; i < min(n+batch, *benchRecords); i++ {
					target := fmt.Sprintf("tech_%06d", rng.IntN(100_000))
					r, err := domain.NewRecord(domain.Entry{
						EventID: fmt.Sprintf("evt_%08d", i), EventType: "x", AccountID: benchAccount,
						OccurredAt:    t0.Add(time.Duration(i) * step),
						Actor:         domain.Actor{Type: domain.ActorTechnician, ID: fmt.Sprintf("tech_%06d", rng.IntN(1000))},
						SourceAddress: "203.0.113.7", CorrelationID: fmt.Sprintf("req_%08d", i),
						Data: json.RawMessage(fmt.Sprintf(`{"technician_id":%q,"email":"t%d@example.com","status":"active"}`, target, i)),
					})
					if err != nil {
						return err
					}
					r.Action = benchActions[rng.IntN(len(benchActions))]
					r.Target = domain.Target{Type: "technician", ID: target}
					if r, err = domain.Seal(r, head); err != nil {
						return err
					}
					if err := st.Append(ctx, tx, r); err != nil {
						return err
					}
					head = domain.Head{Sequence: r.Sequence, Hash: r.Hash}
					if r.Sequence%1000 == 0 {
						c, err := signer.Sign(benchAccount, head, r.Time)
						if err != nil {
							return err
						}
						if err := st.AddCheckpoint(ctx, tx, c); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if benchErr != nil {
				return
			}
		}
		if _, benchErr = db.Exec(`ANALYZE`); benchErr != nil {
			return
		}
		b.Logf("built a chain of %d records in %v", *benchRecords, time.Since(start).Round(time.Millisecond))
		benchDB = db
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDB
}

// BenchmarkAudit1MVerify: GET …/audit/verify over the whole chain, every
// hash and every signed checkpoint. Target: under 3 s for 1,000,000.
func BenchmarkAudit1MVerify(b *testing.B) {
	db := benchChain(b)
	st := adapters.Store{DB: db}
	a := &app.App{Chain: st, Records: st, Checkpoints: st}
	b.ResetTimer()
	for b.Loop() {
		v, err := a.Verify(context.Background(), benchAccount)
		if err != nil || !v.OK || v.Records != int64(*benchRecords) {
			b.Fatalf("verify: %+v %v", v, err)
		}
	}
	b.ReportMetric(float64(*benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAudit1MQuery: a page (50) of each filter of A-3 — action, actor,
// target, a day's time range, a time range with an action — at random
// values and random cursors, as GET …/audit runs them. Reports p50/p99 in
// ms per filter. Target: p99 under 50 ms.
func BenchmarkAudit1MQuery(b *testing.B) {
	db := benchChain(b)
	st := adapters.Store{DB: db}
	a := &app.App{Chain: st, Records: st}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := int64(*benchRecords)
	filters := map[string]func(r *rand.Rand) app.Filter{
		"action": func(r *rand.Rand) app.Filter {
			return app.Filter{Action: benchActions[r.IntN(len(benchActions))], After: r.Int64N(n)}
		},
		"actor":  func(r *rand.Rand) app.Filter { return app.Filter{Actor: fmt.Sprintf("tech_%06d", r.IntN(1000))} },
		"target": func(r *rand.Rand) app.Filter { return app.Filter{Target: fmt.Sprintf("tech_%06d", r.IntN(100_000))} },
		"day": func(r *rand.Rand) app.Filter {
			since := t0.Add(time.Duration(r.IntN(364)) * 24 * time.Hour)
			return app.Filter{Since: since, Until: since.Add(24 * time.Hour)}
		},
		"day+action": func(r *rand.Rand) app.Filter {
			since := t0.Add(time.Duration(r.IntN(364)) * 24 * time.Hour)
			return app.Filter{Since: since, Until: since.Add(24 * time.Hour), Action: benchActions[r.IntN(len(benchActions))]}
		},
		"hour+action (sparse)": func(r *rand.Rand) app.Filter {
			since := t0.Add(time.Duration(r.IntN(364*24)) * time.Hour)
			return app.Filter{Since: since, Until: since.Add(time.Hour), Action: benchActions[r.IntN(len(benchActions))]}
		},
		"actor+cursor": func(r *rand.Rand) app.Filter {
			return app.Filter{Actor: fmt.Sprintf("tech_%06d", r.IntN(1000)), After: r.Int64N(n)}
		},
		"since (open)": func(r *rand.Rand) app.Filter {
			return app.Filter{Since: t0.Add(time.Duration(r.IntN(364)) * 24 * time.Hour)}
		},
	}
	names := make([]string, 0, len(filters))
	for k := range filters {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			var lat []time.Duration
			for b.Loop() {
				// 200 queries per iteration, so -benchtime 1x gives a p99.
				for range 200 {
					f := filters[name](rng)
					f.AccountID, f.Limit = benchAccount, app.DefaultLimit
					start := time.Now()
					if _, err := a.List(context.Background(), f); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkAudit1MScan: reading the chain alone, without hashing — what
// verification's floor is on this store.
func BenchmarkAudit1MScan(b *testing.B) {
	db := benchChain(b)
	st := adapters.Store{DB: db}
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := st.Scan(context.Background(), benchAccount, func(domain.Record) error { n++; return nil }); err != nil || n != *benchRecords {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(*benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAuditAppend: records appended per second through the use case
// the consumer runs (lock the head, seal, insert, queue for the stream,
// checkpoint every 1,000), one transaction per event as the bus delivers
// them today, and 100 per transaction as a batching consumer would.
// go test -run - -bench AuditAppend ./services/audit/adapters
func BenchmarkAuditAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("per-tx=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			e := newEnv(b, "")
			st := adapters.Store{DB: e.db}
			e.app.Checkpoints, e.app.Signer, e.app.InTx = st, domain.NewSigner(mustSigningKey()), e.db.InTx
			e.app.Policy = app.DefaultCheckpoints
			i := 0
			for b.Loop() {
				err := e.db.InTx(ctx, func(tx *sql.Tx) error {
					for range batch {
						i++
						if _, _, err := e.app.Record(ctx, tx, entry(fmt.Sprintf("acc_%d", i%10), i)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
