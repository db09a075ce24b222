package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
)

func (c *Console) directoryRoutes(r chi.Router) {
	r.Get("/directory", c.directoryPage)
	r.Post("/directory/mapping", c.saveMapping)
	r.Post("/directory/secret", c.newSecret)
	r.Post("/directory/deliveries/{id}/redrive", c.redrive)
}

// Delivery is an HRIS delivery and its outcome (H-1, H-2).
type Delivery struct {
	ID            string          `json:"id"`
	Source        string          `json:"source"`
	Type          string          `json:"type"`
	EmployeeID    string          `json:"employee_id"`
	EffectiveDate string          `json:"effective_date"`
	Status        string          `json:"status"`
	Reason        string          `json:"reason"`
	Problem       json.RawMessage `json:"problem"`
	TechnicianID  string          `json:"technician_id"`
	EndUserID     string          `json:"end_user_id"`
	Attempts      int             `json:"attempts"`
	ReceivedAt    time.Time       `json:"received_at"`
}

type directoryView struct {
	Deliveries []Delivery
	Next       string
	Status     string
	// Mapping is the rules as indented JSON, for the editor.
	Mapping string
	// Secret is a new HRIS secret, shown once.
	Secret string
}

func (c *Console) loadDirectory(r *http.Request) (directoryView, Answer) {
	s := SessionFrom(r)
	base := "/v1/accounts/" + url.PathEscape(s.AccountID) + "/hris"
	v := directoryView{Status: r.URL.Query().Get("status")}
	p := url.Values{"limit": {"50"}}
	if v.Status != "" {
		p.Set("status", v.Status)
	}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		p.Set("cursor", cur)
	}
	a := c.API(r.Context(), s, "GET", base+"/deliveries?"+p.Encode(), nil)
	if !a.OK() {
		return v, a
	}
	var l list[Delivery]
	_ = a.Decode(&l)
	v.Deliveries = l.Data
	if l.NextCursor != nil {
		v.Next = *l.NextCursor
	}
	m := c.API(r.Context(), s, "GET", base+"/mapping", nil)
	if !m.OK() {
		return v, m
	}
	var buf bytes.Buffer
	if json.Indent(&buf, m.Body, "", "  ") == nil {
		v.Mapping = buf.String()
	}
	return v, a
}

// directoryPage: HRIS deliveries with their outcomes (filterable, paged,
// each failed or held one re-drivable), the mapping rules editor and the
// HRIS signing secret.
func (c *Console) directoryPage(w http.ResponseWriter, r *http.Request) {
	v, a := c.loadDirectory(r)
	c.Render(w, r, status(a), "directory", View{Title: "Directory sync", Active: "/directory", Problem: a.Problem, Data: v})
}

// saveMapping replaces the mapping rules (PUT …/hris/mapping) with the
// editor's JSON; a refusal (422 naming the bad rule) keeps the text.
func (c *Console) saveMapping(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	s := SessionFrom(r)
	text := r.PostFormValue("mapping")
	var a Answer
	if !json.Valid([]byte(text)) {
		a = Answer{Status: http.StatusUnprocessableEntity, Problem: &Problem{Status: http.StatusUnprocessableEntity,
			Title: "The mapping is not JSON", Detail: "the rules must be a JSON object: {\"rules\": [...], \"default\": {...}}"}}
	} else {
		a = c.APIRaw(r.Context(), s, "PUT", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/hris/mapping", "application/json", []byte(text))
	}
	if a.OK() {
		redirect(w, r, "/directory", "Mapping saved")
		return
	}
	v, _ := c.loadDirectory(r)
	v.Mapping = text
	c.Render(w, r, status(a), "directory", View{Title: "Directory sync", Active: "/directory", Problem: a.Problem, Data: v})
}

// newSecret creates an HRIS signing secret (the previous one stays valid
// for 24 hours) and shows it once; the page is not cached.
func (c *Console) newSecret(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	s := SessionFrom(r)
	a := c.API(r.Context(), s, "POST", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/hris/secrets", map[string]any{},
		"Idempotency-Key", r.PostFormValue("idempotency_key"))
	v, _ := c.loadDirectory(r)
	if a.OK() {
		var res struct {
			Secret string `json:"secret"`
		}
		_ = a.Decode(&res)
		v.Secret = res.Secret
	}
	c.Render(w, r, status(a), "directory", View{Title: "Directory sync", Active: "/directory", Problem: a.Problem, Data: v})
}

func (c *Console) redrive(w http.ResponseWriter, r *http.Request) {
	s := SessionFrom(r)
	a := c.API(r.Context(), s, "POST", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/hris/deliveries/"+url.PathEscape(chi.URLParam(r, "id"))+"/redrive", map[string]any{})
	if a.OK() {
		redirect(w, r, "/directory", "Delivery re-driven")
		return
	}
	v, _ := c.loadDirectory(r)
	c.Render(w, r, status(a), "directory", View{Title: "Directory sync", Active: "/directory", Problem: a.Problem, Data: v})
}
