package idempotency_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"sync"
	"testing"
	"testing/fstest"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// The store suite: the same SQL, migrations and idempotency behaviour on
// both backends.
func eachBackend(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			url := ""
			if name == "postgres" {
				url = pgtest.DSN(t)
			}
			db, err := store.Open(context.Background(), store.Config{URL: url, DataDir: t.TempDir(), Service: "testsvc"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			migrations := fstest.MapFS{"0001_effects.sql": {Data: []byte(
				"-- +goose Up\nCREATE TABLE effects (id TEXT PRIMARY KEY, n INTEGER NOT NULL);\n-- +goose Down\nDROP TABLE effects;\n")}}
			if err := db.Migrate(context.Background(), migrations); err != nil {
				t.Fatal(err)
			}
			// Migrating again applies nothing and does not fail.
			if err := db.Migrate(context.Background(), migrations); err != nil {
				t.Fatal(err)
			}
			if err := idempotency.Init(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			fn(t, db)
		})
	}
}

func TestUniqueViolationIsRecognised(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		if _, err := db.Exec(`INSERT INTO effects (id, n) VALUES ($1, $2)`, "a", 1); err != nil {
			t.Fatal(err)
		}
		_, err := db.Exec(`INSERT INTO effects (id, n) VALUES ($1, $2)`, "a", 2)
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate key: %v not recognised", err)
		}
	})
}

func TestSameKeyReplaysAndAppliesOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		create := func(id string) func(*sql.Tx) (int, any, error) {
			return func(tx *sql.Tx) (int, any, error) {
				if _, err := tx.ExecContext(ctx, `INSERT INTO effects (id, n) VALUES ($1, 1)`, id); err != nil {
					return 0, nil, err
				}
				return http.StatusCreated, map[string]string{"id": id}, nil
			}
		}
		req := idempotency.Request{Scope: "acc_1:POST /things", Key: "k", Body: []byte(`{"a":1}`)}
		// Ten concurrent retries of one request: one effect, ten equal answers.
		var wg sync.WaitGroup
		results := make([]idempotency.Result, 10)
		errs := make([]error, 10)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = idempotency.Do(ctx, db, req, create("thing-"+string(rune('a'+i))))
			}()
		}
		wg.Wait()
		replays := 0
		for i := range 10 {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			if string(results[i].Body) != string(results[0].Body) || results[i].Status != http.StatusCreated {
				t.Fatalf("answers differ: %s vs %s", results[i].Body, results[0].Body)
			}
			if results[i].Replayed {
				replays++
			}
		}
		if replays != 9 {
			t.Fatalf("%d replays, want 9", replays)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM effects`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d effects (%v), want 1", n, err)
		}
		// The same key with another body: 422, nothing applied.
		other := req
		other.Body = []byte(`{"a":2}`)
		_, err := idempotency.Do(ctx, db, other, create("other"))
		var p *problem.Problem
		if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("reused key: %v", err)
		}
		// Another scope may use the same key.
		other.Scope = "acc_2:POST /things"
		if res, err := idempotency.Do(ctx, db, other, create("acc2")); err != nil || res.Replayed {
			t.Fatalf("other scope: %+v %v", res, err)
		}
	})
}
