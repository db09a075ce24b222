package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/rpc"
	"roster.dev/pkg/svc/svctest"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
)

// A request-reply that nobody answers, or that is answered too late, is a
// 503 service-unavailable with Retry-After, not a 500: the client may
// retry. Anything else unexpected stays a 500 that reveals nothing.
func TestErrorAnswersTimeoutsWith503(t *testing.T) {
	w := svctest.NewNATS(t)
	// A seatbilling that takes its time.
	sub, err := w.NC.Subscribe(rpc.ReserveSeat, func(m *nats.Msg) { time.Sleep(300 * time.Millisecond); _ = m.Respond(nil) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	call := func(subject string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := rpc.Call(ctx, w.NC, subject, &seatbillingv1.ReserveSeatRequest{AccountId: "acc_x"}, &seatbillingv1.ReserveSeatReply{})
		return fmt.Errorf("reserve a seat: %w", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		{"answered too late", call(rpc.ReserveSeat, 50*time.Millisecond), 503, "service-unavailable"},
		{"nobody serves it", call("roster.rpc.seatbilling.nobody", time.Second), 503, "service-unavailable"},
		{"anything else", errors.New("disk on fire"), 500, "internal"},
	} {
		rec := httptest.NewRecorder()
		httpx.Error(rec, httptest.NewRequest(http.MethodPost, "/v1/accounts/acc_x/technicians", nil), log, c.err)
		var p struct{ Type, Detail string }
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		if rec.Code != c.status || p.Type != "https://roster.dev/problems/"+c.typ {
			t.Errorf("%s (%v): %d %s", c.name, c.err, rec.Code, rec.Body)
		}
		if retry := rec.Header().Get("Retry-After"); (c.status == 503) != (retry != "") {
			t.Errorf("%s: Retry-After %q", c.name, retry)
		}
	}
}
