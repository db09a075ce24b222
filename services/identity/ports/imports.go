package ports

import (
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// importRoutes mounts CSV import (H-3).
func (h *DirectoryHTTP) importRoutes(r chi.Router) {
	read := h.Auth.Require("technicians:read")
	write := h.Auth.Require("technicians:write")
	r.With(write).Post("/v1/accounts/{acc}/imports", h.startImport)
	r.With(read).Get("/v1/accounts/{acc}/imports/{id}", h.getImport)
	r.With(read).Get("/v1/accounts/{acc}/imports/{id}/rows", h.importRows)
	r.With(read).Get("/v1/accounts/{acc}/technicians/{id}/directory", func(w http.ResponseWriter, r *http.Request) {
		d, err := h.Dir.TechnicianDirectory(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
		h.answerJSON(w, r, d, err)
	})
	r.With(read).Get("/v1/accounts/{acc}/end-users/{id}/directory", func(w http.ResponseWriter, r *http.Request) {
		d, err := h.Dir.EndUserDirectory(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
		h.answerJSON(w, r, d, err)
	})
}

func (h *DirectoryHTTP) answerJSON(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, v)
}

// startImport takes the CSV as the body (Content-Type text/csv) with
// ?kind=, ?confirm_seat_purchase= and ?send_welcome_mail= (default true),
// or as a multipart form with a "file" part and the same fields.
func (h *DirectoryHTTP) startImport(w http.ResponseWriter, r *http.Request) {
	var bad []problem.FieldError
	flag := func(name string, def bool, v string) bool {
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad = append(bad, problem.FieldError{Field: name, Detail: "must be true or false"})
		}
		return b
	}
	r.Body = http.MaxBytesReader(w, r.Body, domain.MaxImportBytes+1<<20)
	var data []byte
	var err error
	get := r.URL.Query().Get
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			problem.Write(w, problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the multipart form cannot be read: "+err.Error()))
			return
		}
		get = func(k string) string {
			if v := r.FormValue(k); v != "" {
				return v
			}
			return r.URL.Query().Get(k)
		}
		f, _, ferr := r.FormFile("file")
		if ferr != nil {
			problem.Write(w, problem.Invalid(problem.FieldError{Field: "file", Detail: "the form needs a file part holding the CSV"}))
			return
		}
		defer f.Close()
		data, err = io.ReadAll(f)
	} else {
		data, err = io.ReadAll(r.Body)
	}
	if err != nil {
		problem.Write(w, problem.New(http.StatusRequestEntityTooLarge, "too-large", "File too large",
			"the CSV cannot be read or is larger than 20 MiB; split it"))
		return
	}
	opts := app.ImportOptions{
		ConfirmSeatPurchase: flag("confirm_seat_purchase", false, get("confirm_seat_purchase")),
		SendWelcomeMail:     flag("send_welcome_mail", true, get("send_welcome_mail")),
	}
	if len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	res, err := h.Dir.StartImport(r.Context(), chi.URLParam(r, "acc"), get("kind"), opts, data, key(r))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	idempotency.Write(w, res)
}

func (h *DirectoryHTTP) getImport(w http.ResponseWriter, r *http.Request) {
	imp, err := h.Dir.Import(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, imp)
}

// rowCursor versions the content of import row cursors.
const rowCursor = "r1:"

func (h *DirectoryHTTP) importRows(w http.ResponseWriter, r *http.Request) {
	limit, after, bad := httpx.PageParams(r, rowCursor)
	afterRow := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil {
			bad = append(bad, problem.FieldError{Field: "cursor", Detail: "is not a cursor of this list"})
		}
		afterRow = n
	}
	outcome := r.URL.Query().Get("outcome")
	switch outcome {
	case "", app.RowCreated, app.RowUpdated, app.RowSkipped, app.RowRefused:
	default:
		bad = append(bad, problem.FieldError{Field: "outcome", Detail: "must be created, updated, skipped or refused"})
	}
	if len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	rows, err := h.Dir.ImportRows(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), outcome, afterRow, limit+1)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	var next any
	if len(rows) > limit {
		rows = rows[:limit]
		next = httpx.EncodeCursor(rowCursor, strconv.Itoa(rows[len(rows)-1].Row))
	}
	if rows == nil {
		rows = []app.RowResult{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": rows, "next_cursor": next})
}
