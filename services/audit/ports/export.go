package ports

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
)

// CSVHeader is the first line of a CSV export (docs/audit.md).
var CSVHeader = []string{"sequence", "id", "account_id", "action", "actor_type", "actor_id", "target_type", "target_id",
	"time", "correlation_id", "source_address", "data", "prev_hash", "hash"}

// CheckpointLine is a signed checkpoint's line in a JSON Lines export: an
// object with the single member "checkpoint", right after the record it
// covers; every other line is a record.
type CheckpointLine struct {
	Checkpoint domain.Checkpoint `json:"checkpoint"`
}

// export streams the records f selects as JSON Lines or CSV (A-3), a page
// at a time, flushing as it goes: nothing is held in memory but a page. A
// whole-chain JSON Lines export carries the chain's checkpoints, the last
// one signed for the export, and verifies offline (`roster audit verify
// --file`). An error after the first byte cannot become a problem any more:
// the export then ends with a line saying so, which no parser takes for a
// record.
func (h *HTTP) export(w http.ResponseWriter, r *http.Request, f app.Filter, format string) {
	ctx := r.Context()
	name := "audit-" + f.AccountID + "." + format
	bw := bufio.NewWriterSize(w, 64<<10)
	var rec func(domain.Record) error
	var cp func(domain.Checkpoint) error
	var cw *csv.Writer
	switch format {
	case "jsonl":
		w.Header().Set("Content-Type", "application/jsonl")
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		rec = func(x domain.Record) error { return enc.Encode(x) }
		cp = func(c domain.Checkpoint) error { return enc.Encode(CheckpointLine{c}) }
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw = csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return
		}
		rec = func(x domain.Record) error {
			return cw.Write([]string{strconv.FormatInt(x.Sequence, 10), x.ID, x.AccountID, x.Action, x.Actor.Type, x.Actor.ID,
				x.Target.Type, x.Target.ID, x.Time.Format(time.RFC3339Nano), x.CorrelationID, x.SourceAddress, string(x.Data),
				x.PrevHash, x.Hash})
		}
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	n := 0
	flush := func() error {
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		return nil
	}
	count := func(write func() error) error {
		if err := write(); err != nil {
			return err
		}
		if n++; n%exportFlushEvery == 0 {
			return flush()
		}
		return nil
	}
	err := h.App.Export(ctx, f,
		func(x domain.Record) error { return count(func() error { return rec(x) }) },
		func(c domain.Checkpoint) error {
			if cp == nil {
				return nil
			}
			return count(func() error { return cp(c) })
		})
	if err != nil && ctx.Err() == nil {
		h.Log.ErrorContext(ctx, "audit export failed", "account_id", f.AccountID, "err", err)
		if cw != nil {
			cw.Flush()
		}
		fmt.Fprintf(bw, "#error: the export stopped early: %s\n", "internal error; see the server log")
	}
	_ = flush()
}

// exportFlushEvery is how many lines go out per flush.
const exportFlushEvery = 500

// KeysResponse is GET /v1/audit/keys.
type KeysResponse struct {
	Keys []KeyJSON `json:"keys"`
}

// KeyJSON is one checkpoint key.
type KeyJSON struct {
	ID        string    `json:"id"`
	Algorithm string    `json:"algorithm"`
	PublicKey string    `json:"public_key"`
	PEM       string    `json:"pem"`
	CreatedAt time.Time `json:"created_at"`
}

// keys: GET /v1/audit/keys — every key that ever signed a checkpoint,
// unauthenticated (they are public keys).
func (h *HTTP) keys(w http.ResponseWriter, r *http.Request) {
	ks, err := h.App.Keys(r.Context())
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	res := KeysResponse{Keys: []KeyJSON{}}
	for _, k := range ks {
		res.Keys = append(res.Keys, KeyJSON{ID: k.ID, Algorithm: "Ed25519", PublicKey: base64.StdEncoding.EncodeToString(k.Key),
			PEM: domain.EncodePublicKey(k.Key), CreatedAt: k.CreatedAt})
	}
	httpx.JSON(w, http.StatusOK, res)
}

// CheckpointsResponse is a page of checkpoints.
type CheckpointsResponse struct {
	Data       []domain.Checkpoint `json:"data"`
	NextCursor *string             `json:"next_cursor"`
}

// checkpoints: GET /v1/accounts/{acc}/audit/checkpoints?limit=&cursor=.
func (h *HTTP) checkpoints(w http.ResponseWriter, r *http.Request) {
	limit, after, errs := httpx.PageParams(r, cursorPrefix)
	var seq int64
	if after != "" {
		var err error
		if seq, err = strconv.ParseInt(after, 10, 64); err != nil || seq < 1 {
			errs = append(errs, problem.FieldError{Field: "cursor", Detail: "is not a cursor this API returned"})
		}
	}
	if len(errs) > 0 {
		problem.Write(w, problem.Invalid(errs...))
		return
	}
	if limit <= 0 {
		limit = app.DefaultLimit
	}
	limit = min(limit, app.MaxLimit)
	cps, err := h.App.Checkpoints.ListCheckpoints(r.Context(), chi.URLParam(r, "acc"), seq, 1<<62, limit+1)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	res := CheckpointsResponse{Data: cps}
	if len(cps) > limit {
		res.Data = cps[:limit]
		c := EncodeCursor(cps[limit-1].Sequence)
		res.NextCursor = &c
	}
	if res.Data == nil {
		res.Data = []domain.Checkpoint{}
	}
	httpx.JSON(w, http.StatusOK, res)
}

var (
	actionPattern  = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*$`)
	accountPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)
)

// tail: GET /v1/accounts/{acc}/audit/stream?action= and, for the operator,
// GET /v1/audit/stream?action= — records as they are published on the
// public audit stream, as server-sent events: `id` is the record id,
// `event` its action, `data` the record. It reads the stream itself, as
// any outside subscriber would, starting with the next record.
func (h *HTTP) tail(w http.ResponseWriter, r *http.Request) {
	acc := chi.URLParam(r, "acc")
	action := r.URL.Query().Get("action")
	if action != "" && !actionPattern.MatchString(action) {
		problem.Write(w, problem.Invalid(problem.FieldError{Field: "action", Detail: "must be an action such as technician.created"}))
		return
	}
	subject := eventbus.AuditSubjectPrefix
	switch {
	case acc == "":
		subject += "*."
	case !accountPattern.MatchString(acc):
		problem.Write(w, problem.New(http.StatusNotFound, "not-found", "No such account", ""))
		return
	default:
		subject += acc + "."
	}
	if action == "" {
		subject += ">"
	} else {
		subject += action
	}
	nc, err := h.streamConn()
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	js, err := nc.JetStream()
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	msgs := make(chan *nats.Msg, 256)
	sub, err := js.ChanSubscribe(subject, msgs, nats.OrderedConsumer(), nats.DeliverNew(), nats.BindStream(eventbus.StreamAudit))
	if err != nil {
		httpx.Error(w, r, h.Log, fmt.Errorf("tail %s: %w", subject, err))
		return
	}
	defer sub.Unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	// A comment line tells the client the tail is listening.
	fmt.Fprint(w, ": listening on "+subject+"\n\n")
	if fl != nil {
		fl.Flush()
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
		case m := <-msgs:
			fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", m.Header.Get("ce-id"),
				strings.TrimPrefix(m.Header.Get("ce-type"), "dev.roster.audit."), m.Data)
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

func (h *HTTP) streamConn() (*nats.Conn, error) {
	h.connOnce.Do(func() {
		if h.Connect == nil {
			h.connErr = fmt.Errorf("audit: no NATS connection for the live tail")
			return
		}
		h.conn, h.connErr = h.Connect("audit-tail")
	})
	return h.conn, h.connErr
}
