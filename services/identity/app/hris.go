package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// H-1: HRIS webhooks. A delivery is verified, stored (unique on its
// webhook-id) with HRISDeliveryReceived in the outbox, and answered 202;
// the delivery processor (RunHRIS) applies it later through the same use
// cases as the HTTP routes (AddTechnician, PatchTechnician, CreateEndUser,
// disable), and records the outcome on the delivery.

// HRISSecret is one signing secret.
type HRISSecret struct {
	ID         string
	AccountID  string
	Secret     string
	CreatedAt  time.Time
	ValidUntil *time.Time
}

// Delivery is one accepted HRIS webhook and what processing it did.
type Delivery struct {
	ID            string               `json:"id"`
	AccountID     string               `json:"account_id"`
	Source        string               `json:"source"`
	WebhookID     string               `json:"webhook_id"`
	Type          string               `json:"type"`
	EmployeeID    string               `json:"employee_id"`
	OccurredAt    time.Time            `json:"occurred_at"`
	EffectiveDate string               `json:"effective_date"`
	Event         domain.EmployeeEvent `json:"-"`
	Status        string               `json:"status"`
	Reason        string               `json:"reason"`
	// Detail holds a failure's problem (with the quote of a seat purchase
	// the mapping does not allow), or null.
	Detail       json.RawMessage `json:"problem"`
	TechnicianID string          `json:"technician_id"`
	EndUserID    string          `json:"end_user_id"`
	Attempts     int             `json:"attempts"`
	ReceivedAt   time.Time       `json:"received_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

// HRISEmployee is what an HRIS employee became in the account.
type HRISEmployee struct {
	AccountID    string
	EmployeeID   string
	Kind         string
	TechnicianID string
	EndUserID    string
	MappedRole   string
	AttributesAt time.Time
	// AttributesDelivery is the delivery that set them (its id grows with
	// the order deliveries arrived in).
	AttributesDelivery string
}

// newerThan reports whether delivery d comes after the one that last set
// emp's attributes: by the time the HRIS stamped its event, then, for the
// same time, by the order the deliveries arrived in.
func (d Delivery) newerThan(emp HRISEmployee) bool {
	if !d.OccurredAt.Equal(emp.AttributesAt) {
		return d.OccurredAt.After(emp.AttributesAt)
	}
	return d.ID > emp.AttributesDelivery
}

// Termination is a disable scheduled for an effective date.
type Termination struct {
	AccountID     string
	EmployeeID    string
	DeliveryID    string
	EffectiveDate string
}

// DirectoryEntry is a technician's directory attributes.
type DirectoryEntry struct {
	TechnicianID   string `json:"-"`
	AccountID      string `json:"-"`
	EmployeeNumber string `json:"employee_number"`
	Department     string `json:"department"`
	JobTitle       string `json:"job_title"`
	Location       string `json:"location"`
	Manager        string `json:"manager"`
}

// changes lists the fields that differ from prev.
func (d DirectoryEntry) changes(prev DirectoryEntry) []domain.Change {
	var out []domain.Change
	for _, f := range []struct{ name, before, after string }{
		{"employee_number", prev.EmployeeNumber, d.EmployeeNumber}, {"department", prev.Department, d.Department},
		{"job_title", prev.JobTitle, d.JobTitle}, {"location", prev.Location, d.Location}, {"manager", prev.Manager, d.Manager},
	} {
		if f.before != f.after {
			out = append(out, domain.Change{Field: f.name, Before: f.before, After: f.after})
		}
	}
	return out
}

// DirectoryStore is what the directory-sync use cases need.
type DirectoryStore interface {
	InsertHRISSecret(ctx context.Context, tx *sql.Tx, s HRISSecret) error
	RetireHRISSecrets(ctx context.Context, tx *sql.Tx, accountID string, until, now time.Time) error
	HRISSecrets(ctx context.Context, accountID string, now time.Time) ([]string, error)
	HRISMapping(ctx context.Context, q Querier, accountID string) (domain.Mapping, error)
	SaveHRISMapping(ctx context.Context, tx *sql.Tx, accountID string, m domain.Mapping, now time.Time) error
	InsertDelivery(ctx context.Context, tx *sql.Tx, d Delivery) error
	DeliveryByWebhookID(ctx context.Context, accountID, webhookID string) (Delivery, error)
	Delivery(ctx context.Context, q Querier, accountID, id string) (Delivery, error)
	Deliveries(ctx context.Context, accountID, status, after string, limit int) ([]Delivery, error)
	PendingDeliveries(ctx context.Context, limit int) ([]Delivery, error)
	SaveDeliveryOutcome(ctx context.Context, tx *sql.Tx, d Delivery) error
	// ClaimDelivery locks the delivery in tx if its status is still
	// status, and reports whether it was: another identity replica may
	// have recorded an outcome since this one read it.
	ClaimDelivery(ctx context.Context, tx *sql.Tx, accountID, id, status string) (bool, error)
	RequeueHeld(ctx context.Context, tx *sql.Tx, accountID, employeeID string, now time.Time) error
	HRISEmployee(ctx context.Context, q Querier, accountID, employeeID string) (HRISEmployee, error)
	SaveHRISEmployee(ctx context.Context, tx *sql.Tx, e HRISEmployee) error
	ScheduleTermination(ctx context.Context, tx *sql.Tx, t Termination) error
	CompleteTermination(ctx context.Context, tx *sql.Tx, accountID, employeeID string, now time.Time) (bool, error)
	// PendingTermination is the employee's termination not applied yet.
	PendingTermination(ctx context.Context, q Querier, accountID, employeeID string) (Termination, error)
	DueTerminations(ctx context.Context, today string, limit int) ([]Termination, error)
	DirectoryEntry(ctx context.Context, q Querier, accountID, technicianID string) (DirectoryEntry, error)
	SaveDirectoryEntry(ctx context.Context, tx *sql.Tx, d DirectoryEntry, now time.Time) error
	EndUserByEmail(ctx context.Context, q Querier, accountID, email string) (domain.EndUser, error)
	RenameEndUser(ctx context.Context, tx *sql.Tx, accountID, id, name string, now time.Time) error
	EndUserDepartment(ctx context.Context, q Querier, accountID, id string) (string, error)
	SaveEndUserDepartment(ctx context.Context, tx *sql.Tx, accountID, id, department string, now time.Time) error

	InsertImport(ctx context.Context, tx *sql.Tx, imp Import, rows []domain.ImportRow) error
	Import(ctx context.Context, q Querier, accountID, id string) (Import, error)
	ImportRows(ctx context.Context, importID, outcome string, afterRow, limit int) ([]RowResult, error)
	ActiveImports(ctx context.Context, limit int) ([]Import, error)
	PendingImportRows(ctx context.Context, importID string, limit int) ([]domain.ImportRow, error)
	// RecordImportRows stores the rows' outcomes and the import's counters;
	// finished reports that the import's last row is done.
	RecordImportRows(ctx context.Context, tx *sql.Tx, importID string, rows []RowResult, now time.Time) (finished bool, err error)
}

// Directory is the directory-sync use cases (H-1, H-3).
type Directory struct {
	*App
	Store DirectoryStore
	Scim  ScimStore
	Gates FeatureGate
	Log   *slog.Logger
	// SSOConfigs tells whether the account configured SSO, which SCIM
	// needs where the profile says so (S-8, atlan); nil: never needed.
	SSOConfigs SSOStore
	// wake nudges the HRIS processor when a delivery arrives, importWake
	// the import processor when an import does.
	wake, importWake chan struct{}
	// retryAt: when a delivery that failed transiently may be tried again
	// (the HRIS processor's workers share it under retryMu; a restart
	// tries at once).
	retryMu sync.Mutex
	retryAt map[string]time.Time
}

// NewDirectory returns the directory-sync use cases over a.
func NewDirectory(a *App, st DirectoryStore, gates FeatureGate, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.Default()
	}
	x := &Directory{App: a, Store: st, Gates: gates, Log: log, wake: make(chan struct{}, 1), importWake: make(chan struct{}, 1),
		retryAt: map[string]time.Time{}}
	x.Scim, _ = st.(ScimStore)
	return x
}

func (x *Directory) nudge() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// SecretCreated is the answer to POST …/hris/secrets: the secret is shown
// this once.
type SecretCreated struct {
	ID                 string     `json:"id"`
	Secret             string     `json:"secret"`
	CreatedAt          time.Time  `json:"created_at"`
	PreviousValidUntil *time.Time `json:"previous_valid_until"`
}

// CreateHRISSecret issues a new whsec_ secret (H-1); the secrets issued
// before it stay valid for 24 hours more (api.md), so the HRIS can switch.
func (x *Directory) CreateHRISSecret(ctx context.Context, accountID, idemKey string, body []byte) (idempotency.Result, error) {
	if _, err := x.Account(ctx, accountID); err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, x.DB, idempotency.Request{Scope: idemScope(accountID, "POST /hris/secrets"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			now := x.Now().UTC().Truncate(time.Microsecond)
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return 0, nil, err
			}
			s := HRISSecret{ID: NewID("whs"), AccountID: accountID, Secret: domain.SecretPrefix + base64.StdEncoding.EncodeToString(key), CreatedAt: now}
			until := now.Add(domain.SecretOverlap)
			if err := x.Store.RetireHRISSecrets(ctx, tx, accountID, until, now); err != nil {
				return 0, nil, err
			}
			if err := x.Store.InsertHRISSecret(ctx, tx, s); err != nil {
				return 0, nil, err
			}
			out := SecretCreated{ID: s.ID, Secret: s.Secret, CreatedAt: now, PreviousValidUntil: &until}
			ev := &identityv1.HRISSecretCreated{SecretId: s.ID, PreviousValidUntil: until.Format(time.RFC3339)}
			if err := x.Bus.Emit(ctx, tx, accountID, ev); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, out, nil
		})
}

// HRISMapping returns the account's mapping (NoMapping when none is set).
func (x *Directory) HRISMapping(ctx context.Context, accountID string) (domain.Mapping, error) {
	if _, err := x.Account(ctx, accountID); err != nil {
		return domain.Mapping{}, err
	}
	return x.Store.HRISMapping(ctx, x.DB, accountID)
}

// PutHRISMapping replaces the account's mapping rules (H-1).
func (x *Directory) PutHRISMapping(ctx context.Context, accountID string, m domain.Mapping) (domain.Mapping, error) {
	if _, err := x.Account(ctx, accountID); err != nil {
		return m, err
	}
	if p := m.Validate(); p != nil {
		return m, p
	}
	var sites []string
	for _, t := range append([]domain.Target{m.Default}, targets(m.Rules)...) {
		if t.SiteID != "" {
			sites = append(sites, t.SiteID)
		}
	}
	if missing, err := x.Technicians.MissingSites(ctx, x.DB, accountID, sites); err != nil {
		return m, err
	} else if len(missing) > 0 {
		return m, problem.Invalid(problem.FieldError{Field: "site_id", Detail: "unknown sites: " + strings.Join(missing, ", ")})
	}
	err := x.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := x.Store.SaveHRISMapping(ctx, tx, accountID, m, x.Now()); err != nil {
			return err
		}
		b, _ := json.Marshal(m)
		return x.Bus.Emit(ctx, tx, accountID, &identityv1.HRISMappingChanged{Mapping: string(b)})
	})
	return m, err
}

func targets(rules []domain.Rule) []domain.Target {
	out := make([]domain.Target, len(rules))
	for i, r := range rules {
		out[i] = r.Then
	}
	return out
}

// Accepted is the 202 answer to a delivery.
type Accepted struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Replayed bool   `json:"replayed"`
}

// ErrBadSignature is H-1's 401.
func ErrBadSignature(detail string) *problem.Problem {
	return problem.New(http.StatusUnauthorized, "invalid-webhook-signature", "Invalid webhook signature", detail)
}

// ReceiveWebhook verifies, parses and stores an HRIS delivery (H-1): a
// stale or future timestamp or missing headers is 400, a bad signature
// 401, each with an audit record (HRISWebhookRejected); a replayed
// webhook-id answers 202 with the first delivery and changes nothing; a new
// one is stored with HRISDeliveryReceived in one transaction before the
// 202, so it survives a crash right after the answer.
func (x *Directory) ReceiveWebhook(ctx context.Context, accountID, source string, h domain.WebhookHeaders, body []byte) (Accepted, error) {
	ctx = eventbus.WithActor(ctx, hrisActor(ctx, source))
	if _, err := x.Account(ctx, accountID); err != nil {
		return Accepted{}, err
	}
	known := false
	for _, s := range domain.Sources {
		known = known || s == source
	}
	if !known {
		return Accepted{}, domain.ErrUnknownSource(source)
	}
	now := x.Now()
	secrets, err := x.Store.HRISSecrets(ctx, accountID, now)
	if err != nil {
		return Accepted{}, err
	}
	keys := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		if k, err := domain.DecodeSecret(s); err == nil {
			keys = append(keys, k)
		}
	}
	if err := domain.VerifyWebhook(keys, h, body, now); err != nil {
		reason, p := "signature", ErrBadSignature("the webhook-signature matches no current HRIS secret of the account")
		switch {
		case len(keys) == 0:
			p = ErrBadSignature("the account has no HRIS secret yet; create one with POST /v1/accounts/{acc}/hris/secrets")
		case errors.Is(err, domain.ErrWebhookTimestamp):
			reason, p = "timestamp", problem.New(http.StatusBadRequest, "stale-webhook", "Stale webhook timestamp",
				"webhook-timestamp must be within 5 minutes of the receiver's clock ("+now.UTC().Format(time.RFC3339)+")")
		case errors.Is(err, domain.ErrWebhookHeaders):
			reason, p = "headers", problem.New(http.StatusBadRequest, "webhook-headers", "Webhook headers missing",
				"webhook-id, webhook-timestamp (Unix seconds) and webhook-signature are required (Standard Webhooks)")
		}
		id := h.ID
		if len(id) > 256 {
			id = id[:256]
		}
		rerr := x.DB.InTx(ctx, func(tx *sql.Tx) error {
			return x.Bus.Emit(ctx, tx, accountID, &identityv1.HRISWebhookRejected{Source: source, WebhookId: id, Reason: reason})
		})
		if rerr != nil {
			return Accepted{}, rerr
		}
		return Accepted{}, p
	}
	if d, err := x.Store.DeliveryByWebhookID(ctx, accountID, h.ID); err == nil {
		return Accepted{ID: d.ID, Status: d.Status, Replayed: true}, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Accepted{}, err
	}
	sent, _ := parseUnix(h.Timestamp) // VerifyWebhook checked it
	ev, err := domain.ParseEmployeeEvent(source, body, sent)
	if err != nil {
		return Accepted{}, err
	}
	stamp := now.UTC().Truncate(time.Microsecond)
	d := Delivery{
		ID: NewID("dlv"), AccountID: accountID, Source: source, WebhookID: h.ID, Type: ev.Type, EmployeeID: ev.Employee.ID,
		OccurredAt: ev.OccurredAt, EffectiveDate: ev.EffectiveDate, Event: ev, Status: domain.DeliveryPending,
		ReceivedAt: stamp, UpdatedAt: stamp,
	}
	err = x.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := x.Store.InsertDelivery(ctx, tx, d); err != nil {
			return err
		}
		return x.Bus.Emit(ctx, tx, accountID, &identityv1.HRISDeliveryReceived{
			DeliveryId: d.ID, Source: source, WebhookId: h.ID, EventType: ev.Type, EmployeeId: ev.Employee.ID,
		})
	})
	if errors.Is(err, ErrConflict) { // the same webhook-id, concurrently
		first, ferr := x.Store.DeliveryByWebhookID(ctx, accountID, h.ID)
		if ferr != nil {
			return Accepted{}, ferr
		}
		return Accepted{ID: first.ID, Status: first.Status, Replayed: true}, nil
	}
	if err != nil {
		return Accepted{}, err
	}
	x.nudge()
	return Accepted{ID: d.ID, Status: d.Status}, nil
}

func parseUnix(s string) (time.Time, error) {
	var sec int64
	if _, err := fmt.Sscanf(s, "%d", &sec); err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0).UTC(), nil
}

// hrisActor is the HRIS source as actor, keeping the caller's address.
func hrisActor(ctx context.Context, source string) *commonv1.Actor {
	a := &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_HRIS, Id: source}
	if prev := eventbus.ActorFrom(ctx); prev != nil {
		a.SourceAddress = prev.GetSourceAddress()
	}
	return a
}

// Deliveries lists the account's deliveries, newest first.
func (x *Directory) Deliveries(ctx context.Context, accountID, status, after string, limit int) ([]Delivery, error) {
	if _, err := x.Account(ctx, accountID); err != nil {
		return nil, err
	}
	return x.Store.Deliveries(ctx, accountID, status, after, limit)
}

// Delivery returns one delivery.
func (x *Directory) Delivery(ctx context.Context, accountID, id string) (Delivery, error) {
	d, err := x.Store.Delivery(ctx, x.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return d, problem.NotFound("delivery " + id)
	}
	return d, err
}

// RedriveDelivery processes a failed delivery again (after the admin fixed
// the mapping or bought seats): it goes back to pending. Only a failed
// delivery can be re-driven; anything else is 409.
func (x *Directory) RedriveDelivery(ctx context.Context, accountID, id string) (Delivery, error) {
	var out Delivery
	err := x.DB.InTx(ctx, func(tx *sql.Tx) error {
		d, err := x.Store.Delivery(ctx, tx, accountID, id)
		if errors.Is(err, ErrNotFound) {
			return problem.NotFound("delivery " + id)
		}
		if err != nil {
			return err
		}
		if d.Status != domain.DeliveryFailed {
			return problem.New(http.StatusConflict, "delivery-not-failed", "Delivery not failed",
				"only a failed delivery can be re-driven; this one is "+d.Status)
		}
		d.Status, d.Reason, d.Detail, d.UpdatedAt = domain.DeliveryPending, "re-driven", nil, x.Now().UTC().Truncate(time.Microsecond)
		out = d
		return x.Store.SaveDeliveryOutcome(ctx, tx, d)
	})
	if err == nil {
		x.nudge()
	}
	return out, err
}

// RunHRIS is the delivery processor and the termination scheduler: it
// applies pending deliveries in the order their events occurred, and
// terminations whose effective date came, until ctx ends.
func (x *Directory) RunHRIS(ctx context.Context, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		x.ProcessPending(ctx)
		x.ApplyDueTerminations(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-x.wake:
		}
	}
}

// maxAttempts: a delivery failing for a reason that is not the request's
// (seatbilling not answering, a database error) is tried this many times,
// waiting hrisRetryAfter between tries, then marked failed with the error.
// The waits add up to about four minutes: a service restarting or a NATS
// server failing over must not fail a hire (found by the chaos harness:
// with five tries 200 ms apart, a seatbilling restart of a second failed
// the deliveries that arrived meanwhile).
const maxAttempts = 10

// hrisRetryAfter is the wait after a delivery's attempts-th transient
// failure: 1 s, 2 s, 4 s … up to a minute. Wall-clock, like the mailer's
// retries: it paces another service, not business time.
func hrisRetryAfter(attempts int) time.Duration {
	return min(time.Second<<min(attempts-1, 10), time.Minute)
}

// hrisWorkers is how many employees' deliveries are processed at once;
// one employee's are processed one after the other, in order (H-1).
const hrisWorkers = 16

// hrisBatch is how many pending deliveries one pass reads.
const hrisBatch = 256

// ProcessPending applies the pending deliveries, oldest event first: those
// of different employees in parallel (hrisWorkers at a time), those of one
// employee in order — a delivery that stays pending (a transient failure)
// holds back the employee's later ones until it is retried (issue 18).
func (x *Directory) ProcessPending(ctx context.Context) {
	for ctx.Err() == nil {
		ds, err := x.Store.PendingDeliveries(ctx, hrisBatch)
		if err != nil {
			if ctx.Err() == nil {
				x.Log.ErrorContext(ctx, "hris: pending deliveries", "err", err)
			}
			return
		}
		if len(ds) == 0 {
			return
		}
		var order []string
		byEmployee := map[string][]Delivery{}
		for _, d := range ds {
			k := d.AccountID + "\x00" + d.EmployeeID
			if _, ok := byEmployee[k]; !ok {
				order = append(order, k)
			}
			byEmployee[k] = append(byEmployee[k], d)
		}
		var progress atomic.Bool
		sem := make(chan struct{}, hrisWorkers)
		var wg sync.WaitGroup
		for _, k := range order {
			sem <- struct{}{}
			wg.Add(1)
			go func(ds []Delivery) {
				defer func() { <-sem; wg.Done() }()
				for _, d := range ds {
					if ctx.Err() != nil || x.waitingRetry(d.ID) {
						return
					}
					if !x.processDelivery(ctx, d) {
						return
					}
					progress.Store(true)
				}
			}(byEmployee[k])
		}
		wg.Wait()
		if !progress.Load() {
			return
		}
	}
}

// waitingRetry reports a delivery waiting after a transient failure.
func (x *Directory) waitingRetry(id string) bool {
	x.retryMu.Lock()
	defer x.retryMu.Unlock()
	at, ok := x.retryAt[id]
	return ok && time.Now().Before(at)
}

// outcome is what processing a delivery decided; apply runs in the
// transaction that records it.
type outcome struct {
	status, reason          string
	detail                  any
	technicianID, endUserID string
	apply                   func(tx *sql.Tx) error
}

func failed(err error) outcome {
	o := outcome{status: domain.DeliveryFailed, reason: err.Error()}
	var p *problem.Problem
	if errors.As(err, &p) {
		o.reason, o.detail = p.Title+": "+p.Detail, p
	}
	return o
}

// transient reports whether err may pass on a retry: not the request's
// fault (no problem, or a 5xx problem such as account-not-ready).
func transient(err error) bool {
	var p *problem.Problem
	return !errors.As(err, &p) || p.Status >= 500
}

// processDelivery applies one delivery and records its outcome; false when
// it stays pending (a transient failure).
func (x *Directory) processDelivery(ctx context.Context, d Delivery) bool {
	ctx = eventbus.WithActor(ctx, &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_HRIS, Id: d.Source})
	ctx = eventbus.WithCorrelation(ctx, d.ID)
	log := x.Log.With("account_id", d.AccountID, "delivery_id", d.ID, "employee_id", d.EmployeeID)
	x.retryMu.Lock()
	delete(x.retryAt, d.ID)
	x.retryMu.Unlock()
	o, err := x.decide(ctx, d)
	if err == nil {
		err = x.record(ctx, d, o)
	}
	var p *problem.Problem
	if err != nil && !transient(err) && errors.As(err, &p) {
		err = x.record(ctx, d, failed(p)) // the apply step refused (I-9 last admin)
	}
	if err == nil || errors.Is(err, errRecordedElsewhere) {
		return true
	}
	d.Attempts++
	if d.Attempts < maxAttempts {
		x.retryMu.Lock()
		x.retryAt[d.ID] = time.Now().Add(hrisRetryAfter(d.Attempts))
		x.retryMu.Unlock()
		log.WarnContext(ctx, "hris: delivery not processed; retried", "err", err, "attempts", d.Attempts)
		_ = x.DB.InTx(ctx, func(tx *sql.Tx) error { return x.Store.SaveDeliveryOutcome(ctx, tx, d) })
		return false
	}
	log.ErrorContext(ctx, "hris: delivery failed", "err", err)
	if rerr := x.record(ctx, d, failed(err)); rerr != nil {
		log.ErrorContext(ctx, "hris: record failure", "err", rerr)
	}
	return true
}

// record stores the outcome on the delivery with HRISDeliveryProcessed, and
// runs the outcome's apply step, in one transaction.
func (x *Directory) record(ctx context.Context, d Delivery, o outcome) error {
	return x.DB.InTx(ctx, func(tx *sql.Tx) error {
		// Two replicas may process one pending delivery at once: the first
		// to record wins, the other's outcome (and apply step) is dropped —
		// never an applied hire overwritten by "skipped".
		if ok, err := x.Store.ClaimDelivery(ctx, tx, d.AccountID, d.ID, d.Status); err != nil {
			return err
		} else if !ok {
			return errRecordedElsewhere
		}
		if o.apply != nil {
			if err := o.apply(tx); err != nil {
				return err
			}
		}
		d.Status, d.Reason, d.Detail = o.status, o.reason, nil
		if o.detail != nil {
			d.Detail, _ = json.Marshal(o.detail)
		}
		if o.technicianID != "" {
			d.TechnicianID = o.technicianID
		}
		if o.endUserID != "" {
			d.EndUserID = o.endUserID
		}
		d.UpdatedAt = x.Now().UTC().Truncate(time.Microsecond)
		if err := x.Store.SaveDeliveryOutcome(ctx, tx, d); err != nil {
			return err
		}
		return x.Bus.Emit(ctx, tx, d.AccountID, &identityv1.HRISDeliveryProcessed{
			DeliveryId: d.ID, Outcome: d.Status, Reason: d.Reason, TechnicianId: d.TechnicianID, EndUserId: d.EndUserID,
		})
	})
}

// decide works out a delivery's outcome; the hire and update use cases run
// here (each idempotent under the delivery's id), the rest in apply.
func (x *Directory) decide(ctx context.Context, d Delivery) (outcome, error) {
	emp, err := x.Store.HRISEmployee(ctx, x.DB, d.AccountID, d.EmployeeID)
	known := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return outcome{}, err
	}
	m, err := x.Store.HRISMapping(ctx, x.DB, d.AccountID)
	if err != nil {
		return outcome{}, err
	}
	switch d.Type {
	case domain.EmployeeHired:
		if known && emp.AttributesDelivery == d.ID {
			// This very hire, retried after a crash: its steps are keyed by
			// the delivery id and find their first results.
			return x.hire(ctx, d, m)
		}
		if known && emp.Kind == domain.MapTechnician && d.newerThan(emp) {
			return x.rehire(ctx, d, emp, m)
		}
		if known && emp.Kind != domain.MapIgnore {
			return x.update(ctx, d, emp, m)
		}
		return x.hire(ctx, d, m)
	case domain.EmployeeUpdated:
		if !known {
			return outcome{status: domain.DeliveryHeld, reason: "held: the employee is not hired yet; applied when the hire arrives"}, nil
		}
		if emp.Kind == domain.MapIgnore {
			if t, _ := m.Decide(d.Event.Employee); t.Kind != domain.MapIgnore && domain.ValidEmail(d.Event.Employee.Email) {
				return x.hire(ctx, d, m) // now mapped (moved into a mapped department)
			}
		}
		return x.update(ctx, d, emp, m)
	case domain.EmployeeTerminated:
		if !known {
			return outcome{status: domain.DeliveryHeld, reason: "held: the employee is not hired yet; applied when the hire arrives"}, nil
		}
		return x.terminate(ctx, d, emp)
	}
	return failed(fmt.Errorf("unknown event type %q", d.Type)), nil
}

func ruleName(i int) string {
	if i < 0 {
		return "the default"
	}
	return fmt.Sprintf("rule %d", i+1)
}

// hire adds the employee as the mapping says: a technician through
// AddTechnician (the seat reservation and role flow of the HTTP route,
// with a seat purchase only when the mapping allows it), an end user
// through CreateEndUser, or nothing. Each is keyed by the delivery id, so
// a retry after a crash finds the first result.
func (x *Directory) hire(ctx context.Context, d Delivery, m domain.Mapping) (outcome, error) {
	e := d.Event.Employee
	target, rule := m.Decide(e)
	emp := HRISEmployee{AccountID: d.AccountID, EmployeeID: e.ID, Kind: target.Kind, MappedRole: target.Role, AttributesAt: d.OccurredAt,
		AttributesDelivery: d.ID}
	save := func(tx *sql.Tx) error {
		if err := x.Store.SaveHRISEmployee(ctx, tx, emp); err != nil {
			return err
		}
		return x.Store.RequeueHeld(ctx, tx, d.AccountID, e.ID, x.Now())
	}
	key := "hris:" + d.ID
	switch target.Kind {
	case domain.MapTechnician:
		req := domain.NewTechnician{Email: e.Email, FirstName: e.FirstName, LastName: e.LastName, Phone: e.Phone,
			Role: target.Role, ConfirmSeatPurchase: m.AllowSeatPurchase}
		res, err := x.AddTechnician(ctx, d.AccountID, req, key, []byte(key))
		var p *problem.Problem
		switch {
		case errors.As(err, &p) && p.Type == problem.Base+"email-in-use":
			t, err := x.Technicians.TechnicianByEmail(ctx, x.DB, d.AccountID, e.Email)
			if err != nil {
				return outcome{}, err
			}
			emp.TechnicianID = t.ID
		case err != nil && !transient(err):
			return failed(err), nil
		case err != nil:
			return outcome{}, err
		default:
			var t domain.Technician
			if err := json.Unmarshal(res.Body, &t); err != nil {
				return outcome{}, err
			}
			emp.TechnicianID = t.ID
		}
		dir := DirectoryEntry{TechnicianID: emp.TechnicianID, AccountID: d.AccountID, EmployeeNumber: e.ID,
			Department: e.Department, JobTitle: e.JobTitle, Location: e.Location, Manager: e.ManagerEmail}
		return outcome{status: domain.DeliveryApplied, technicianID: emp.TechnicianID,
			reason: fmt.Sprintf("hired as technician (%s)", ruleName(rule)),
			apply: func(tx *sql.Tx) error {
				if err := x.saveDirectory(ctx, tx, dir); err != nil {
					return err
				}
				return save(tx)
			}}, nil
	case domain.MapEndUser:
		name := strings.TrimSpace(e.FirstName + " " + e.LastName)
		if name == "" {
			name = e.Email
		}
		res, err := x.CreateEndUser(ctx, d.AccountID, domain.NewEndUser{Email: e.Email, Name: name, SiteID: target.SiteID}, key, []byte(key))
		var p *problem.Problem
		switch {
		case errors.As(err, &p) && p.Type == problem.Base+"email-in-use":
			u, err := x.Store.EndUserByEmail(ctx, x.DB, d.AccountID, e.Email)
			if err != nil {
				return outcome{}, err
			}
			emp.EndUserID = u.ID
		case err != nil && !transient(err):
			return failed(err), nil
		case err != nil:
			return outcome{}, err
		default:
			var u domain.EndUser
			if err := json.Unmarshal(res.Body, &u); err != nil {
				return outcome{}, err
			}
			emp.EndUserID = u.ID
		}
		return outcome{status: domain.DeliveryApplied, endUserID: emp.EndUserID,
			reason: fmt.Sprintf("hired as end user of %s (%s)", target.SiteID, ruleName(rule)), apply: save}, nil
	default:
		why := "ignored by the mapping (" + ruleName(rule) + ")"
		if len(m.Rules) == 0 && m.Default.Kind == domain.MapIgnore {
			why = "ignored: the account has no HRIS mapping (PUT …/hris/mapping)"
		}
		return outcome{status: domain.DeliverySkipped, reason: why, apply: save}, nil
	}
}

// rehire is a hire of an employee whose technician exists: a disabled one
// (terminated before) is enabled again — a seat is needed, bought only when
// the mapping allows it — and the hire's fields apply as an update would.
func (x *Directory) rehire(ctx context.Context, d Delivery, emp HRISEmployee, m domain.Mapping) (outcome, error) {
	t, err := x.Technicians.Technician(ctx, x.DB, d.AccountID, emp.TechnicianID)
	if err != nil {
		return outcome{}, err
	}
	if t.Status == domain.StatusDisabled {
		_, err := x.EnableTechnician(ctx, d.AccountID, t.ID, m.AllowSeatPurchase, "hris:"+d.ID, []byte(d.ID))
		switch {
		case err != nil && transient(err):
			return outcome{}, err
		case err != nil:
			return failed(err), nil
		}
	}
	o, err := x.update(ctx, d, emp, m)
	if err != nil || o.status != domain.DeliveryApplied {
		return o, err
	}
	if t.Status == domain.StatusDisabled {
		o.reason = "rehired: enabled again; " + o.reason
	}
	// A termination scheduled before this hire is superseded by it.
	pending, err := x.Store.PendingTermination(ctx, x.DB, d.AccountID, emp.EmployeeID)
	if errors.Is(err, ErrNotFound) {
		return o, nil
	}
	if err != nil {
		return outcome{}, err
	}
	scheduled, err := x.Store.Delivery(ctx, x.DB, d.AccountID, pending.DeliveryID)
	if err != nil {
		return outcome{}, err
	}
	if !scheduled.OccurredAt.Before(d.OccurredAt) {
		return o, nil
	}
	apply := o.apply
	o.apply = func(tx *sql.Tx) error {
		if err := apply(tx); err != nil {
			return err
		}
		ok, err := x.Store.CompleteTermination(ctx, tx, d.AccountID, emp.EmployeeID, x.Now())
		if err != nil || !ok {
			return err
		}
		scheduled.Status, scheduled.Reason = domain.DeliverySkipped, "superseded by the rehire in delivery "+d.ID
		scheduled.UpdatedAt = x.Now().UTC().Truncate(time.Microsecond)
		return x.Store.SaveDeliveryOutcome(ctx, tx, scheduled)
	}
	return o, nil
}

// update applies names, phone and directory attributes when the event is
// newer than the last one applied for the employee; an older one changes
// nothing (out-of-order delivery).
func (x *Directory) update(ctx context.Context, d Delivery, emp HRISEmployee, m domain.Mapping) (outcome, error) {
	if emp.AttributesDelivery != d.ID && !d.newerThan(emp) {
		return outcome{status: domain.DeliverySkipped, technicianID: emp.TechnicianID, endUserID: emp.EndUserID,
			reason: "skipped: an event of this employee that occurred later (" + emp.AttributesAt.Format(time.RFC3339) + ") was applied already"}, nil
	}
	e := d.Event.Employee
	emp.AttributesAt, emp.AttributesDelivery = d.OccurredAt, d.ID
	switch emp.Kind {
	case domain.MapTechnician:
		p := domain.Patch{}
		if e.FirstName != "" {
			p.FirstName = &e.FirstName
		}
		if e.LastName != "" {
			p.LastName = &e.LastName
		}
		if e.Phone != "" {
			p.Phone = &e.Phone
		}
		if _, err := x.PatchTechnician(ctx, d.AccountID, emp.TechnicianID, p); err != nil {
			if transient(err) {
				return outcome{}, err
			}
			return failed(err), nil
		}
		reason := "updated"
		var roleChange *identityv1.TechnicianRoleRequested
		switch target, rule := m.Decide(e); {
		case target.Kind == domain.MapTechnician && target.Role != "" && !strings.EqualFold(target.Role, emp.MappedRole):
			// The mapped role changed: rolepolicy assigns it as PUT
			// …/role would, subject to the first-login rule.
			reason = fmt.Sprintf("updated; role %q requested (%s)", target.Role, ruleName(rule))
			roleChange = &identityv1.TechnicianRoleRequested{TechnicianId: emp.TechnicianID, Role: target.Role}
			emp.MappedRole = target.Role
		case target.Kind != domain.MapTechnician:
			// Offboarding follows the HRIS's termination, not a mapping change.
			reason = fmt.Sprintf("updated; the mapping now says %s (%s): the technician is kept until terminated", target.Kind, ruleName(rule))
		}
		dir := DirectoryEntry{TechnicianID: emp.TechnicianID, AccountID: d.AccountID, EmployeeNumber: e.ID,
			Department: e.Department, JobTitle: e.JobTitle, Location: e.Location, Manager: e.ManagerEmail}
		return outcome{status: domain.DeliveryApplied, reason: reason, technicianID: emp.TechnicianID,
			apply: func(tx *sql.Tx) error {
				if err := x.saveDirectory(ctx, tx, dir); err != nil {
					return err
				}
				if roleChange != nil {
					if err := x.Bus.Emit(ctx, tx, d.AccountID, roleChange); err != nil {
						return err
					}
				}
				return x.Store.SaveHRISEmployee(ctx, tx, emp)
			}}, nil
	case domain.MapEndUser:
		name := strings.TrimSpace(e.FirstName + " " + e.LastName)
		return outcome{status: domain.DeliveryApplied, reason: "updated", endUserID: emp.EndUserID,
			apply: func(tx *sql.Tx) error {
				if name != "" {
					if err := x.Store.RenameEndUser(ctx, tx, d.AccountID, emp.EndUserID, name, x.Now()); err != nil {
						return err
					}
				}
				return x.Store.SaveHRISEmployee(ctx, tx, emp)
			}}, nil
	default:
		return outcome{status: domain.DeliverySkipped, reason: "ignored by the mapping",
			apply: func(tx *sql.Tx) error { return x.Store.SaveHRISEmployee(ctx, tx, emp) }}, nil
	}
}

// saveDirectory stores a technician's directory attributes, with
// TechnicianDirectoryUpdated when any changed.
func (x *Directory) saveDirectory(ctx context.Context, tx *sql.Tx, d DirectoryEntry) error {
	prev, err := x.Store.DirectoryEntry(ctx, tx, d.AccountID, d.TechnicianID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	changes := d.changes(prev)
	if len(changes) == 0 {
		return nil
	}
	if err := x.Store.SaveDirectoryEntry(ctx, tx, d, x.Now()); err != nil {
		return err
	}
	ev := &identityv1.TechnicianDirectoryUpdated{TechnicianId: d.TechnicianID}
	for _, c := range changes {
		ev.Changes = append(ev.Changes, &identityv1.FieldChange{Field: c.Field, Before: c.Before, After: c.After})
	}
	return x.Bus.Emit(ctx, tx, d.AccountID, ev)
}

// terminate disables the employee's technician (or deactivates the end
// user) now when the effective date has come, or schedules it for that
// date (ApplyDueTerminations).
func (x *Directory) terminate(ctx context.Context, d Delivery, emp HRISEmployee) (outcome, error) {
	if emp.Kind == domain.MapIgnore {
		return outcome{status: domain.DeliverySkipped, reason: "ignored by the mapping"}, nil
	}
	t := Termination{AccountID: d.AccountID, EmployeeID: emp.EmployeeID, DeliveryID: d.ID, EffectiveDate: d.EffectiveDate}
	if !domain.EffectiveNow(d.EffectiveDate, x.Now()) {
		return outcome{status: domain.DeliveryScheduled, technicianID: emp.TechnicianID, endUserID: emp.EndUserID,
			reason: "disables on " + d.EffectiveDate,
			apply:  func(tx *sql.Tx) error { return x.Store.ScheduleTermination(ctx, tx, t) }}, nil
	}
	return outcome{status: domain.DeliveryApplied, technicianID: emp.TechnicianID, endUserID: emp.EndUserID,
		reason: "disabled (terminated)",
		apply: func(tx *sql.Tx) error {
			if err := x.Store.ScheduleTermination(ctx, tx, t); err != nil {
				return err
			}
			if _, err := x.Store.CompleteTermination(ctx, tx, t.AccountID, t.EmployeeID, x.Now()); err != nil {
				return err
			}
			return x.offboard(ctx, tx, emp)
		}}, nil
}

// offboard disables the technician (I-7, I-9: the account's last admin is
// refused) or deactivates the end user (I-10), within tx.
func (x *Directory) offboard(ctx context.Context, tx *sql.Tx, emp HRISEmployee) error {
	if emp.Kind == domain.MapEndUser {
		u, err := x.EndUsers.EndUser(ctx, tx, emp.AccountID, emp.EndUserID)
		if err != nil || u.Status == domain.EndUserDeactivated {
			return err
		}
		if err := x.EndUsers.SetEndUserStatus(ctx, tx, emp.AccountID, u.ID, domain.EndUserDeactivated, x.Now()); err != nil {
			return err
		}
		return x.Bus.Emit(ctx, tx, emp.AccountID, &identityv1.EndUserDeactivated{EndUserId: u.ID})
	}
	if err := x.Technicians.LockAccount(ctx, tx, emp.AccountID); err != nil {
		return err
	}
	t, err := x.Technicians.Technician(ctx, tx, emp.AccountID, emp.TechnicianID)
	if err != nil || t.Status == domain.StatusDisabled {
		return err
	}
	if t.IsAdmin {
		n, err := x.Technicians.ActiveAdmins(ctx, tx, emp.AccountID)
		if err != nil {
			return err
		}
		if n <= 1 {
			return domain.ErrLastAdmin()
		}
	}
	return x.disable(ctx, tx, &t, "hris_terminated", "")
}

// ApplyDueTerminations disables the employees whose scheduled termination
// date has come (H-1). Each termination is claimed (done_at) in the
// transaction that disables, so it applies exactly once, whatever the
// restarts or replicas.
func (x *Directory) ApplyDueTerminations(ctx context.Context) {
	today := x.Now().UTC().Format(time.DateOnly)
	due, err := x.Store.DueTerminations(ctx, today, 100)
	if err != nil {
		if ctx.Err() == nil {
			x.Log.ErrorContext(ctx, "hris: due terminations", "err", err)
		}
		return
	}
	for _, t := range due {
		if err := x.applyTermination(ctx, t); err != nil && ctx.Err() == nil {
			x.Log.ErrorContext(ctx, "hris: scheduled termination", "account_id", t.AccountID, "employee_id", t.EmployeeID, "err", err)
		}
	}
}

func (x *Directory) applyTermination(ctx context.Context, t Termination) error {
	d, err := x.Store.Delivery(ctx, x.DB, t.AccountID, t.DeliveryID)
	if err != nil {
		return err
	}
	ctx = eventbus.WithActor(ctx, &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_HRIS, Id: d.Source})
	ctx = eventbus.WithCorrelation(ctx, d.ID)
	emp, err := x.Store.HRISEmployee(ctx, x.DB, t.AccountID, t.EmployeeID)
	if err != nil {
		return err
	}
	o := outcome{status: domain.DeliveryApplied, reason: "disabled on the effective date " + t.EffectiveDate,
		technicianID: emp.TechnicianID, endUserID: emp.EndUserID}
	claim := func(tx *sql.Tx) (bool, error) {
		return x.Store.CompleteTermination(ctx, tx, t.AccountID, t.EmployeeID, x.Now())
	}
	o.apply = func(tx *sql.Tx) error {
		if ok, err := claim(tx); err != nil || !ok {
			return errClaimed
		}
		return x.offboard(ctx, tx, emp)
	}
	err = x.record(ctx, d, o)
	var p *problem.Problem
	switch {
	case errors.Is(err, errClaimed), errors.Is(err, errRecordedElsewhere):
		return nil
	case errors.As(err, &p):
		f := failed(p)
		f.apply = func(tx *sql.Tx) error {
			if ok, err := claim(tx); err != nil || !ok {
				return errClaimed
			}
			return nil
		}
		if err := x.record(ctx, d, f); err != nil && !errors.Is(err, errClaimed) && !errors.Is(err, errRecordedElsewhere) {
			return err
		}
		return nil
	}
	return err
}

// errClaimed: another run applied the termination first.
var errClaimed = errors.New("termination already applied")

// errRecordedElsewhere: another processor recorded the delivery's outcome
// after this one read it.
var errRecordedElsewhere = errors.New("delivery recorded by another processor")
