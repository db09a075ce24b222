// Package domain holds the audit service's rules: the audit record, the
// action and target every event maps to, and the per-account hash
// chain that makes records tamper-evident. Pure Go: no I/O, no
// transport, no storage.
package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Actor types: who caused a change.
const (
	ActorTechnician = "technician"
	ActorOperator   = "operator"
	ActorAPIToken   = "api_token"
	ActorHRIS       = "hris"
	ActorSCIM       = "scim"
	ActorSystem     = "system"
)

// IDPrefix starts every audit record id.
const IDPrefix = "aud_"

// Actor is who caused the change; ID is empty for the operator and the
// system.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Target is what the change was made to.
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Record is one audit record as clients read it (api.md, "Audit record").
// The JSON encoding, without "hash", is what the chain hash covers.
type Record struct {
	// Sequence is the record's place in its account's chain: 1, 2, 3 …
	Sequence  int64  `json:"sequence"`
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Action    string `json:"action"`
	Actor     Actor  `json:"actor"`
	Target    Target `json:"target"`
	// Time is when the change happened (the event's occurred_at), UTC, to the
	// microsecond: what the store keeps, so the hash survives a round trip.
	Time          time.Time `json:"time"`
	CorrelationID string    `json:"correlation_id"`
	// Data is the event's own fields (snake_case), a JSON object.
	Data          json.RawMessage `json:"data"`
	SourceAddress string          `json:"source_address"`
	// PrevHash is the hash of the previous record of the account; empty for
	// the first one.
	PrevHash string `json:"prev_hash"`
	// Hash is the lower-case hex SHA-256 of the record's canonical form
	// (Canonical).
	Hash string `json:"hash"`
}

// Entry is what one event says happened, before it takes its place in a
// chain.
type Entry struct {
	EventID string
	// EventType is the event's protobuf full name, e.g.
	// roster.identity.v1.TechnicianCreated.
	EventType     string
	AccountID     string
	OccurredAt    time.Time
	Actor         Actor
	SourceAddress string
	CorrelationID string
	// Data is the event's fields as a JSON object, without its meta.
	Data json.RawMessage
}

// Errors of NewRecord.
var (
	ErrNoEventID   = errors.New("audit: the event carries no event id")
	ErrDataInvalid = errors.New("audit: event data is not a JSON object")
)

// NewRecord turns an entry into an unsealed record (no sequence, no
// hashes): its id, action and target follow from the event.
func NewRecord(e Entry) (Record, error) {
	if e.EventID == "" {
		return Record{}, ErrNoEventID
	}
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return Record{}, fmt.Errorf("%w: %s", ErrDataInvalid, e.EventType)
	}
	actor := e.Actor
	if actor.Type == "" {
		actor.Type = ActorSystem
	}
	return Record{
		// The id follows from the event id, so the same event always makes
		// the same record id (and the same Nats-Msg-Id on the audit stream).
		ID:            IDPrefix + e.EventID,
		AccountID:     e.AccountID,
		Action:        ActionOf(e.EventType),
		Actor:         actor,
		Target:        TargetOf(e.EventType, e.AccountID, fields),
		Time:          e.OccurredAt.UTC().Truncate(time.Microsecond),
		CorrelationID: e.CorrelationID,
		Data:          data,
		SourceAddress: e.SourceAddress,
	}, nil
}
