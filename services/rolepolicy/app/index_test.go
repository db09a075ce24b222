package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"reflect"
	"testing"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/adapters"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/domain"
	"roster.dev/services/rolepolicy/migrations"
)

type noEvents struct{}

func (noEvents) Emit(context.Context, *sql.Tx, string, ...eventbus.Event) error { return nil }

// commitFails is the SQL store whose SaveRole, when armed, leaves a
// deferred foreign-key violation in the transaction: everything succeeds
// until COMMIT, which fails (SQLite checks deferred keys at commit).
type commitFails struct {
	*adapters.Store
	armed bool
}

func (s *commitFails) SaveRole(ctx context.Context, tx *sql.Tx, r domain.Role, prev int64) error {
	if err := s.Store.SaveRole(ctx, tx, r, prev); err != nil || !s.armed {
		return err
	}
	if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO role_assignments (account_id, technician_id, role_id, assigned_at)
		VALUES ($1, 'tech_ghost', 'role_ghost', '2026-11-23T00:00:00.000000Z')`, r.AccountID)
	return err
}

// The index is changed just before a command's commit; when the commit
// fails, the account's index is rebuilt from the database, so a check
// never answers from a change the database does not hold.
func TestFailedCommitResyncsTheIndex(t *testing.T) {
	ctx := context.Background()
	db := svctest.OpenDB(t, "", t.TempDir(), "rolepolicy")
	if err := db.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	if err := idempotency.Init(ctx, db); err != nil {
		t.Fatal(err)
	}
	st := &commitFails{Store: adapters.NewStore(db)}
	a := app.New(db, st, noEvents{}, nil, nil)
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		return a.SetUpAccount(ctx, tx, app.SetUpAccount{AccountID: "acc_1", Profile: "roster", AdminTechnicianID: "tech_admin"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		return a.AddTechnician(ctx, tx, app.AddTechnician{AccountID: "acc_1", TechnicianID: "tech_1"})
	}); err != nil {
		t.Fatal(err)
	}
	res, err := a.CreateRole(ctx, app.CreateRole{AccountID: "acc_1", Spec: domain.RoleSpec{Name: "Tier 1", Permissions: []string{"system.reports"}}}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var role app.RoleView
	if err := json.Unmarshal(res.Body, &role); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AssignRole(ctx, app.AssignRole{AccountID: "acc_1", TechnicianID: "tech_1", Role: "Tier 1"}, "", nil); err != nil {
		t.Fatal(err)
	}
	check := func() access.Decision {
		return a.CheckAccess("acc_1", access.Request{TechnicianID: "tech_1", Permission: "remote.file_transfer"})
	}
	// tech_1 has not logged in: roster pre-assigns Tier 1, Beginner holds.
	if d := check(); d.Allowed || d.RoleName != "Beginner" {
		t.Fatalf("before: %+v", d)
	}

	st.armed = true
	_, err = a.ReplaceRole(ctx, app.ReplaceRole{AccountID: "acc_1", RoleID: role.ID, IfMatch: []int64{1},
		Spec: domain.RoleSpec{Name: "Tier 1", Permissions: []string{"remote.file_transfer"}}}, "", nil)
	if err == nil {
		t.Fatal("the armed commit succeeded")
	}
	live := a.Index().Dump()
	rebuilt := app.New(db, adapters.NewStore(db), noEvents{}, nil, nil)
	if err := rebuilt.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(live, rebuilt.Index().Dump()) {
		t.Fatalf("after a failed commit the index is not the database's:\nlive    %+v\nrebuilt %+v", live["acc_1"], rebuilt.Index().Dump()["acc_1"])
	}
	if got := live["acc_1"].Roles[role.ID]; got.Version != 1 || len(got.Permissions) != 1 || got.Permissions[0] != "system.reports" {
		t.Fatalf("role in the index after the failed update: %+v", got)
	}
}
