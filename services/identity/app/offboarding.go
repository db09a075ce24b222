package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/identity/domain"
)

// OwnershipStore keeps the ownership registry and the offboardings (O-4).
type OwnershipStore interface {
	UpsertOwnership(ctx context.Context, tx *sql.Tx, accountID string, it domain.OwnedItem, now time.Time) error
	DeleteOwnership(ctx context.Context, tx *sql.Tx, accountID, kind, id string) (bool, error)
	ListOwnership(ctx context.Context, q Querier, f OwnershipFilter) ([]domain.OwnedItem, error)
	Item(ctx context.Context, q Querier, accountID, kind, id string) (domain.OwnedItem, error)
	// OwnedPage is a page of the items owner holds that are not archived,
	// in (kind, id) order after the key (afterKind, afterID).
	OwnedPage(ctx context.Context, q Querier, accountID, owner, afterKind, afterID string, limit int) ([]domain.OwnedItem, error)
	Orphans(ctx context.Context, q Querier, f OwnershipFilter) ([]domain.OwnedItem, error)
	SetOwner(ctx context.Context, tx *sql.Tx, accountID, kind, id, owner string, now time.Time) error
	ArchiveItem(ctx context.Context, tx *sql.Tx, accountID, kind, id, offboardingID string, until, now time.Time) error
	// ArchivedBy are the items archived by the offboardings of technician,
	// still within their window.
	ArchivedBy(ctx context.Context, tx *sql.Tx, accountID, technicianID string, now time.Time) ([]ArchivedItem, error)
	UnarchiveItem(ctx context.Context, tx *sql.Tx, accountID, kind, id string, now time.Time) (bool, error)
	// DueArchives are archived items whose window ended.
	DueArchives(ctx context.Context, now time.Time, limit int) ([]ArchivedItem, error)
	// PurgeArchived deletes the item if it is still archived and due; false
	// when another run (or a restore) came first.
	PurgeArchived(ctx context.Context, tx *sql.Tx, it ArchivedItem, now time.Time) (bool, error)

	InsertOffboarding(ctx context.Context, tx *sql.Tx, o Offboarding) error
	Offboarding(ctx context.Context, q Querier, accountID, id string) (Offboarding, error)
	LatestOffboarding(ctx context.Context, q Querier, accountID, technicianID string) (Offboarding, error)
	// AddAction records an action at the offboarding's next seq and, when
	// it carries an instruction, counts it outstanding (and reopens a
	// completed offboarding); it returns the seq.
	AddAction(ctx context.Context, tx *sql.Tx, offboardingID string, a domain.Action, from string, now time.Time) (int64, error)
	// CloseIfDone marks the offboarding completed when nothing is
	// outstanding.
	CloseIfDone(ctx context.Context, tx *sql.Tx, offboardingID string, now time.Time) error
	Actions(ctx context.Context, q Querier, offboardingID string, outstandingOnly bool, afterSeq int64, limit int) ([]ActionRow, error)
	Summary(ctx context.Context, q Querier, offboardingID string) (domain.OffboardingSummary, error)
	// Ack marks the item's outstanding instructions acknowledged and
	// returns how many.
	Ack(ctx context.Context, tx *sql.Tx, offboardingID, kind, id string, now time.Time) (int, error)
	LiveSessionCount(ctx context.Context, q Querier, technicianID string, now time.Time) (int, error)
	DirectoryEntry(ctx context.Context, q Querier, accountID, technicianID string) (DirectoryEntry, error)
}

// OwnershipFilter selects registry entries.
type OwnershipFilter struct {
	AccountID, OwnerID, Kind string
	AfterKind, AfterID       string
	Limit                    int
}

// ArchivedItem is a personal report archived by an offboarding (O-3).
type ArchivedItem struct {
	AccountID, Kind, ID, OwnerID, OffboardingID string
	Until                                       time.Time
}

// Offboarding is one disable's plan and progress.
type Offboarding struct {
	ID              string     `json:"id"`
	AccountID       string     `json:"account_id"`
	TechnicianID    string     `json:"technician_id"`
	Policy          string     `json:"policy"`
	SuccessorID     string     `json:"successor_id"`
	SuccessorSource string     `json:"successor_source"`
	Status          string     `json:"status"`
	Outstanding     int        `json:"outstanding"`
	CreatedAt       time.Time  `json:"created_at"`
	CompletedAt     *time.Time `json:"completed_at"`
}

// ActionRow is a recorded action with its acknowledgement.
type ActionRow struct {
	Seq int64 `json:"seq"`
	domain.Action
	From    string     `json:"from,omitempty"`
	AckedAt *time.Time `json:"acked_at"`
}

// Instruction is the event an owning system receives for one action
// (O-4), published on roster.offboarding.<account_id>.<kind>.
type Instruction struct {
	ID            string     `json:"id"`
	Type          string     `json:"type"`
	AccountID     string     `json:"account_id"`
	OffboardingID string     `json:"offboarding_id,omitempty"`
	TechnicianID  string     `json:"technician_id"`
	Kind          string     `json:"kind"`
	ItemID        string     `json:"item_id"`
	Action        string     `json:"action"`
	FromOwnerID   string     `json:"from_owner_id,omitempty"`
	ToOwnerID     string     `json:"to_owner_id,omitempty"`
	ArchivedUntil *time.Time `json:"archived_until,omitempty"`
	Time          time.Time  `json:"time"`
}

// InstructionPublisher queues an instruction in identity's outbox within
// tx: published once tx commits, exactly once per id.
type InstructionPublisher interface {
	Publish(ctx context.Context, tx *sql.Tx, ins Instruction) error
}

// SeatCostPreview is seatbilling's answer about the cost effect of
// freeing a seat (S-4); identity prices nothing.
type SeatCostPreview struct {
	SeatFreed          bool   `json:"seat_freed"`
	ChargeNow          int64  `json:"charge_now"`
	Refund             int64  `json:"refund"`
	Currency           string `json:"currency"`
	SeatsAvailableNow  int    `json:"seats_available_before"`
	SeatsAvailableThen int    `json:"seats_available_after"`
	NextRenewal        int64  `json:"next_renewal_amount"`
	NextRenewalDate    string `json:"next_renewal_date"`
	Note               string `json:"note"`
}

// SeatCostPreviewer asks seatbilling (request-reply).
type SeatCostPreviewer interface {
	PreviewSeatRelease(ctx context.Context, accountID, technicianID string) (*SeatCostPreview, error)
}

// Offboardings are the offboarding use cases (O-1…O-4).
type Offboardings struct {
	*App
	Own          OwnershipStore
	Instructions InstructionPublisher
	Costs        SeatCostPreviewer
	// Feed and Rejects: the ownership events' position and dead letters.
	Feed    OwnershipFeed
	Rejects OwnershipRejecter
	// PageSize: items read per page (DefaultPageSize when 0).
	PageSize int
}

// DefaultPageSize bounds the items an offboarding, a preview or a bulk
// reassignment holds in memory at once.
const DefaultPageSize = 500

func (o *Offboardings) pageSize() int {
	if o.PageSize > 0 {
		return o.PageSize
	}
	return DefaultPageSize
}

// maxShownActions bounds the actions an answer carries; the rest are paged
// through GET …/offboardings/{id}.
const maxShownActions = 1000

// MaxRegistration bounds the items of one registration request.
const MaxRegistration = 1000

// RegisterOwnership upserts items (O-4), idempotent by (kind, id).
func (o *Offboardings) RegisterOwnership(ctx context.Context, accountID string, items []domain.OwnedItem, idemKey string, body []byte) (idempotency.Result, error) {
	if _, err := o.Account(ctx, accountID); err != nil {
		return idempotency.Result{}, err
	}
	if len(items) == 0 || len(items) > MaxRegistration {
		return idempotency.Result{}, problem.Invalid(problem.FieldError{Field: "items", Detail: fmt.Sprintf("between 1 and %d items", MaxRegistration)})
	}
	var errs []problem.FieldError
	for i := range items {
		errs = append(errs, items[i].Validate("items["+strconv.Itoa(i)+"]")...)
	}
	if len(errs) > 0 {
		return idempotency.Result{}, problem.Invalid(errs...)
	}
	return idempotency.Do(ctx, o.DB, idempotency.Request{Scope: idemScope(accountID, "POST /ownership"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			now := o.Now().UTC().Truncate(time.Microsecond)
			owners := map[string]bool{}
			for i, it := range items {
				if it.OwnerID != "" && !owners[it.OwnerID] {
					if _, err := o.Technicians.Technician(ctx, tx, accountID, it.OwnerID); errors.Is(err, ErrNotFound) {
						return 0, nil, problem.Invalid(problem.FieldError{Field: "items[" + strconv.Itoa(i) + "].owner_id", Detail: "unknown technician " + it.OwnerID})
					} else if err != nil {
						return 0, nil, err
					}
					owners[it.OwnerID] = true
				}
				if err := o.Own.UpsertOwnership(ctx, tx, accountID, it, now); err != nil {
					return 0, nil, err
				}
			}
			return http.StatusOK, map[string]any{"registered": len(items)}, nil
		})
}

// DeleteOwnership removes an item from the registry.
func (o *Offboardings) DeleteOwnership(ctx context.Context, accountID, kind, id string) error {
	if _, err := o.Account(ctx, accountID); err != nil {
		return err
	}
	return o.DB.InTx(ctx, func(tx *sql.Tx) error {
		ok, err := o.Own.DeleteOwnership(ctx, tx, accountID, kind, id)
		if err == nil && !ok {
			return problem.NotFound("ownership " + kind + "/" + id)
		}
		return err
	})
}

// ListOwnership lists the registry, by owner and kind.
func (o *Offboardings) ListOwnership(ctx context.Context, f OwnershipFilter) ([]domain.OwnedItem, error) {
	if _, err := o.Account(ctx, f.AccountID); err != nil {
		return nil, err
	}
	return o.Own.ListOwnership(ctx, o.DB, f)
}

// Orphans lists items whose owner is disabled (O-2).
func (o *Offboardings) Orphans(ctx context.Context, f OwnershipFilter) ([]domain.OwnedItem, error) {
	if _, err := o.Account(ctx, f.AccountID); err != nil {
		return nil, err
	}
	return o.Own.Orphans(ctx, o.DB, f)
}

// successor resolves who takes reassigned items: the one named in the
// request, else the manager HRIS reported (O-3), else nobody.
func (o *Offboardings) successor(ctx context.Context, q Querier, t domain.Technician, named string) (string, string, error) {
	if named != "" {
		return named, "request", nil
	}
	d, err := o.Own.DirectoryEntry(ctx, q, t.AccountID, t.ID)
	if errors.Is(err, ErrNotFound) || (err == nil && d.Manager == "") {
		return "", "none", nil
	}
	if err != nil {
		return "", "", err
	}
	m, err := o.Technicians.TechnicianByEmail(ctx, q, t.AccountID, d.Manager)
	if errors.Is(err, ErrNotFound) || (err == nil && (m.Status == domain.StatusDisabled || m.ID == t.ID)) {
		return "", "none", nil
	}
	if err != nil {
		return "", "", err
	}
	return m.ID, "hris_manager", nil
}

// Plan is an offboarding's plan as the disable answer and the dry run show
// it (api.md).
type Plan struct {
	ID              string                    `json:"id,omitempty"`
	Status          string                    `json:"status,omitempty"`
	Policy          string                    `json:"policy"`
	SuccessorID     string                    `json:"successor_id"`
	SuccessorSource string                    `json:"successor_source"`
	Summary         domain.OffboardingSummary `json:"summary"`
	Total           int                       `json:"actions_total"`
	Outstanding     int                       `json:"outstanding"`
	Actions         []domain.Action           `json:"actions"`
	// Unassigned: items left without an owner (O-3: reported).
	Unassigned int `json:"unassigned"`
}

// walk plans every item t owns, a page at a time, calling fn for each.
func (o *Offboardings) walk(ctx context.Context, q Querier, policy string, t domain.Technician, successor string, fn func(domain.OwnedItem, domain.Action) error) error {
	kind, id := "", ""
	for {
		items, err := o.Own.OwnedPage(ctx, q, t.AccountID, t.ID, kind, id, o.pageSize())
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it, domain.Decide(policy, it, successor)); err != nil {
				return err
			}
		}
		if len(items) < o.pageSize() {
			return nil
		}
		kind, id = items[len(items)-1].Kind, items[len(items)-1].ID
	}
}

func (p *Plan) add(a domain.Action) {
	p.Summary.Add(a)
	p.Total++
	if a.Instruction != "" {
		p.Outstanding++
	}
	if a.Action == domain.ActionUnassign {
		p.Unassigned++
	}
	if len(p.Actions) < maxShownActions {
		p.Actions = append(p.Actions, a)
	}
}

// Offboard runs in the disabling transaction (flows.md "Disable"): it
// plans every item t owns under the profile's policy, applies the plan to
// the registry, records it and queues one instruction per affected item.
func (o *Offboardings) Offboard(ctx context.Context, tx *sql.Tx, t domain.Technician, named string) error {
	acc, err := o.Store.AccountIn(ctx, tx, t.AccountID)
	if err != nil {
		return err
	}
	policy := domain.PolicyFor(acc.Profile)
	to, source, err := o.successor(ctx, tx, t, named)
	if err != nil {
		return err
	}
	now := o.Now().UTC().Truncate(time.Microsecond)
	off := Offboarding{ID: NewID("off"), AccountID: t.AccountID, TechnicianID: t.ID, Policy: policy,
		SuccessorID: to, SuccessorSource: source, Status: domain.OffboardingInProgress, CreatedAt: now}
	if err := o.Own.InsertOffboarding(ctx, tx, off); err != nil {
		return err
	}
	// Items are read a page at a time and changed after the page is read:
	// every change moves the item out of t's page (or leaves it behind the
	// key), so the walk ends.
	kind, id := "", ""
	for {
		items, err := o.Own.OwnedPage(ctx, tx, t.AccountID, t.ID, kind, id, o.pageSize())
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := o.apply(ctx, tx, off, it, domain.Decide(policy, it, to), now); err != nil {
				return err
			}
		}
		if len(items) < o.pageSize() {
			break
		}
		kind, id = items[len(items)-1].Kind, items[len(items)-1].ID
	}
	return o.Own.CloseIfDone(ctx, tx, off.ID, now)
}

// apply changes the registry for one action, records it and queues its
// instruction.
func (o *Offboardings) apply(ctx context.Context, tx *sql.Tx, off Offboarding, it domain.OwnedItem, a domain.Action, now time.Time) error {
	ins := Instruction{Type: a.Instruction, AccountID: off.AccountID, OffboardingID: off.ID, TechnicianID: off.TechnicianID,
		Kind: it.Kind, ItemID: it.ID, Action: a.Action, FromOwnerID: it.OwnerID, ToOwnerID: a.To, Time: now}
	var err error
	switch a.Action {
	case domain.ActionUnassign, domain.ActionReassign:
		err = o.Own.SetOwner(ctx, tx, off.AccountID, it.Kind, it.ID, a.To, now)
	case domain.ActionDelete, domain.ActionRevoke:
		_, err = o.Own.DeleteOwnership(ctx, tx, off.AccountID, it.Kind, it.ID)
	case domain.ActionArchive:
		until := now.Add(domain.ArchiveWindow)
		ins.ArchivedUntil = &until
		err = o.Own.ArchiveItem(ctx, tx, off.AccountID, it.Kind, it.ID, off.ID, until, now)
	}
	if err != nil {
		return err
	}
	seq, err := o.Own.AddAction(ctx, tx, off.ID, a, it.OwnerID, now)
	if err != nil || a.Instruction == "" {
		return err
	}
	ins.ID = off.ID + "." + strconv.FormatInt(seq, 10)
	return o.Instructions.Publish(ctx, tx, ins)
}

// Preview is the dry run of a disable (O-3): the same checks and plan,
// nothing changed.
type Preview struct {
	DryRun          bool             `json:"dry_run"`
	TechnicianID    string           `json:"technician_id"`
	AlreadyDisabled bool             `json:"already_disabled"`
	Offboarding     Plan             `json:"offboarding"`
	SeatFreed       bool             `json:"seat_freed"`
	SessionsRevoked int              `json:"sessions_revoked"`
	TokensRevoked   int              `json:"tokens_revoked"`
	Cost            *SeatCostPreview `json:"cost"`
}

// PreviewDisable answers what disabling id would do, with the checks of
// DisableTechnician (404, 422 successor, 409 last-admin); it writes
// nothing.
func (o *Offboardings) PreviewDisable(ctx context.Context, accountID, id, named string) (Preview, error) {
	var p Preview
	acc, err := o.Store.Account(ctx, accountID)
	if errors.Is(err, ErrNotFound) {
		return p, problem.NotFound("account " + accountID)
	} else if err != nil {
		return p, err
	}
	t, err := o.Technicians.Technician(ctx, o.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return p, problem.NotFound("technician " + id)
	} else if err != nil {
		return p, err
	}
	p = Preview{DryRun: true, TechnicianID: t.ID, Offboarding: Plan{Policy: domain.PolicyFor(acc.Profile), Summary: domain.OffboardingSummary{}, Actions: []domain.Action{}}}
	if t.Status == domain.StatusDisabled {
		p.AlreadyDisabled = true // a disable changes nothing
		return p, nil
	}
	if named != "" {
		s, err := o.Technicians.Technician(ctx, o.DB, accountID, named)
		if err != nil || s.Status == domain.StatusDisabled || s.ID == t.ID {
			return p, problem.Invalid(problem.FieldError{Field: "successor_id", Detail: "must be another technician of the account who is not disabled"})
		}
	}
	if t.IsAdmin {
		err := o.DB.InTx(ctx, func(tx *sql.Tx) error {
			n, err := o.Technicians.ActiveAdmins(ctx, tx, accountID)
			if err == nil && n <= 1 {
				return domain.ErrLastAdmin()
			}
			return err
		})
		if err != nil {
			return p, err
		}
	}
	to, source, err := o.successor(ctx, o.DB, t, named)
	if err != nil {
		return p, err
	}
	p.Offboarding.SuccessorID, p.Offboarding.SuccessorSource = to, source
	err = o.walk(ctx, o.DB, p.Offboarding.Policy, t, to, func(it domain.OwnedItem, a domain.Action) error {
		p.Offboarding.add(a)
		if a.Action == domain.ActionRevoke && it.Kind == domain.KindAPIToken {
			p.TokensRevoked++
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	if p.SessionsRevoked, err = o.Own.LiveSessionCount(ctx, o.DB, t.ID, o.Now().UTC()); err != nil {
		return p, err
	}
	p.SeatFreed = true // S-4: every disable frees the seat
	if o.Costs != nil {
		c, err := o.Costs.PreviewSeatRelease(ctx, accountID, t.ID)
		if err != nil {
			return p, fmt.Errorf("cost preview: %w", err)
		}
		p.Cost = c
		if c != nil {
			p.SeatFreed = c.SeatFreed
		}
	}
	return p, nil
}

// ActionCursor versions the cursor of an offboarding's actions (by seq),
// in the disable answer as in GET …/offboardings/{id}.
const ActionCursor = "a1:"

// View is an offboarding with a page of its actions.
type View struct {
	Offboarding
	Summary    domain.OffboardingSummary `json:"summary"`
	Actions    []ActionRow               `json:"actions"`
	NextCursor any                       `json:"next_cursor"`
}

// OffboardingView answers GET …/offboardings/{id}: progress, and a page of
// its actions (outstanding ones only when asked).
func (o *Offboardings) OffboardingView(ctx context.Context, accountID, id string, outstandingOnly bool, after int64, limit int) (View, error) {
	off, err := o.Offboarding(ctx, accountID, id)
	if err != nil {
		return View{}, err
	}
	return o.view(ctx, o.DB, off, outstandingOnly, after, limit)
}

// Offboarding returns one offboarding of the account.
func (o *Offboardings) Offboarding(ctx context.Context, accountID, id string) (Offboarding, error) {
	off, err := o.Own.Offboarding(ctx, o.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return off, problem.NotFound("offboarding " + id)
	}
	return off, err
}

func (o *Offboardings) view(ctx context.Context, q Querier, off Offboarding, outstandingOnly bool, after int64, limit int) (View, error) {
	v := View{Offboarding: off}
	var err error
	if v.Summary, err = o.Own.Summary(ctx, q, off.ID); err != nil {
		return v, err
	}
	rows, err := o.Own.Actions(ctx, q, off.ID, outstandingOnly, after, limit+1)
	if err != nil {
		return v, err
	}
	if len(rows) > limit {
		rows = rows[:limit]
		v.NextCursor = httpx.EncodeCursor(ActionCursor, strconv.FormatInt(rows[len(rows)-1].Seq, 10))
	}
	v.Actions = rows
	if v.Actions == nil {
		v.Actions = []ActionRow{}
	}
	return v, nil
}

// LatestView is the technician's latest offboarding with its first
// actions, for the disable answer (nil when there is none).
func (o *Offboardings) LatestView(ctx context.Context, q Querier, accountID, technicianID string) (*View, error) {
	off, err := o.Own.LatestOffboarding(ctx, q, accountID, technicianID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := o.view(ctx, q, off, false, 0, maxShownActions)
	return &v, err
}

// AckItem names an item an owning system acknowledges.
type AckItem struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Acknowledge records owning systems' acknowledgements (O-4); the
// offboarding completes once nothing is outstanding. Acknowledging again
// changes nothing; items without an outstanding instruction are listed in
// the answer's "unknown".
func (o *Offboardings) Acknowledge(ctx context.Context, accountID, id string, items []AckItem, idemKey string, body []byte) (idempotency.Result, error) {
	if len(items) == 0 || len(items) > MaxRegistration {
		return idempotency.Result{}, problem.Invalid(problem.FieldError{Field: "items", Detail: fmt.Sprintf("between 1 and %d items", MaxRegistration)})
	}
	for i, it := range items {
		if it.Kind == "" || it.ID == "" {
			return idempotency.Result{}, problem.Invalid(problem.FieldError{Field: "items[" + strconv.Itoa(i) + "]", Detail: "kind and id are required"})
		}
	}
	if _, err := o.Offboarding(ctx, accountID, id); err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, o.DB, idempotency.Request{Scope: idemScope(accountID, "POST /offboardings/"+id+"/acks"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			now := o.Now().UTC().Truncate(time.Microsecond)
			acked, unknown := 0, []AckItem{}
			for _, it := range items {
				n, err := o.Own.Ack(ctx, tx, id, it.Kind, it.ID, now)
				if err != nil {
					return 0, nil, err
				}
				if n == 0 {
					unknown = append(unknown, it)
				}
				acked += n
			}
			if err := o.Own.CloseIfDone(ctx, tx, id, now); err != nil {
				return 0, nil, err
			}
			off, err := o.Own.Offboarding(ctx, tx, accountID, id)
			if err != nil {
				return 0, nil, err
			}
			return http.StatusOK, map[string]any{"acknowledged": acked, "unknown": unknown, "status": off.Status, "outstanding": off.Outstanding}, nil
		})
}

// Reassign moves items to another technician (O-2's offered
// reassignment): every item of from_owner_id (not archived), or the named
// items. Each moved item gets an OwnershipReassigned instruction, recorded
// in the previous owner's latest offboarding when there is one.
func (o *Offboardings) Reassign(ctx context.Context, accountID, from string, items []AckItem, to, idemKey string, body []byte) (idempotency.Result, error) {
	if (from == "") == (len(items) == 0) {
		return idempotency.Result{}, problem.Invalid(problem.FieldError{Field: "from_owner_id", Detail: "give from_owner_id or items, not both"})
	}
	if len(items) > MaxRegistration {
		return idempotency.Result{}, problem.Invalid(problem.FieldError{Field: "items", Detail: fmt.Sprintf("at most %d items", MaxRegistration)})
	}
	if _, err := o.Account(ctx, accountID); err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, o.DB, idempotency.Request{Scope: idemScope(accountID, "POST /ownership/reassign"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			target, err := o.Technicians.Technician(ctx, tx, accountID, to)
			if err != nil || target.Status == domain.StatusDisabled {
				return 0, nil, problem.Invalid(problem.FieldError{Field: "to_owner_id", Detail: "must be a technician of the account who is not disabled"})
			}
			now := o.Now().UTC().Truncate(time.Microsecond)
			moved := 0
			offs := map[string]*Offboarding{}
			move := func(it domain.OwnedItem) error {
				if it.OwnerID == to || it.ArchivedUntil != nil {
					return nil
				}
				off, ok := offs[it.OwnerID]
				if !ok && it.OwnerID != "" {
					if l, err := o.Own.LatestOffboarding(ctx, tx, accountID, it.OwnerID); err == nil {
						off = &l
					} else if !errors.Is(err, ErrNotFound) {
						return err
					}
					offs[it.OwnerID] = off
				}
				if err := o.Own.SetOwner(ctx, tx, accountID, it.Kind, it.ID, to, now); err != nil {
					return err
				}
				moved++
				a := domain.Action{Kind: it.Kind, ID: it.ID, Action: domain.ActionReassign, To: to, Instruction: domain.InstrReassigned}
				ins := Instruction{Type: a.Instruction, AccountID: accountID, TechnicianID: it.OwnerID, Kind: it.Kind, ItemID: it.ID,
					Action: a.Action, FromOwnerID: it.OwnerID, ToOwnerID: to, Time: now}
				if off != nil {
					seq, err := o.Own.AddAction(ctx, tx, off.ID, a, it.OwnerID, now)
					if err != nil {
						return err
					}
					ins.OffboardingID, ins.ID = off.ID, off.ID+"."+strconv.FormatInt(seq, 10)
				} else {
					ins.ID = NewID("ins")
				}
				return o.Instructions.Publish(ctx, tx, ins)
			}
			if from != "" {
				kind, id := "", ""
				for {
					page, err := o.Own.OwnedPage(ctx, tx, accountID, from, kind, id, o.pageSize())
					if err != nil {
						return 0, nil, err
					}
					for _, it := range page {
						if err := move(it); err != nil {
							return 0, nil, err
						}
					}
					if len(page) < o.pageSize() {
						break
					}
					kind, id = page[len(page)-1].Kind, page[len(page)-1].ID
				}
			} else {
				for i, ref := range items {
					got, err := o.Own.Item(ctx, tx, accountID, ref.Kind, ref.ID)
					if errors.Is(err, ErrNotFound) {
						return 0, nil, problem.Invalid(problem.FieldError{Field: "items[" + strconv.Itoa(i) + "]", Detail: "not in the registry: " + ref.Kind + "/" + ref.ID})
					}
					if err != nil {
						return 0, nil, err
					}
					if err := move(got); err != nil {
						return 0, nil, err
					}
				}
			}
			return http.StatusOK, map[string]any{"reassigned": moved, "to_owner_id": to}, nil
		})
}

// RestoreArchived runs in the enabling transaction (O-3): reports archived
// by the technician's offboardings within their window are given back,
// each with a ReportRestored instruction.
func (o *Offboardings) RestoreArchived(ctx context.Context, tx *sql.Tx, t domain.Technician) error {
	now := o.Now().UTC().Truncate(time.Microsecond)
	items, err := o.Own.ArchivedBy(ctx, tx, t.AccountID, t.ID, now)
	if err != nil {
		return err
	}
	for _, it := range items {
		ok, err := o.Own.UnarchiveItem(ctx, tx, it.AccountID, it.Kind, it.ID, now)
		if err != nil || !ok {
			return err
		}
		a := domain.Action{Kind: it.Kind, ID: it.ID, Action: domain.ActionRestore, To: it.OwnerID, Instruction: domain.InstrRestored}
		seq, err := o.Own.AddAction(ctx, tx, it.OffboardingID, a, it.OwnerID, now)
		if err != nil {
			return err
		}
		if err := o.Instructions.Publish(ctx, tx, Instruction{ID: it.OffboardingID + "." + strconv.FormatInt(seq, 10), Type: a.Instruction,
			AccountID: it.AccountID, OffboardingID: it.OffboardingID, TechnicianID: t.ID, Kind: it.Kind, ItemID: it.ID,
			Action: a.Action, ToOwnerID: it.OwnerID, Time: now}); err != nil {
			return err
		}
	}
	return nil
}

// PurgeDue deletes archived reports whose window ended (O-3), each in its
// own transaction that claims it, so exactly once whatever the restarts or
// replicas; the owning system receives ReportDeleted.
func (o *Offboardings) PurgeDue(ctx context.Context) error {
	for ctx.Err() == nil {
		now := o.Now().UTC().Truncate(time.Microsecond)
		due, err := o.Own.DueArchives(ctx, now, 100)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, it := range due {
			err := o.DB.InTx(ctx, func(tx *sql.Tx) error {
				ok, err := o.Own.PurgeArchived(ctx, tx, it, now)
				if err != nil || !ok {
					return err
				}
				a := domain.Action{Kind: it.Kind, ID: it.ID, Action: domain.ActionDelete, Instruction: domain.InstrDeleted}
				seq, err := o.Own.AddAction(ctx, tx, it.OffboardingID, a, it.OwnerID, now)
				if err != nil {
					return err
				}
				return o.Instructions.Publish(ctx, tx, Instruction{ID: it.OffboardingID + "." + strconv.FormatInt(seq, 10), Type: a.Instruction,
					AccountID: it.AccountID, OffboardingID: it.OffboardingID, TechnicianID: it.OwnerID, Kind: it.Kind, ItemID: it.ID,
					Action: a.Action, FromOwnerID: it.OwnerID, Time: now})
			})
			if err != nil {
				return err
			}
		}
		if len(due) < 100 {
			return nil
		}
	}
	return nil
}

// RunPurge purges due archives every poll until ctx ends.
func (o *Offboardings) RunPurge(ctx context.Context, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := o.PurgeDue(ctx); err != nil && ctx.Err() == nil {
			o.logger().ErrorContext(ctx, "offboarding: archive purge", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (o *Offboardings) logger() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

// Ownership event operations (docs/events.md "Ownership events").
const (
	OwnershipUpsert = "upsert"
	OwnershipDelete = "delete"
)

// OwnershipEvent is what an owning system publishes on
// roster.ownership.<account_id>.<kind> (O-4): the item, and whether it is
// registered (upsert, the default) or removed (delete).
type OwnershipEvent struct {
	// Seq is the event's stream sequence.
	Seq       uint64
	AccountID string
	Op        string
	Item      domain.OwnedItem
	// Unreadable is set by the decoder for an event it could not read.
	Unreadable error
	// Subject, Header and Raw are the delivery, for the dead letter.
	Subject string
	Header  map[string]string
	Raw     []byte
}

// OwnershipRejecter dead-letters a refused ownership event within tx.
type OwnershipRejecter interface {
	Reject(ctx context.Context, tx *sql.Tx, ev OwnershipEvent, reason error) error
}

// OwnershipFeed is where the ownership events were applied up to.
type OwnershipFeed interface {
	FeedPosition(ctx context.Context, q Querier) (uint64, error)
	SetFeedPosition(ctx context.Context, tx *sql.Tx, seq uint64) error
}

// MaxOwnershipBatch bounds the events applied in one transaction.
const MaxOwnershipBatch = 256

// FeedPosition is the stream sequence of the last ownership event applied.
func (o *Offboardings) FeedPosition(ctx context.Context) (uint64, error) {
	return o.Feed.FeedPosition(ctx, o.DB)
}

// ApplyOwnershipEvents applies owning systems' events (in stream order) in
// one transaction, as POST and DELETE …/ownership would (O-4), and records
// the last one's sequence with them, so each event is applied once and in
// order whatever the restarts: events at or before the recorded position
// are skipped. A refused event (unreadable, unknown account or owner, a
// bad field) changes nothing and is dead-lettered with its reason. It
// returns how many were applied and refused.
func (o *Offboardings) ApplyOwnershipEvents(ctx context.Context, events []OwnershipEvent) (applied, refused int, err error) {
	err = o.DB.InTx(ctx, func(tx *sql.Tx) error {
		applied, refused = 0, 0
		pos, err := o.Feed.FeedPosition(ctx, tx)
		if err != nil {
			return err
		}
		now := o.Now().UTC().Truncate(time.Microsecond)
		known := map[string]error{} // account and account/owner → nil or why not
		exists := func(key string, find func() error) (bool, error) {
			if err, seen := known[key]; seen {
				return err == nil, nil
			}
			err := find()
			if err != nil && !errors.Is(err, ErrNotFound) {
				return false, err
			}
			known[key] = err
			return err == nil, nil
		}
		last := pos
		for _, ev := range events {
			if ev.Seq <= pos {
				continue // applied before
			}
			last = max(last, ev.Seq)
			reason, err := o.ownershipEvent(ctx, tx, ev, now, exists)
			if err != nil {
				return err
			}
			if reason != nil {
				refused++
				if err := o.Rejects.Reject(ctx, tx, ev, reason); err != nil {
					return err
				}
				continue
			}
			applied++
		}
		return o.Feed.SetFeedPosition(ctx, tx, last)
	})
	return applied, refused, err
}

// ownershipEvent applies one event; reason is why it was refused.
func (o *Offboardings) ownershipEvent(ctx context.Context, tx *sql.Tx, ev OwnershipEvent, now time.Time,
	exists func(key string, find func() error) (bool, error)) (reason, err error) {
	if ev.Unreadable != nil {
		return ev.Unreadable, nil
	}
	ok, err := exists(ev.AccountID, func() error { _, err := o.Store.Account(ctx, ev.AccountID); return err })
	if err != nil || !ok {
		return problem.NotFound("account " + ev.AccountID), err
	}
	switch ev.Op {
	case OwnershipDelete:
		if ev.Item.ID == "" {
			return problem.Invalid(problem.FieldError{Field: "id", Detail: "is required"}), nil
		}
		_, err := o.Own.DeleteOwnership(ctx, tx, ev.AccountID, ev.Item.Kind, ev.Item.ID)
		return nil, err
	case OwnershipUpsert, "":
	default:
		return problem.Invalid(problem.FieldError{Field: "op", Detail: "must be upsert or delete"}), nil
	}
	it := ev.Item
	it.ArchivedUntil = nil // the registry owns it
	if errs := it.Validate("item"); len(errs) > 0 {
		return problem.Invalid(errs...), nil
	}
	if it.OwnerID != "" {
		ok, err := exists(ev.AccountID+"/"+it.OwnerID, func() error {
			_, err := o.Technicians.Technician(ctx, tx, ev.AccountID, it.OwnerID)
			return err
		})
		if err != nil || !ok {
			return problem.Invalid(problem.FieldError{Field: "item.owner_id", Detail: "unknown technician " + it.OwnerID}), err
		}
	}
	return nil, o.Own.UpsertOwnership(ctx, tx, ev.AccountID, it, now)
}
