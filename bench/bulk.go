package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bulk is the bulk paths' figures (issue 11, item 5).
type Bulk struct {
	// CSV import of technicians (H-3): upload to the import reporting
	// done, and to every row's technician usable (seat, Beginner role,
	// audited, read by the audit follower).
	ImportRows        int         `json:"import_rows"`
	ImportSeconds     float64     `json:"import_seconds"`
	ImportRowsPerSec  float64     `json:"import_rows_per_s"`
	ImportUsableSecs  float64     `json:"import_usable_seconds"`
	ImportUsablePerS  float64     `json:"import_usable_per_s"`
	SCIMUsers         int         `json:"scim_users"`
	SCIMConcurrency   int         `json:"scim_concurrency"`
	SCIMSeconds       float64     `json:"scim_seconds"`
	SCIMUsersPerSec   float64     `json:"scim_users_per_s"`
	SCIMCreateMs      Percentiles `json:"scim_create_ms"`
	SCIMUsableSeconds float64     `json:"scim_usable_seconds"`
	SCIMUsablePerSec  float64     `json:"scim_usable_per_s"`
}

// benchImport uploads a rows-row technician CSV (POST …/imports, no
// welcome mails, a seat free for each row) and polls the import until it
// reports done.
func benchImport(s *serve, acc account, rows int, b *Bulk) error {
	f := newFollower()
	stop, err := f.follow(s, acc)
	if err != nil {
		return err
	}
	defer stop()
	var csv strings.Builder
	csv.WriteString("email,first_name,last_name,department,job_title\n")
	emails := make([]string, rows)
	for i := range rows {
		emails[i] = fmt.Sprintf("csv%06d@bench.test", i)
		fmt.Fprintf(&csv, "%s,Cora,Row %d,IT,Engineer\n", emails[i], i)
	}
	start := time.Now()
	code, raw, err := doRetry(func() *http.Request {
		req, _ := http.NewRequest("POST", s.url+"/v1/accounts/"+acc.id+"/imports?kind=technicians&send_welcome_mail=false",
			strings.NewReader(csv.String()))
		req.Header.Set("Authorization", "Bearer "+acc.token)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Idempotency-Key", "bench-import")
		return req
	})
	if err != nil || code != 202 {
		return fmt.Errorf("import upload: %d %v %s", code, err, raw)
	}
	var imp struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Created int    `json:"created"`
		Rows    struct {
			Total, Done int
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &imp); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Minute)
	for imp.Status != "done" {
		if time.Now().After(deadline) {
			return fmt.Errorf("import %s not done in 30 minutes: %d of %d rows", imp.ID, imp.Rows.Done, imp.Rows.Total)
		}
		time.Sleep(50 * time.Millisecond)
		if code, err := call("GET", s.url+"/v1/accounts/"+acc.id+"/imports/"+imp.ID, acc.token, nil, &imp); err != nil || code != 200 {
			return fmt.Errorf("import status: %d %v", code, err)
		}
	}
	took := time.Since(start)
	if imp.Created != rows {
		return fmt.Errorf("import done with %d of %d rows created: %+v", imp.Created, rows, imp)
	}
	usable, err := f.awaitEmails(emails, 30*time.Minute)
	if err != nil {
		return err
	}
	last := slicesMax(usable)
	b.ImportRows, b.ImportSeconds, b.ImportRowsPerSec = rows, round(took.Seconds()), round(float64(rows)/took.Seconds())
	b.ImportUsableSecs, b.ImportUsablePerS = round(last.Sub(start).Seconds()), round(float64(rows)/last.Sub(start).Seconds())
	return stop()
}

// benchSCIM creates n users through SCIM 2.0 (POST /scim/v2/{acc}/Users,
// with a scim-scoped token, as Okta sends it), concurrency at once.
func benchSCIM(s *serve, acc account, n, concurrency int, b *Bulk) error {
	var tok struct {
		Token string `json:"token"`
	}
	if code, err := call("POST", s.url+"/v1/accounts/"+acc.id+"/tokens", acc.token,
		map[string]any{"name": "bench-idp", "scopes": []string{"scim"}}, &tok); err != nil || code != 201 {
		return fmt.Errorf("SCIM token: %d %v", code, err)
	}
	f := newFollower()
	stop, err := f.follow(s, acc)
	if err != nil {
		return err
	}
	defer stop()
	ids := make([]string, n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				email := fmt.Sprintf("scim%06d@bench.test", i)
				body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,`+
					`"name":{"givenName":"Sam","familyName":"User %d"},"emails":[{"primary":true,"value":%q,"type":"work"}],`+
					`"externalId":"okta-%06d","active":true}`, email, i, email, i)
				t0 := time.Now()
				code, raw, err := doRetry(func() *http.Request {
					req, _ := http.NewRequest("POST", s.url+"/scim/v2/"+acc.id+"/Users", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+tok.Token)
					req.Header.Set("Content-Type", "application/scim+json; charset=utf-8")
					req.Header.Set("Idempotency-Key", "scim-"+email)
					return req
				})
				var u struct {
					ID string `json:"id"`
				}
				if err != nil || code != 201 || json.Unmarshal(raw, &u) != nil || u.ID == "" {
					failed.Store(fmt.Errorf("SCIM create %s: %d %v %s", email, code, err, raw))
					return
				}
				lat[i], ids[i] = time.Since(t0), u.ID
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	took := time.Since(start)
	usable, err := f.awaitIDs(ids, 30*time.Minute)
	if err != nil {
		return err
	}
	last := slicesMax(usable)
	b.SCIMUsers, b.SCIMConcurrency, b.SCIMSeconds, b.SCIMUsersPerSec = n, concurrency, round(took.Seconds()), round(float64(n)/took.Seconds())
	b.SCIMCreateMs = percentiles(lat, time.Millisecond)
	b.SCIMUsableSeconds, b.SCIMUsablePerSec = round(last.Sub(start).Seconds()), round(float64(n)/last.Sub(start).Seconds())
	return stop()
}

func slicesMax(ts []time.Time) time.Time {
	var last time.Time
	for _, t := range ts {
		if t.After(last) {
			last = t
		}
	}
	return last
}
