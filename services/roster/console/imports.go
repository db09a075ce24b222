package console

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

func (c *Console) importRoutes(r chi.Router) {
	r.Get("/imports", c.importsPage)
	r.Post("/imports", c.startImport)
	r.Get("/imports/{id}", c.importPage)
}

// maxUpload is the largest CSV the console relays (the API takes 20 MiB).
const maxUpload = 21 << 20

// Import is the API's CSV import and its progress (H-3).
type Import struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Rows   struct {
		Total int `json:"total"`
		Done  int `json:"done"`
	} `json:"rows"`
	Created    int        `json:"created"`
	Updated    int        `json:"updated"`
	Skipped    int        `json:"skipped"`
	Refused    int        `json:"refused"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// ImportRow is one row's outcome in the report.
type ImportRow struct {
	Row     int    `json:"row"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	ID      string `json:"id"`
}

type importView struct {
	Imp     Import
	Percent int
	Rows    []ImportRow
	Next    string
	Outcome string
}

func (c *Console) importsPage(w http.ResponseWriter, r *http.Request) {
	c.Render(w, r, http.StatusOK, "imports", View{Title: "Imports", Active: "/imports"})
}

// startImport relays the uploaded CSV to POST …/imports (text/csv, with
// kind, confirm_seat_purchase and send_welcome_mail) and opens its
// progress page.
func (c *Console) startImport(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload+1<<20)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		c.Render(w, r, http.StatusBadRequest, "imports", View{Title: "Imports", Active: "/imports",
			Problem: &Problem{Title: "The upload cannot be read", Detail: err.Error()}})
		return
	}
	f, _, err := r.FormFile("file")
	if err != nil {
		c.Render(w, r, http.StatusUnprocessableEntity, "imports", View{Title: "Imports", Active: "/imports",
			Problem: &Problem{Title: "No file", Detail: "choose the CSV file to import"}})
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUpload))
	if err != nil {
		c.Render(w, r, http.StatusBadRequest, "imports", View{Title: "Imports", Active: "/imports",
			Problem: &Problem{Title: "The upload cannot be read", Detail: err.Error()}})
		return
	}
	s := SessionFrom(r)
	q := url.Values{"kind": {r.FormValue("kind")},
		"confirm_seat_purchase": {strconv.FormatBool(r.FormValue("confirm_seat_purchase") == "true")},
		"send_welcome_mail":     {strconv.FormatBool(r.FormValue("send_welcome_mail") == "true")}}
	a := c.APIRaw(r.Context(), s, "POST", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/imports?"+q.Encode(), "text/csv", data,
		"Idempotency-Key", r.FormValue("idempotency_key"))
	if !a.OK() {
		c.Render(w, r, status(a), "imports", View{Title: "Imports", Active: "/imports", Problem: a.Problem})
		return
	}
	var imp Import
	if err := a.Decode(&imp); err != nil || imp.ID == "" {
		c.Render(w, r, http.StatusBadGateway, "imports", View{Title: "Imports", Active: "/imports",
			Problem: &Problem{Title: "Unexpected answer", Detail: "the API's answer named no import"}})
		return
	}
	redirect(w, r, "/imports/"+url.PathEscape(imp.ID), "")
}

// importPage shows the import's progress (the page polls itself every
// second through htmx while the import runs) and, a page at a time, the
// per-row report, filterable by outcome.
func (c *Console) importPage(w http.ResponseWriter, r *http.Request) {
	s := SessionFrom(r)
	base := "/v1/accounts/" + url.PathEscape(s.AccountID) + "/imports/" + url.PathEscape(chi.URLParam(r, "id"))
	var v importView
	a := c.API(r.Context(), s, "GET", base, nil)
	if !a.OK() {
		c.Render(w, r, status(a), "import", View{Title: "Import", Active: "/imports", Problem: a.Problem, Data: v})
		return
	}
	if err := a.Decode(&v.Imp); err != nil {
		c.Render(w, r, http.StatusBadGateway, "import", View{Title: "Import", Active: "/imports", Problem: failed(err).Problem, Data: v})
		return
	}
	if v.Imp.Rows.Total > 0 {
		v.Percent = v.Imp.Rows.Done * 100 / v.Imp.Rows.Total
	} else if v.Imp.Status == "done" {
		v.Percent = 100
	}
	v.Outcome = r.URL.Query().Get("outcome")
	p := url.Values{"limit": {"50"}}
	if v.Outcome != "" {
		p.Set("outcome", v.Outcome)
	}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		p.Set("cursor", cur)
	}
	var problem *Problem
	if ra := c.API(r.Context(), s, "GET", base+"/rows?"+p.Encode(), nil); ra.OK() {
		var l list[ImportRow]
		_ = ra.Decode(&l)
		v.Rows = l.Data
		if l.NextCursor != nil {
			v.Next = *l.NextCursor
		}
	} else {
		problem = ra.Problem
	}
	c.Render(w, r, http.StatusOK, "import", View{Title: "Import", Active: "/imports", Problem: problem, Data: v})
}
