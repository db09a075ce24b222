package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"roster.dev/pkg/problem"
)

// H-1: HRIS webhooks signed per the Standard Webhooks specification
// (https://www.standardwebhooks.com): headers webhook-id,
// webhook-timestamp (Unix seconds) and webhook-signature, a space-separated
// list of "v1,<base64 HMAC-SHA256 of id.timestamp.body>"; the secret is
// "whsec_" + base64 of the key bytes.

// SecretPrefix starts every HRIS signing secret.
const SecretPrefix = "whsec_"

// WebhookTolerance is how far a webhook's timestamp may be from now, either
// way (H-1): older is a replay window closed, newer a clock gone wrong.
const WebhookTolerance = 5 * time.Minute

// SecretOverlap is how long the previous secret stays valid after a new
// one is created (api.md: 24 hours), so the HRIS can switch over.
const SecretOverlap = 24 * time.Hour

// Verification failures; each maps to one answer (H-1).
var (
	ErrWebhookHeaders   = errors.New("missing or malformed webhook-id, webhook-timestamp or webhook-signature")
	ErrWebhookTimestamp = errors.New("webhook-timestamp is more than 5 minutes from now")
	ErrWebhookSignature = errors.New("no signature matches a current secret")
)

// DecodeSecret returns the key bytes of a whsec_ secret.
func DecodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || !strings.HasPrefix(secret, SecretPrefix) || len(key) < 16 {
		return nil, errors.New("not a whsec_ secret")
	}
	return key, nil
}

// Sign returns the v1 signature of a webhook (what a sender puts in
// webhook-signature).
func Sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// WebhookHeaders are the three Standard Webhooks headers as received.
type WebhookHeaders struct {
	ID, Timestamp, Signature string
}

// VerifyWebhook checks a delivery against the current keys: the headers are
// present, the timestamp is within WebhookTolerance of now, and one of the
// space-separated v1 signatures matches one key. Comparisons are constant
// time (hmac.Equal); other signature versions are ignored, as the
// specification asks.
func VerifyWebhook(keys [][]byte, h WebhookHeaders, body []byte, now time.Time) error {
	if h.ID == "" || len(h.ID) > 256 || h.Timestamp == "" || h.Signature == "" {
		return ErrWebhookHeaders
	}
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return ErrWebhookHeaders
	}
	at := time.Unix(ts, 0)
	if at.Before(now.Add(-WebhookTolerance)) || at.After(now.Add(WebhookTolerance)) {
		return ErrWebhookTimestamp
	}
	var given [][]byte
	for _, part := range strings.Fields(h.Signature) {
		version, sig, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		given = append(given, b)
	}
	if len(given) == 0 {
		return ErrWebhookSignature
	}
	for _, key := range keys {
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%d.", h.ID, ts)
		m.Write(body)
		want := m.Sum(nil)
		for _, g := range given {
			if hmac.Equal(want, g) {
				return nil
			}
		}
	}
	return ErrWebhookSignature
}

// Employee event types (api.md's generic body).
const (
	EmployeeHired      = "employee.hired"
	EmployeeUpdated    = "employee.updated"
	EmployeeTerminated = "employee.terminated"
)

// Employee is an HRIS employee as every source is read into.
type Employee struct {
	ID           string `json:"id"`
	Email        string `json:"email"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Department   string `json:"department"`
	JobTitle     string `json:"job_title"`
	Location     string `json:"location"`
	ManagerEmail string `json:"manager_email"`
	Phone        string `json:"phone"`
}

// EmployeeEvent is one delivery's content, whatever its source.
type EmployeeEvent struct {
	Type string `json:"type"`
	// EffectiveDate is YYYY-MM-DD; "" means now.
	EffectiveDate string   `json:"effective_date"`
	Employee      Employee `json:"employee"`
	// OccurredAt orders an employee's events (H-1, out-of-order delivery):
	// the body's occurred_at when it has one, else the webhook timestamp.
	OccurredAt time.Time `json:"occurred_at"`
}

// HRIS sources (api.md: generic, and the HRIS payload shapes supported).
const (
	SourceGeneric  = "generic"
	SourceBambooHR = "bamboohr"
)

// Sources lists the supported sources.
var Sources = []string{SourceBambooHR, SourceGeneric}

// ErrUnknownSource names the supported sources.
func ErrUnknownSource(source string) *problem.Problem {
	return problem.New(http.StatusNotFound, "unknown-hris-source", "Unknown HRIS source",
		fmt.Sprintf("%q is not a supported HRIS source; supported: %s", source, strings.Join(Sources, ", ")))
}

// ParseEmployeeEvent reads a delivery body of source into an event; sent
// is the webhook timestamp, used when the body carries no time. A body
// that is not the source's shape is a validation problem naming the field.
func ParseEmployeeEvent(source string, body []byte, sent time.Time) (EmployeeEvent, error) {
	var ev EmployeeEvent
	var err error
	switch source {
	case SourceGeneric:
		ev, err = parseGeneric(body)
	case SourceBambooHR:
		ev, err = parseBambooHR(body)
	default:
		return ev, ErrUnknownSource(source)
	}
	if err != nil {
		return ev, err
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = sent
	}
	ev.OccurredAt = ev.OccurredAt.UTC().Truncate(time.Microsecond)
	return ev, ev.validate()
}

func malformed(detail string) *problem.Problem {
	return problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", detail)
}

func parseGeneric(body []byte) (EmployeeEvent, error) {
	var raw struct {
		Type          string     `json:"type"`
		EffectiveDate string     `json:"effective_date"`
		OccurredAt    *time.Time `json:"occurred_at"`
		Employee      *Employee  `json:"employee"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return EmployeeEvent{}, malformed("the body is not the generic HRIS JSON shape: " + err.Error())
	}
	ev := EmployeeEvent{Type: raw.Type, EffectiveDate: raw.EffectiveDate}
	if raw.Employee != nil {
		ev.Employee = *raw.Employee
	}
	if raw.OccurredAt != nil {
		ev.OccurredAt = *raw.OccurredAt
	}
	return ev, nil
}

// parseBambooHR reads BambooHR's employee webhook: {"employees": [{"id",
// "action" (Created/Updated/Deleted), "changedFields", "fields": {...}}]},
// with the fields the webhook was configured to post (docs/api-notes.md
// has a sample). One delivery carries one employee here; a batch of several
// is refused so that each employee's outcome is its own delivery.
func parseBambooHR(body []byte) (EmployeeEvent, error) {
	var raw struct {
		Employees []struct {
			ID     string            `json:"id"`
			Action string            `json:"action"`
			Time   *time.Time        `json:"timestamp"`
			Fields map[string]string `json:"fields"`
		} `json:"employees"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return EmployeeEvent{}, malformed("the body is not BambooHR's webhook JSON shape: " + err.Error())
	}
	if len(raw.Employees) != 1 {
		return EmployeeEvent{}, problem.Invalid(problem.FieldError{Field: "employees", Detail: "must hold exactly one employee"})
	}
	e := raw.Employees[0]
	f := e.Fields
	ev := EmployeeEvent{Employee: Employee{
		ID: e.ID, Email: f["workEmail"], FirstName: f["firstName"], LastName: f["lastName"],
		Department: f["department"], JobTitle: f["jobTitle"], Location: f["location"],
		ManagerEmail: f["supervisorEmail"], Phone: f["workPhone"],
	}}
	if e.Time != nil {
		ev.OccurredAt = *e.Time
	}
	switch {
	case strings.EqualFold(e.Action, "Created"):
		ev.Type, ev.EffectiveDate = EmployeeHired, f["hireDate"]
	case strings.EqualFold(e.Action, "Deleted"),
		strings.EqualFold(f["status"], "Inactive") || f["terminationDate"] != "":
		ev.Type, ev.EffectiveDate = EmployeeTerminated, f["terminationDate"]
	case strings.EqualFold(e.Action, "Updated"):
		ev.Type = EmployeeUpdated
	default:
		return ev, problem.Invalid(problem.FieldError{Field: "employees[0].action", Detail: "must be Created, Updated or Deleted"})
	}
	return ev, nil
}

func (ev *EmployeeEvent) validate() error {
	e := &ev.Employee
	for _, s := range []*string{&e.ID, &e.Email, &e.FirstName, &e.LastName, &e.Department, &e.JobTitle, &e.Location, &e.ManagerEmail, &e.Phone} {
		*s = strings.TrimSpace(*s)
	}
	var errs []problem.FieldError
	switch ev.Type {
	case EmployeeHired, EmployeeUpdated, EmployeeTerminated:
	default:
		errs = append(errs, problem.FieldError{Field: "type", Detail: "must be employee.hired, employee.updated or employee.terminated"})
	}
	if e.ID == "" || len(e.ID) > 200 {
		errs = append(errs, problem.FieldError{Field: "employee.id", Detail: "is required, at most 200 characters"})
	}
	if ev.Type == EmployeeHired && !ValidEmail(e.Email) {
		errs = append(errs, problem.FieldError{Field: "employee.email", Detail: "must be an email address"})
	}
	if ev.EffectiveDate != "" {
		if _, err := time.Parse(time.DateOnly, ev.EffectiveDate); err != nil {
			errs = append(errs, problem.FieldError{Field: "effective_date", Detail: "must be a date, YYYY-MM-DD"})
		}
	}
	for _, f := range []struct{ name, v string }{{"employee.first_name", e.FirstName}, {"employee.last_name", e.LastName},
		{"employee.department", e.Department}, {"employee.job_title", e.JobTitle}, {"employee.location", e.Location},
		{"employee.phone", e.Phone}, {"employee.manager_email", e.ManagerEmail}} {
		if len(f.v) > 200 {
			errs = append(errs, problem.FieldError{Field: f.name, Detail: "is longer than 200 characters"})
		}
	}
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

// Mapping kinds (api.md "HRIS mapping").
const (
	MapTechnician = "technician"
	MapEndUser    = "end_user"
	MapIgnore     = "ignore"
)

// Condition matches an employee; empty fields match anything; values
// compare case-insensitively (api.md).
type Condition struct {
	Department string `json:"department,omitempty"`
	JobTitle   string `json:"job_title,omitempty"`
	Location   string `json:"location,omitempty"`
}

// Target is what a matching employee becomes.
type Target struct {
	Kind   string `json:"kind"`
	Role   string `json:"role,omitempty"`
	SiteID string `json:"site_id,omitempty"`
}

// Rule is one mapping rule.
type Rule struct {
	When Condition `json:"when"`
	Then Target    `json:"then"`
}

// Mapping is an account's HRIS mapping (H-1).
type Mapping struct {
	Rules             []Rule `json:"rules"`
	Default           Target `json:"default"`
	AllowSeatPurchase bool   `json:"allow_seat_purchase"`
}

// NoMapping is the mapping of an account that set none: every employee is
// ignored, and the delivery says so (api.md).
var NoMapping = Mapping{Rules: []Rule{}, Default: Target{Kind: MapIgnore}}

// Validate checks a mapping before it is stored.
func (m *Mapping) Validate() *problem.Problem {
	var errs []problem.FieldError
	if m.Rules == nil {
		m.Rules = []Rule{}
	}
	if len(m.Rules) > 200 {
		errs = append(errs, problem.FieldError{Field: "rules", Detail: "at most 200 rules"})
	}
	check := func(field string, t *Target) {
		t.Role, t.SiteID = strings.TrimSpace(t.Role), strings.TrimSpace(t.SiteID)
		switch t.Kind {
		case MapTechnician:
			if t.SiteID != "" {
				errs = append(errs, problem.FieldError{Field: field + ".site_id", Detail: "only for end_user"})
			}
		case MapEndUser:
			if t.SiteID == "" {
				errs = append(errs, problem.FieldError{Field: field + ".site_id", Detail: "is required for end_user"})
			}
			if t.Role != "" {
				errs = append(errs, problem.FieldError{Field: field + ".role", Detail: "end users never get a role (I-10)"})
			}
		case MapIgnore:
			if t.Role != "" || t.SiteID != "" {
				errs = append(errs, problem.FieldError{Field: field, Detail: "ignore takes no role or site_id"})
			}
		default:
			errs = append(errs, problem.FieldError{Field: field + ".kind", Detail: "must be technician, end_user or ignore"})
		}
	}
	for i := range m.Rules {
		r := &m.Rules[i]
		r.When.Department, r.When.JobTitle, r.When.Location = strings.TrimSpace(r.When.Department), strings.TrimSpace(r.When.JobTitle), strings.TrimSpace(r.When.Location)
		if r.When == (Condition{}) {
			errs = append(errs, problem.FieldError{Field: fmt.Sprintf("rules[%d].when", i), Detail: "needs at least one of department, job_title, location (use default for everyone else)"})
		}
		check(fmt.Sprintf("rules[%d].then", i), &r.Then)
	}
	if m.Default.Kind == "" {
		m.Default.Kind = MapIgnore
	}
	check("default", &m.Default)
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

// Decide returns the target of an employee: the first matching rule's, else
// the default, and which rule decided (-1: the default).
func (m Mapping) Decide(e Employee) (Target, int) {
	eq := func(want, got string) bool { return want == "" || strings.EqualFold(want, got) }
	for i, r := range m.Rules {
		if eq(r.When.Department, e.Department) && eq(r.When.JobTitle, e.JobTitle) && eq(r.When.Location, e.Location) {
			return r.Then, i
		}
	}
	return m.Default, -1
}

// Delivery outcomes (GET …/hris/deliveries).
const (
	DeliveryPending   = "pending"
	DeliveryApplied   = "applied"
	DeliverySkipped   = "skipped"
	DeliveryHeld      = "held"
	DeliveryScheduled = "scheduled"
	DeliveryFailed    = "failed"
)

// EffectiveNow reports whether an effective date (YYYY-MM-DD, "" for now)
// has come by today (UTC).
func EffectiveNow(date string, now time.Time) bool {
	return date == "" || date <= now.UTC().Format(time.DateOnly)
}
