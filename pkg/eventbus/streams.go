package eventbus

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Stream names and the subjects they hold (docs/events.md). Stream names
// cannot hold '.', '*' or '>', so they are not derived from subjects.
const (
	StreamAudit      = "ROSTER_AUDIT"
	StreamDeadLetter = "ROSTER_DEADLETTER"
	// StreamOffboarding holds identity's offboarding instructions to the
	// systems that own tickets, reports, assets and tokens (O-4).
	StreamOffboarding = "ROSTER_OFFBOARDING"
	// StreamOwnership holds what owning systems publish about the items
	// they own, for identity's ownership registry (O-4).
	StreamOwnership = "ROSTER_OWNERSHIP"

	// AuditSubjectPrefix starts the public audit stream's subjects:
	// roster.audit.<account_id>.<action>.
	AuditSubjectPrefix = "roster.audit."
	// OffboardingSubjectPrefix starts the public offboarding instructions'
	// subjects: roster.offboarding.<account_id>.<kind> (api.md), so that a
	// ticketing system subscribes to roster.offboarding.*.ticket only.
	OffboardingSubjectPrefix = "roster.offboarding."
	// OwnershipSubjectPrefix starts the subjects owning systems publish
	// ownership on: roster.ownership.<account_id>.<kind> (docs/events.md).
	OwnershipSubjectPrefix = "roster.ownership."
	// DeadLetterPrefix starts dead-letter subjects:
	// roster.deadletter.<consumer>.
	DeadLetterPrefix = "roster.deadletter."
)

// Services that publish internal events, each on its own stream.
var EventServices = []string{"identity", "seatbilling", "rolepolicy"}

// EventStream is the stream of a service's internal events.
func EventStream(service string) string { return "ROSTER_" + strings.ToUpper(service) }

// EventSubjects is the subject filter of a service's internal events.
func EventSubjects(service string) string { return "roster.events." + service + ".>" }

// StreamOptions tune the streams for the deployment.
type StreamOptions struct {
	// Replicas is the stream replica count: 1 embedded, 3 in a cluster.
	Replicas int
	// DuplicateWindow is how long the stream remembers Nats-Msg-Id values to
	// drop republished events (default 10 minutes).
	DuplicateWindow time.Duration
	// AuditMaxAge is the retention of the public audit stream; zero
	// keeps records until the stream's limits say otherwise.
	AuditMaxAge time.Duration
	// AuditMaxBytes caps the public audit stream's size; the oldest records
	// go first. Zero: no cap.
	AuditMaxBytes int64
}

// EnsureStreams creates or updates every Roster stream.
func EnsureStreams(js nats.JetStreamManager, o StreamOptions) error {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 10 * time.Minute
	}
	cfgs := []*nats.StreamConfig{}
	for _, s := range EventServices {
		cfgs = append(cfgs, &nats.StreamConfig{
			Name:        EventStream(s),
			Description: "Roster internal events of the " + s + " service (protobuf)",
			Subjects:    []string{EventSubjects(s)},
			Retention:   nats.LimitsPolicy,
			MaxAge:      7 * 24 * time.Hour,
			Storage:     nats.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
		})
	}
	cfgs = append(cfgs,
		&nats.StreamConfig{
			Name:        StreamAudit,
			Description: "Roster public audit stream: roster.audit.<account_id>.<action>, CloudEvents JSON",
			Subjects:    []string{AuditSubjectPrefix + ">"},
			Retention:   nats.LimitsPolicy,
			MaxAge:      o.AuditMaxAge,
			MaxBytes:    cmp.Or(o.AuditMaxBytes, -1),
			Discard:     nats.DiscardOld,
			Storage:     nats.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
		},
		&nats.StreamConfig{
			Name:        StreamOffboarding,
			Description: "Roster offboarding instructions: roster.offboarding.<account_id>.<kind>, CloudEvents JSON",
			Subjects:    []string{OffboardingSubjectPrefix + ">"},
			Retention:   nats.LimitsPolicy,
			MaxAge:      30 * 24 * time.Hour,
			Storage:     nats.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
		},
		&nats.StreamConfig{
			Name:        StreamOwnership,
			Description: "Ownership published by owning systems: roster.ownership.<account_id>.<kind>, JSON",
			Subjects:    []string{OwnershipSubjectPrefix + ">"},
			Retention:   nats.LimitsPolicy,
			MaxAge:      7 * 24 * time.Hour,
			Storage:     nats.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
		},
		&nats.StreamConfig{
			Name:        StreamDeadLetter,
			Description: "Roster events that a consumer failed to apply after its retries",
			Subjects:    []string{DeadLetterPrefix + ">"},
			Retention:   nats.LimitsPolicy,
			MaxAge:      30 * 24 * time.Hour,
			Storage:     nats.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
		},
	)
	for _, cfg := range cfgs {
		if _, err := js.StreamInfo(cfg.Name); errors.Is(err, nats.ErrStreamNotFound) {
			if _, err := js.AddStream(cfg); err != nil && !errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
				return fmt.Errorf("eventbus: create stream %s: %w", cfg.Name, err)
			}
		} else if err != nil {
			return fmt.Errorf("eventbus: stream %s: %w", cfg.Name, err)
		} else if _, err := js.UpdateStream(cfg); err != nil {
			return fmt.Errorf("eventbus: update stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
