package domain

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"roster.dev/pkg/problem"
)

// H-3: CSV import of end users and technicians.

// Import kinds.
const (
	ImportEndUsers    = "end_users"
	ImportTechnicians = "technicians"
)

// Import limits: the upload is parsed whole before the 202.
const (
	MaxImportBytes = 20 << 20
	MaxImportRows  = 100_000
)

// importColumns are the documented columns of each kind (docs/api-notes.md);
// required ones must be in the header.
var importColumns = map[string]struct{ required, optional []string }{
	ImportTechnicians: {
		required: []string{"email", "first_name", "last_name"},
		optional: []string{"phone", "role", "department", "job_title", "employee_number"},
	},
	ImportEndUsers: {
		required: []string{"email", "site"},
		optional: []string{"name", "first_name", "last_name", "department"},
	},
}

// headerAliases are other spellings admins' spreadsheets use.
var headerAliases = map[string]string{
	"e_mail": "email", "email_address": "email", "firstname": "first_name", "lastname": "last_name",
	"given_name": "first_name", "family_name": "last_name", "surname": "last_name",
	"phone_number": "phone", "site_id": "site", "site_name": "site", "customer": "site",
	"title": "job_title", "employee_id": "employee_number",
}

// ImportRow is one data row: Number is its record number in the file (the
// header is 1), Fields its values by column, Err a row the parser could
// not read (the row is refused with it).
type ImportRow struct {
	Number int               `json:"row"`
	Fields map[string]string `json:"fields"`
	Err    string            `json:"error,omitempty"`
}

func badFile(detail string) *problem.Problem {
	return problem.New(http.StatusUnprocessableEntity, "invalid-csv", "Invalid CSV file", detail)
}

// normalizeHeader turns "First Name" into first_name.
func normalizeHeader(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.NewReplacer(" ", "_", "-", "_", ".", "_").Replace(h)
	if a, ok := headerAliases[h]; ok {
		return a
	}
	return h
}

// delimiter picks ',' or ';' by which occurs more often outside quotes in
// the header line (spreadsheets in comma-decimal locales write ';').
func delimiter(data []byte) rune {
	line := data
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		line = data[:i]
	}
	commas, semis, quoted := 0, 0, false
	for _, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == ',':
			commas++
		case c == ';':
			semis++
		}
	}
	if semis > commas {
		return ';'
	}
	return ','
}

// ParseImport reads a CSV upload of kind: UTF-8 with or without a BOM,
// comma- or semicolon-separated, quoted fields, a header row naming the
// documented columns. A file that cannot be imported at all (not UTF-8, no
// header, a required column missing, an unknown column, too many rows) is
// a problem naming why; a row that cannot be read is kept with Err, so the
// report names it.
func ParseImport(kind string, data []byte) ([]ImportRow, error) {
	cols, ok := importColumns[kind]
	if !ok {
		return nil, problem.Invalid(problem.FieldError{Field: "kind", Detail: "must be end_users or technicians"})
	}
	if len(data) > MaxImportBytes {
		return nil, badFile(fmt.Sprintf("the file is larger than %d MiB", MaxImportBytes>>20))
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, badFile("the file is not UTF-8; save it as \"CSV UTF-8\"")
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = delimiter(data)
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, badFile("the file is empty; the first row must name the columns")
	}
	if err != nil {
		return nil, badFile("the header row cannot be read: " + err.Error())
	}
	known := map[string]bool{}
	for _, c := range append(append([]string{}, cols.required...), cols.optional...) {
		known[c] = true
	}
	names := make([]string, len(header))
	seen := map[string]bool{}
	var errs []string
	for i, h := range header {
		n := normalizeHeader(h)
		names[i] = n
		switch {
		case n == "":
			errs = append(errs, fmt.Sprintf("column %d has no name", i+1))
		case !known[n]:
			errs = append(errs, fmt.Sprintf("unknown column %q", strings.TrimSpace(h)))
		case seen[n]:
			errs = append(errs, fmt.Sprintf("column %q appears twice", n))
		}
		seen[n] = true
	}
	for _, c := range cols.required {
		if !seen[c] {
			errs = append(errs, fmt.Sprintf("required column %q is missing", c))
		}
	}
	if kind == ImportEndUsers && !seen["name"] && !(seen["first_name"] && seen["last_name"]) {
		errs = append(errs, `an end user needs a "name" column, or "first_name" and "last_name"`)
	}
	if len(errs) > 0 {
		return nil, badFile(strings.Join(errs, "; ") + fmt.Sprintf(" (columns for %s: %s; optional: %s)",
			kind, strings.Join(cols.required, ", "), strings.Join(cols.optional, ", ")))
	}
	var rows []ImportRow
	for n := 2; ; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if len(rows) == MaxImportRows {
			return nil, badFile(fmt.Sprintf("more than %d rows; split the file", MaxImportRows))
		}
		row := ImportRow{Number: n}
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe):
			row.Err = "the row cannot be read: " + pe.Err.Error()
		case err != nil:
			return nil, badFile(err.Error())
		case len(rec) == 1 && strings.TrimSpace(rec[0]) == "":
			continue // a blank line
		case len(rec) != len(names):
			row.Err = fmt.Sprintf("the row has %d fields, the header %d", len(rec), len(names))
		default:
			row.Fields = make(map[string]string, len(names))
			for i, v := range rec {
				row.Fields[names[i]] = strings.TrimSpace(v)
			}
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, badFile("the file has a header but no rows")
	}
	return rows, nil
}

// ImportKinds are the kinds a profile imports (H-3): atera imports end
// users only; roster technicians too.
func ImportKinds(profileID string) []string {
	if strings.HasPrefix(profileID, "atera") {
		return []string{ImportEndUsers}
	}
	return []string{ImportEndUsers, ImportTechnicians}
}

// KeepsDepartment: atera ignores the Department column (H-3).
func KeepsDepartment(profileID string) bool { return !strings.HasPrefix(profileID, "atera") }

// SendsWelcomeMail: atera imports send no welcome mail; roster's are
// optional (H-3).
func SendsWelcomeMail(profileID string, asked bool) bool {
	return asked && !strings.HasPrefix(profileID, "atera")
}
