package deploy_test

import (
	"context"
	"database/sql"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/outbox"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	auditmig "roster.dev/services/audit/migrations"
	identitymig "roster.dev/services/identity/migrations"
	rolepolicymig "roster.dev/services/rolepolicy/migrations"
	seatbillingmig "roster.dev/services/seatbilling/migrations"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

var serviceMigrations = map[string]fs.FS{
	"identity": identitymig.FS, "seatbilling": seatbillingmig.FS, "rolepolicy": rolepolicymig.FS, "audit": auditmig.FS,
}

// asRole is dsn with another user.
func asRole(t *testing.T, dsn, role string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "pw-"+role)
	return u.String()
}

// deploy/postgres/init.sql (issue 13, item 3): each service, connected as
// its own role, finds its schema, migrates it and runs (outbox,
// idempotency); it can read no other service's tables and create no schema
// nor anything in public. Running init.sql again changes nothing.
func TestPostgresRolesPerService(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	super, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close()
	script, err := os.ReadFile(filepath.Join("postgres", "init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := super.ExecContext(ctx, string(script)); err != nil {
			t.Fatalf("init.sql: %v", err)
		}
	}
	for svc := range serviceMigrations {
		if _, err := super.ExecContext(ctx, `ALTER ROLE roster_`+svc+` PASSWORD 'pw-roster_`+svc+`'`); err != nil {
			t.Fatal(err)
		}
	}

	dbs := map[string]*store.DB{}
	for svc, migs := range serviceMigrations {
		db, err := store.Open(ctx, store.Config{URL: asRole(t, dsn, "roster_"+svc), Service: svc})
		if err != nil {
			t.Fatalf("%s as roster_%s: %v", svc, svc, err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx, migs); err != nil {
			t.Fatalf("%s as roster_%s: %v", svc, svc, err)
		}
		if err := idempotency.Init(ctx, db); err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		if err := outbox.New(db, nil).Init(ctx); err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		var owner string
		if err := db.QueryRowContext(ctx, `SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'roster_outbox'`, svc).Scan(&owner); err != nil || owner != "roster_"+svc {
			t.Fatalf("%s's outbox: owner %q, %v", svc, owner, err)
		}
		dbs[svc] = db
	}

	denied := func(who, q string) {
		t.Helper()
		_, err := dbs[who].ExecContext(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("as roster_%s, %s: %v, want permission denied", who, q, err)
		}
	}
	denied("identity", `SELECT count(*) FROM rolepolicy.accounts`)
	denied("identity", `SELECT count(*) FROM seatbilling.roster_outbox`)
	denied("audit", `DELETE FROM identity.roster_outbox`)
	denied("rolepolicy", `CREATE SCHEMA elsewhere`)
	denied("seatbilling", `CREATE TABLE public.elsewhere (id int)`)
	denied("seatbilling", `CREATE TEMPORARY TABLE scratch (id int)`)
	// Its own tables: all rights.
	if _, err := dbs["rolepolicy"].ExecContext(ctx, `SELECT count(*) FROM accounts`); err != nil {
		t.Fatalf("rolepolicy reads its own table: %v", err)
	}
}
