package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// H-3: CSV import. The upload is parsed and stored whole, row by row, with
// ImportStarted, before the 202; the import processor (RunImports) applies
// the rows in batches through the same use cases as the HTTP routes
// (AddTechnician with its seat reservation, CreateEndUser, PatchTechnician),
// each keyed by import and row so that a row applied before a crash is
// found again, not applied twice.

// Import statuses.
const (
	ImportQueued  = "queued"
	ImportRunning = "running"
	ImportDone    = "done"
)

// Row outcomes.
const (
	RowCreated = "created"
	RowUpdated = "updated"
	RowSkipped = "skipped"
	RowRefused = "refused"
)

// ImportOptions are the upload's choices.
type ImportOptions struct {
	// ConfirmSeatPurchase lets rows buy seats when every seat is taken
	// (S-3); without it such rows are refused with the quote.
	ConfirmSeatPurchase bool `json:"confirm_seat_purchase"`
	// SendWelcomeMail: roster only (atera never sends one, H-3).
	SendWelcomeMail bool `json:"send_welcome_mail"`
	// Actor is who uploaded: the rows' events are theirs.
	Actor *commonv1.Actor `json:"-"`
}

// Import is an import and its progress.
type Import struct {
	ID        string        `json:"id"`
	AccountID string        `json:"account_id"`
	Kind      string        `json:"kind"`
	Status    string        `json:"status"`
	Options   ImportOptions `json:"options"`
	Rows      struct {
		Total int `json:"total"`
		Done  int `json:"done"`
	} `json:"rows"`
	Created    int        `json:"created"`
	Updated    int        `json:"updated"`
	Skipped    int        `json:"skipped"`
	Refused    int        `json:"refused"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// Refusals are the first refused rows, with why (the full report:
	// GET …/imports/{id}/rows).
	Refusals []RowResult `json:"refusals"`
	// ActorJSON stores Options.Actor.
	ActorJSON string `json:"-"`
}

// RowResult is one row's outcome in the report.
type RowResult struct {
	Row     int    `json:"row"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	// ID is the technician or end user the row created or updated.
	ID string `json:"id"`
	// apply runs in the batch's transaction (directory attributes, role
	// requests).
	apply func(tx *sql.Tx) error
}

// FeatureGate asks seatbilling whether the account's plan has a feature
// (S-8, rpc.FeatureEnabled).
type FeatureGate interface {
	FeatureEnabled(ctx context.Context, accountID, feature string) (enabled bool, reason string, err error)
}

// ErrPlanGate is S-8's 403.
func ErrPlanGate(detail string) *problem.Problem {
	return problem.New(http.StatusForbidden, "plan-gate", "Not on this plan", detail)
}

type welcomeKey struct{}

// WithoutWelcomeMail marks ctx so that technicians created under it get no
// invitation mail (H-3: atera imports, roster imports that opt out); the
// admin can send it later (POST …/invitation).
func WithoutWelcomeMail(ctx context.Context) context.Context {
	return context.WithValue(ctx, welcomeKey{}, true)
}

// WelcomeMailSuppressed reports WithoutWelcomeMail.
func WelcomeMailSuppressed(ctx context.Context) bool {
	v, _ := ctx.Value(welcomeKey{}).(bool)
	return v
}

// StartImport accepts a CSV upload (H-3): the profile must import the kind
// (atera: end users only), the plan must include CSV import of end users
// (S-8, seatbilling), and the file must parse; then every row is stored
// with the import and ImportStarted in one transaction, and the answer is
// 202 with the import.
func (x *Directory) StartImport(ctx context.Context, accountID, kind string, opts ImportOptions, data []byte, idemKey string) (idempotency.Result, error) {
	acc, err := x.Account(ctx, accountID)
	if err != nil {
		return idempotency.Result{}, err
	}
	if kind != domain.ImportEndUsers && kind != domain.ImportTechnicians {
		return idempotency.Result{}, problem.Invalid(problem.FieldError{Field: "kind", Detail: "must be end_users or technicians"})
	}
	allowed := domain.ImportKinds(acc.Profile)
	if !contains(allowed, kind) {
		return idempotency.Result{}, ErrPlanGate(fmt.Sprintf("%s accounts import %s only (H-3); technicians are added one by one",
			acc.Profile, strings.Join(allowed, ", ")))
	}
	if kind == domain.ImportEndUsers {
		ok, reason, err := x.gate(ctx, accountID, "csv_import_end_users")
		if err != nil {
			return idempotency.Result{}, err
		}
		if !ok {
			return idempotency.Result{}, ErrPlanGate(reason)
		}
	}
	rows, err := domain.ParseImport(kind, data)
	if err != nil {
		return idempotency.Result{}, err
	}
	opts.SendWelcomeMail = domain.SendsWelcomeMail(acc.Profile, opts.SendWelcomeMail)
	actor, _ := json.Marshal(eventbus.ActorFrom(ctx))
	body := append([]byte(fmt.Sprintf("%s|%v|%v|", kind, opts.ConfirmSeatPurchase, opts.SendWelcomeMail)), data...)
	res, err := idempotency.Do(ctx, x.DB, idempotency.Request{Scope: idemScope(accountID, "POST /imports"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			imp := Import{ID: NewID("imp"), AccountID: accountID, Kind: kind, Status: ImportQueued, Options: opts,
				CreatedAt: x.Now().UTC().Truncate(time.Microsecond), ActorJSON: string(actor), Refusals: []RowResult{}}
			imp.Rows.Total = len(rows)
			if err := x.Store.InsertImport(ctx, tx, imp, rows); err != nil {
				return 0, nil, err
			}
			if err := x.Bus.Emit(ctx, tx, accountID, &identityv1.ImportStarted{ImportId: imp.ID, Kind: kind, Rows: int32(len(rows))}); err != nil {
				return 0, nil, err
			}
			return http.StatusAccepted, imp, nil
		})
	if err == nil {
		x.nudgeImports()
	}
	return res, err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// gate asks seatbilling, waiting a little for a brand-new account's
// subscription as reserveSeat does.
func (x *Directory) gate(ctx context.Context, accountID, feature string) (bool, string, error) {
	ok, reason, err := x.Gates.FeatureEnabled(ctx, accountID, feature)
	for wait := 25 * time.Millisecond; errors.Is(err, ErrSubscriptionNotReady) && wait < 2*time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return false, "", ctx.Err()
		case <-time.After(wait):
		}
		ok, reason, err = x.Gates.FeatureEnabled(ctx, accountID, feature)
	}
	if errors.Is(err, ErrSubscriptionNotReady) {
		return false, "", problem.New(http.StatusServiceUnavailable, "account-not-ready", "Account not ready",
			"the account was created moments ago and its subscription is still being opened; retry in a second").With("retry_after", 1)
	}
	return ok, reason, err
}

// Import returns an import's progress and its first refusals.
func (x *Directory) Import(ctx context.Context, accountID, id string) (Import, error) {
	imp, err := x.Store.Import(ctx, x.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return imp, problem.NotFound("import " + id)
	}
	if err != nil {
		return imp, err
	}
	imp.Refusals, err = x.Store.ImportRows(ctx, id, RowRefused, 0, 100)
	if imp.Refusals == nil {
		imp.Refusals = []RowResult{}
	}
	return imp, err
}

// ImportRows is a page of an import's per-row report.
func (x *Directory) ImportRows(ctx context.Context, accountID, id, outcome string, afterRow, limit int) ([]RowResult, error) {
	if _, err := x.Import(ctx, accountID, id); err != nil {
		return nil, err
	}
	return x.Store.ImportRows(ctx, id, outcome, afterRow, limit)
}

func (x *Directory) nudgeImports() {
	select {
	case x.importWake <- struct{}{}:
	default:
	}
}

// importBatch is how many rows one transaction records.
const importBatch = 100

// RunImports applies queued and interrupted imports until ctx ends.
func (x *Directory) RunImports(ctx context.Context, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		x.ProcessImports(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-x.importWake:
		}
	}
}

// ProcessImports applies every unfinished import, oldest first.
func (x *Directory) ProcessImports(ctx context.Context) {
	imps, err := x.Store.ActiveImports(ctx, 10)
	if err != nil {
		if ctx.Err() == nil {
			x.Log.ErrorContext(ctx, "imports: active imports", "err", err)
		}
		return
	}
	for _, imp := range imps {
		if err := x.processImport(ctx, imp); err != nil && ctx.Err() == nil {
			x.Log.WarnContext(ctx, "imports: interrupted; resumed later", "account_id", imp.AccountID, "import_id", imp.ID, "err", err)
		}
	}
}

func (x *Directory) processImport(ctx context.Context, imp Import) error {
	actor := &commonv1.Actor{}
	if json.Unmarshal([]byte(imp.ActorJSON), actor) == nil && actor.GetType() != commonv1.ActorType_ACTOR_TYPE_UNSPECIFIED {
		ctx = eventbus.WithActor(ctx, actor)
	}
	ctx = eventbus.WithCorrelation(ctx, imp.ID)
	if !imp.Options.SendWelcomeMail {
		ctx = WithoutWelcomeMail(ctx)
	}
	acc, err := x.Account(ctx, imp.AccountID)
	if err != nil {
		return err
	}
	sites, err := x.ListSites(ctx, imp.AccountID)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		rows, err := x.Store.PendingImportRows(ctx, imp.ID, importBatch)
		if err != nil {
			return err
		}
		// Rows apply one after the other, in file order: when seats run
		// out, the later rows are the ones refused. (Applying 8 at a time
		// gained little: the system's event consumers set the pace;
		// docs/performance.md.)
		results := make([]RowResult, 0, len(rows))
		var rowErr error
		for _, row := range rows {
			var r RowResult
			if imp.Kind == domain.ImportTechnicians {
				r, rowErr = x.importTechnician(ctx, acc, imp, row)
			} else {
				r, rowErr = x.importEndUser(ctx, acc, imp, row, sites)
			}
			if rowErr != nil {
				break // transient: this row and the rest wait for the next run
			}
			results = append(results, r)
		}
		finished := false
		err = x.DB.InTx(ctx, func(tx *sql.Tx) error {
			for _, r := range results {
				if r.apply != nil {
					if err := r.apply(tx); err != nil {
						return err
					}
				}
			}
			var err error
			finished, err = x.Store.RecordImportRows(ctx, tx, imp.ID, results, x.Now())
			if err != nil || !finished {
				return err
			}
			done, err := x.Store.Import(ctx, tx, imp.AccountID, imp.ID)
			if err != nil {
				return err
			}
			return x.Bus.Emit(ctx, tx, imp.AccountID, &identityv1.ImportFinished{ImportId: imp.ID,
				Created: int32(done.Created), Updated: int32(done.Updated), Skipped: int32(done.Skipped), Refused: int32(done.Refused)})
		})
		if err != nil {
			return err
		}
		if rowErr != nil {
			return rowErr
		}
		if finished || len(rows) == 0 {
			return nil
		}
	}
	return ctx.Err()
}

func refused(row int, err error) RowResult {
	r := RowResult{Row: row, Outcome: RowRefused, Reason: err.Error()}
	var p *problem.Problem
	if errors.As(err, &p) {
		r.Reason = p.Detail
		if len(p.Errors) > 0 {
			var parts []string
			for _, e := range p.Errors {
				parts = append(parts, e.Field+": "+e.Detail)
			}
			r.Reason = strings.Join(parts, "; ")
		}
		if q, ok := p.Extensions["quote"].(*Quote); ok && q != nil {
			r.Reason = fmt.Sprintf("every seat is taken and the import does not confirm seat purchases (a seat costs %d %s now)", q.Amount, q.Currency)
		}
	}
	return r
}

func rowKey(imp Import, row int) string { return "import:" + imp.ID + ":" + strconv.Itoa(row) }

// importTechnician adds the row's technician, or updates the one holding
// its email; an identical row is skipped, so re-running a file changes
// nothing.
func (x *Directory) importTechnician(ctx context.Context, acc domain.Account, imp Import, row ImportRowData) (RowResult, error) {
	if row.Err != "" {
		return RowResult{Row: row.Number, Outcome: RowRefused, Reason: row.Err}, nil
	}
	f := row.Fields
	dir := DirectoryEntry{AccountID: acc.ID, EmployeeNumber: f["employee_number"], JobTitle: f["job_title"]}
	if domain.KeepsDepartment(acc.Profile) {
		dir.Department = f["department"]
	}
	req := domain.NewTechnician{Email: f["email"], FirstName: f["first_name"], LastName: f["last_name"], Phone: f["phone"],
		Role: f["role"], ConfirmSeatPurchase: imp.Options.ConfirmSeatPurchase}
	key := rowKey(imp, row.Number)
	res, err := x.AddTechnician(ctx, acc.ID, req, key, []byte(key))
	var p *problem.Problem
	switch {
	case errors.As(err, &p) && p.Type == problem.Base+"email-in-use":
		return x.updateTechnicianRow(ctx, acc, row, req, dir)
	case err != nil && transient(err):
		return RowResult{}, err
	case err != nil:
		return refused(row.Number, err), nil
	}
	var t domain.Technician
	if err := json.Unmarshal(res.Body, &t); err != nil {
		return RowResult{}, err
	}
	dir.TechnicianID = t.ID
	r := RowResult{Row: row.Number, Outcome: RowCreated, ID: t.ID, Reason: "added"}
	if dir != (DirectoryEntry{AccountID: acc.ID, TechnicianID: t.ID}) {
		r.apply = func(tx *sql.Tx) error { return x.saveDirectory(ctx, tx, dir) }
	}
	return r, nil
}

func (x *Directory) updateTechnicianRow(ctx context.Context, acc domain.Account, row ImportRowData, req domain.NewTechnician, dir DirectoryEntry) (RowResult, error) {
	t, err := x.Technicians.TechnicianByEmail(ctx, x.DB, acc.ID, req.Email)
	if err != nil {
		return RowResult{}, err
	}
	dir.TechnicianID = t.ID
	var changed []string
	p := domain.Patch{}
	if req.FirstName != t.FirstName {
		p.FirstName, changed = &req.FirstName, append(changed, "first_name")
	}
	if req.LastName != t.LastName {
		p.LastName, changed = &req.LastName, append(changed, "last_name")
	}
	if req.Phone != "" && req.Phone != t.Phone {
		p.Phone, changed = &req.Phone, append(changed, "phone")
	}
	if len(changed) > 0 {
		if _, err := x.PatchTechnician(ctx, acc.ID, t.ID, p); err != nil {
			if transient(err) {
				return RowResult{}, err
			}
			return refused(row.Number, err), nil
		}
	}
	prev, err := x.Store.DirectoryEntry(ctx, x.DB, acc.ID, t.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return RowResult{}, err
	}
	prev.AccountID, prev.TechnicianID = acc.ID, t.ID
	if !domain.KeepsDepartment(acc.Profile) {
		dir.Department = prev.Department
	}
	dir.Location, dir.Manager = prev.Location, prev.Manager
	for _, c := range dir.changes(prev) {
		changed = append(changed, c.Field)
	}
	role := req.Role
	held := func(s *string) bool { return s != nil && strings.EqualFold(*s, role) }
	askRole := role != "" && !held(t.Role) && !held(t.RequestedRole)
	if askRole {
		changed = append(changed, "role")
	}
	if len(changed) == 0 {
		return RowResult{Row: row.Number, Outcome: RowSkipped, ID: t.ID, Reason: "unchanged: the technician exists with these values"}, nil
	}
	return RowResult{Row: row.Number, Outcome: RowUpdated, ID: t.ID, Reason: "updated " + strings.Join(changed, ", "),
		apply: func(tx *sql.Tx) error {
			if err := x.saveDirectory(ctx, tx, dir); err != nil {
				return err
			}
			if askRole {
				return x.Bus.Emit(ctx, tx, acc.ID, &identityv1.TechnicianRoleRequested{TechnicianId: t.ID, Role: role})
			}
			return nil
		}}, nil
}

// importEndUser creates the row's end user in its site (named by id or
// name), or renames the one holding its email.
func (x *Directory) importEndUser(ctx context.Context, acc domain.Account, imp Import, row ImportRowData, sites []Site) (RowResult, error) {
	if row.Err != "" {
		return RowResult{Row: row.Number, Outcome: RowRefused, Reason: row.Err}, nil
	}
	f := row.Fields
	siteID := ""
	for _, s := range sites {
		if s.ID == f["site"] || strings.EqualFold(s.Name, f["site"]) {
			siteID = s.ID
		}
	}
	if siteID == "" {
		return RowResult{Row: row.Number, Outcome: RowRefused, Reason: fmt.Sprintf("site: %q is no site of the account (by id or name)", f["site"])}, nil
	}
	name := f["name"]
	if name == "" {
		name = strings.TrimSpace(f["first_name"] + " " + f["last_name"])
	}
	dept := ""
	if domain.KeepsDepartment(acc.Profile) {
		dept = f["department"]
	}
	key := rowKey(imp, row.Number)
	res, err := x.CreateEndUser(ctx, acc.ID, domain.NewEndUser{Email: f["email"], Name: name, SiteID: siteID}, key, []byte(key))
	var p *problem.Problem
	switch {
	case errors.As(err, &p) && p.Type == problem.Base+"email-in-use":
		u, err := x.Store.EndUserByEmail(ctx, x.DB, acc.ID, f["email"])
		if err != nil {
			return RowResult{}, err
		}
		prevDept, err := x.Store.EndUserDepartment(ctx, x.DB, acc.ID, u.ID)
		if err != nil {
			return RowResult{}, err
		}
		var changed []string
		if name != u.Name {
			changed = append(changed, "name")
		}
		if dept != "" && dept != prevDept {
			changed = append(changed, "department")
		}
		if len(changed) == 0 {
			return RowResult{Row: row.Number, Outcome: RowSkipped, ID: u.ID, Reason: "unchanged: the end user exists with these values"}, nil
		}
		return RowResult{Row: row.Number, Outcome: RowUpdated, ID: u.ID, Reason: "updated " + strings.Join(changed, ", "),
			apply: func(tx *sql.Tx) error {
				if name != u.Name {
					if err := x.Store.RenameEndUser(ctx, tx, acc.ID, u.ID, name, x.Now()); err != nil {
						return err
					}
				}
				if dept != "" && dept != prevDept {
					return x.Store.SaveEndUserDepartment(ctx, tx, acc.ID, u.ID, dept, x.Now())
				}
				return nil
			}}, nil
	case err != nil && transient(err):
		return RowResult{}, err
	case err != nil:
		return refused(row.Number, err), nil
	}
	var u domain.EndUser
	if err := json.Unmarshal(res.Body, &u); err != nil {
		return RowResult{}, err
	}
	r := RowResult{Row: row.Number, Outcome: RowCreated, ID: u.ID, Reason: "added"}
	if dept != "" {
		r.apply = func(tx *sql.Tx) error { return x.Store.SaveEndUserDepartment(ctx, tx, acc.ID, u.ID, dept, x.Now()) }
	}
	return r, nil
}

// ImportRowData is a stored row waiting for its outcome.
type ImportRowData = domain.ImportRow

// TechnicianDirectory returns a technician's directory attributes
// (department, job title, …; empty when none were synced).
func (x *Directory) TechnicianDirectory(ctx context.Context, accountID, id string) (DirectoryEntry, error) {
	if _, err := x.Technician(ctx, accountID, id); err != nil {
		return DirectoryEntry{}, err
	}
	d, err := x.Store.DirectoryEntry(ctx, x.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return DirectoryEntry{}, nil
	}
	return d, err
}

// EndUserDirectory returns an end user's department.
func (x *Directory) EndUserDirectory(ctx context.Context, accountID, id string) (map[string]string, error) {
	if _, err := x.EndUser(ctx, accountID, id); err != nil {
		return nil, err
	}
	d, err := x.Store.EndUserDepartment(ctx, x.DB, accountID, id)
	return map[string]string{"department": d}, err
}
