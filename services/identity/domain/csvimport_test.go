package domain

import (
	"strings"
	"testing"
)

func TestParseImport(t *testing.T) {
	tests := []struct {
		name, kind, data string
		rows             int
		wantErr          string
		check            func(t *testing.T, rows []ImportRow)
	}{
		{name: "comma", kind: ImportTechnicians, data: "email,first_name,last_name\na@x.test,A,B\n", rows: 1},
		{name: "BOM, semicolon, spaced headers, quoted", kind: ImportTechnicians,
			data: "\ufeffE-mail;First Name;Last Name;Department\r\n\"a@x.test\";\"Ann; Jr\";B;\"IT \"\"Ops\"\"\"\r\n", rows: 1,
			check: func(t *testing.T, rows []ImportRow) {
				f := rows[0].Fields
				if f["email"] != "a@x.test" || f["first_name"] != "Ann; Jr" || f["department"] != `IT "Ops"` {
					t.Fatalf("fields: %v", f)
				}
			}},
		{name: "row numbers skip blank lines, short rows refused", kind: ImportEndUsers,
			data: "email,name,site\na@x.test,A,HQ\n\nb@x.test,B\nc@x.test,C,HQ\n", rows: 3,
			check: func(t *testing.T, rows []ImportRow) {
				if rows[0].Number != 2 || rows[1].Number != 3 || rows[1].Err == "" || rows[2].Number != 4 {
					t.Fatalf("rows: %+v", rows)
				}
			}},
		{name: "a bare quote refuses the row only", kind: ImportEndUsers, data: "email,name,site\na@x.test,A \"B,HQ\nb@x.test,B,HQ\n", rows: 2,
			check: func(t *testing.T, rows []ImportRow) {
				if rows[0].Err == "" || rows[1].Err != "" {
					t.Fatalf("rows: %+v", rows)
				}
			}},
		{name: "first and last name instead of name", kind: ImportEndUsers, data: "email,first_name,last_name,site\na@x.test,A,B,HQ\n", rows: 1},
		{name: "empty", kind: ImportTechnicians, data: "", wantErr: "empty"},
		{name: "header only", kind: ImportTechnicians, data: "email,first_name,last_name\n", wantErr: "no rows"},
		{name: "missing column", kind: ImportTechnicians, data: "email,first_name\na@x.test,A\n", wantErr: `"last_name" is missing`},
		{name: "unknown column", kind: ImportTechnicians, data: "email,first_name,last_name,shoe_size\na,b,c,d\n", wantErr: `unknown column "shoe_size"`},
		{name: "duplicate column", kind: ImportTechnicians, data: "email,first_name,last_name,Email\na,b,c,d\n", wantErr: "twice"},
		{name: "end user without a name", kind: ImportEndUsers, data: "email,site\na,b\n", wantErr: `"name" column`},
		{name: "not UTF-8", kind: ImportTechnicians, data: "email,first_name,last_name\n\xff,b,c\n", wantErr: "UTF-8"},
		{name: "unknown kind", kind: "robots", data: "email\n", wantErr: "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := ParseImport(tt.kind, []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(rows) != tt.rows {
				t.Fatalf("= %d rows, %v; want %d", len(rows), err, tt.rows)
			}
			if tt.check != nil {
				tt.check(t, rows)
			}
		})
	}
}

// FuzzParseImport: whatever the bytes, the parser never panics; rows it
// returns are numbered upwards from 2 and hold only documented columns.
func FuzzParseImport(f *testing.F) {
	f.Add(ImportTechnicians, []byte("email,first_name,last_name\na@x.test,A,B\n"))
	f.Add(ImportEndUsers, []byte("\ufeffemail;name;site\n\"a\";\"b;c\";HQ\n\n\"x"))
	f.Add(ImportEndUsers, []byte("email,name,site\na,\"b\nc\",d\ne,f\n"))
	f.Add(ImportTechnicians, []byte("\"email\",first_name,last_name,role,department,phone\n,,,,,\n"))
	f.Fuzz(func(t *testing.T, kind string, data []byte) {
		rows, err := ParseImport(kind, data)
		if err != nil {
			return
		}
		cols := importColumns[kind]
		known := map[string]bool{}
		for _, c := range append(append([]string{}, cols.required...), cols.optional...) {
			known[c] = true
		}
		last := 1
		for _, r := range rows {
			if r.Number <= last {
				t.Fatalf("row %d after %d", r.Number, last)
			}
			last = r.Number
			if r.Err == "" && r.Fields == nil {
				t.Fatalf("row %d: no fields and no error", r.Number)
			}
			for c := range r.Fields {
				if !known[c] {
					t.Fatalf("row %d: column %q", r.Number, c)
				}
			}
		}
	})
}
