package store_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"testing/fstest"

	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// Replicas of one service start at once and migrate the same PostgreSQL
// schema concurrently (the first migration sleeps, so they overlap): every
// replica starts and each migration runs once. Migrate takes a per-service
// advisory lock for this (goose's session locker); goose v3.29 alone also
// survives the race, so this test guards the behaviour, not the lock.
func TestConcurrentMigrationsOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	fsys := fstest.MapFS{
		"0001_a.sql": {Data: []byte("-- +goose Up\nSELECT pg_sleep(0.1);\nCREATE TABLE things (id TEXT PRIMARY KEY);\nINSERT INTO things VALUES ('one');\n-- +goose Down\nDROP TABLE things;\n")},
		"0002_b.sql": {Data: []byte("-- +goose Up\nALTER TABLE things ADD COLUMN n INT NOT NULL DEFAULT 0;\nUPDATE things SET n = n + 1;\n-- +goose Down\nALTER TABLE things DROP COLUMN n;\n")},
	}
	ctx := context.Background()
	const replicas = 6
	var wg sync.WaitGroup
	errs := make(chan error, replicas)
	dbs := make([]*store.DB, replicas)
	for i := range replicas {
		db, err := store.Open(ctx, store.Config{URL: dsn, Service: "migrations_race"})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	for _, db := range dbs {
		wg.Go(func() { errs <- db.Migrate(ctx, fsys) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var n, count int
	if err := dbs[0].QueryRow(`SELECT n, (SELECT count(*) FROM things) FROM things WHERE id = 'one'`).Scan(&n, &count); err != nil {
		t.Fatal(err)
	}
	if n != 1 || count != 1 {
		t.Fatalf("migrations applied %d times (%d rows), want once", n, count)
	}
}
