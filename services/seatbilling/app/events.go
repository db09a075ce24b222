package app

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "roster.dev/proto/roster/common/v1"
)

// meta is the EventMeta of an event a use case emits at now, its clock's
// time when it changed the state: occurred_at is that moment, not the
// outbox's. seatbilling's stream thereby journals, account by account and
// in commit order, each change with its time, which is what the replay of
// the service's inputs runs each one at (replay_test.go, docs/events.md).
func meta(now time.Time) *commonv1.EventMeta {
	return &commonv1.EventMeta{OccurredAt: timestamppb.New(now)}
}
