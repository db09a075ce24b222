package console

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
)

func (c *Console) auditRoutes(r chi.Router) {
	r.Get("/audit", c.auditPage)
	r.Get("/audit/export", c.auditExport)
	r.Get("/audit/stream", c.auditStream)
}

// Record is an audit record (api.md, "Shapes").
type Record struct {
	Sequence int64  `json:"sequence"`
	ID       string `json:"id"`
	Action   string `json:"action"`
	Actor    struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"actor"`
	Target struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
	Time string          `json:"time"`
	Data json.RawMessage `json:"data"`
}

type auditView struct {
	Filter  url.Values
	Query   string
	Records []Record
	Next    string
	Verify  *struct {
		OK               bool   `json:"ok"`
		Records          int64  `json:"records"`
		FirstBadSequence *int64 `json:"first_bad_sequence"`
	}
	VerifyProblem *Problem
	// Names shows technicians by name instead of id.
	Names map[string]string
}

// auditFilters are the list's filters, passed through to the API.
var auditFilters = []string{"action", "actor", "target", "since", "until"}

func auditQuery(r *http.Request) url.Values {
	p := url.Values{}
	for _, f := range auditFilters {
		if v := strings.TrimSpace(r.URL.Query().Get(f)); v != "" {
			p.Set(f, v)
		}
	}
	return p
}

// auditPage: the filtered log a page at a time, the chain's verification
// (A-2), export links, and the live tail (A-4) that console.js feeds from
// /audit/stream.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	s := SessionFrom(r)
	f := auditQuery(r)
	v := auditView{Filter: f, Query: f.Encode()}
	p := url.Values{}
	for k, vs := range f {
		p[k] = vs
	}
	p.Set("limit", "50")
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		p.Set("cursor", cur)
	}
	base := "/v1/accounts/" + url.PathEscape(s.AccountID) + "/audit"
	a := c.API(r.Context(), s, "GET", base+"?"+p.Encode(), nil)
	if !a.OK() {
		c.Render(w, r, status(a), "audit", View{Title: "Audit log", Active: "/audit", Problem: a.Problem, Data: v})
		return
	}
	var l list[Record]
	if err := a.Decode(&l); err != nil {
		c.Render(w, r, http.StatusBadGateway, "audit", View{Title: "Audit log", Active: "/audit", Problem: failed(err).Problem, Data: v})
		return
	}
	v.Records = l.Data
	v.Names = c.technicianNames(r)
	if l.NextCursor != nil {
		v.Next = *l.NextCursor
	}
	if va := c.API(r.Context(), s, "GET", base+"/verify", nil); va.OK() {
		_ = va.Decode(&v.Verify)
	} else {
		v.VerifyProblem = va.Problem
	}
	c.Render(w, r, http.StatusOK, "audit", View{Title: "Audit log", Active: "/audit", Data: v})
}

// auditExport streams GET …/audit?format=jsonl|csv through, so that the
// browser downloads it without ever holding the token.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "jsonl" {
		http.Error(w, "format must be csv or jsonl", http.StatusBadRequest)
		return
	}
	p := auditQuery(r)
	p.Set("format", format)
	c.proxy(w, r, "/audit?"+p.Encode(), "attachment; filename=audit."+format, false)
}

// auditStream relays the API's server-sent events (GET …/audit/stream) to
// the page's EventSource, flushing each event as it comes.
func (c *Console) auditStream(w http.ResponseWriter, r *http.Request) {
	p := url.Values{}
	if a := r.URL.Query().Get("action"); a != "" {
		p.Set("action", a)
	}
	c.proxy(w, r, "/audit/stream?"+p.Encode(), "", true)
}

// proxy relays an account route's answer (status, type, body) as it
// streams, with the session's token. For server-sent events (sse) it drops
// the "event:" lines: the API names each event after its action, and a
// browser's EventSource has no wildcard listener, so the page gets every
// record as a plain message (the record holds its action).
func (c *Console) proxy(w http.ResponseWriter, r *http.Request, path, disposition string, sse bool) {
	s := SessionFrom(r)
	req, err := http.NewRequestWithContext(r.Context(), "GET", strings.TrimSuffix(c.cfg.API, "/")+"/v1/accounts/"+url.PathEscape(s.AccountID)+path, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	res, err := c.stream.Do(req)
	if err != nil {
		http.Error(w, "the API did not answer", http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
	w.Header().Set("Cache-Control", "no-store")
	if disposition != "" && res.StatusCode == http.StatusOK {
		w.Header().Set("Content-Disposition", disposition)
	}
	w.WriteHeader(res.StatusCode)
	rc := http.NewResponseController(w)
	if !sse || res.StatusCode != http.StatusOK {
		buf := make([]byte, 32<<10)
		for {
			n, err := res.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				_ = rc.Flush()
			}
			if err != nil {
				return
			}
		}
	}
	br := bufio.NewReaderSize(res.Body, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" && !strings.HasPrefix(line, "event:") {
			if _, werr := io.WriteString(w, line); werr != nil {
				return
			}
			if line == "\n" {
				_ = rc.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
