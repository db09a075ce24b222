package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HRIS is the HRIS end-to-end figure (issue 11, item 2): signed hires at
// a fixed offered rate, each timed from its 202 to the technician usable.
type HRIS struct {
	OfferedRate float64 `json:"offered_rate_per_s"`
	Webhooks    int     `json:"webhooks"`
	InFlight    int     `json:"max_in_flight"`
	// AchievedRate: 202s per second over the sending window (from the
	// first request to the last 202); below OfferedRate when the
	// receiving side cannot keep up (or the in-flight bound is reached).
	SendSeconds  float64     `json:"send_seconds"`
	AchievedRate float64     `json:"achieved_rate_per_s"`
	AcceptMs     Percentiles `json:"webhook_202_ms"`
	// ToUsableMs: from a webhook's 202 to its technician usable: the
	// technician.created, seat.assigned and role.assigned (Beginner)
	// records readable in the audit log over HTTP.
	ToUsableMs Percentiles `json:"accepted_to_usable_ms"`
	// UsablePerSec: hires usable per second, first request to last usable.
	UsableSeconds float64 `json:"usable_seconds"`
	UsablePerSec  float64 `json:"usable_per_s"`
}

// sign is a Standard Webhooks v1 signature (api.md, Directory sync):
// base64 HMAC-SHA256 of "id.timestamp.body" with the secret's key.
func sign(secret, id string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", fmt.Errorf("HRIS secret %q…: %w", secret[:min(len(secret), 8)], err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// hrisSetup gives the account an HRIS secret and a mapping that makes every
// employee of department IT a technician (no role: Beginner until the first
// login, R-6), as an admin would before pointing the HRIS at Roster.
func hrisSetup(s *serve, acc account) (string, error) {
	var sec struct {
		Secret string `json:"secret"`
	}
	if code, err := call("POST", s.url+"/v1/accounts/"+acc.id+"/hris/secrets", acc.token, nil, &sec); err != nil || code != 201 || sec.Secret == "" {
		return "", fmt.Errorf("HRIS secret: %d %v", code, err)
	}
	mapping := map[string]any{
		"rules":               []any{map[string]any{"when": map[string]any{"department": "IT"}, "then": map[string]any{"kind": "technician"}}},
		"default":             map[string]any{"kind": "ignore"},
		"allow_seat_purchase": false,
	}
	if code, err := call("PUT", s.url+"/v1/accounts/"+acc.id+"/hris/mapping", acc.token, mapping, nil); err != nil || code != 200 {
		return "", fmt.Errorf("HRIS mapping: %d %v", code, err)
	}
	return sec.Secret, nil
}

// benchHRIS posts n signed employee.hired webhooks (the generic source) at
// rate per second, open loop (each is sent at its scheduled time whatever
// the others' answers, up to inFlight at once), and times each from its
// 202 to its technician usable, read by an audit follower as in the
// lifecycle run.
func benchHRIS(s *serve, acc account, n int, rate float64, inFlight int) (HRIS, error) {
	secret, err := hrisSetup(s, acc)
	if err != nil {
		return HRIS{}, err
	}
	f := newFollower()
	stop, err := f.follow(s, acc)
	if err != nil {
		return HRIS{}, err
	}
	type sent struct {
		email    string
		at, acc  time.Time
		accepted bool
	}
	out := make([]sent, n)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	url := s.url + "/v1/accounts/" + acc.id + "/hris/generic"
	start := time.Now()
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
				email := fmt.Sprintf("hire%06d@bench.test", i)
				body, _ := json.Marshal(map[string]any{"type": "employee.hired", "employee": map[string]any{
					"id": fmt.Sprintf("E%06d", i), "email": email, "first_name": "Hana", "last_name": strconv.Itoa(i),
					"department": "IT", "job_title": "Engineer",
				}})
				id := fmt.Sprintf("msg_bench_%06d", i)
				t0 := time.Now()
				ts := t0.Unix()
				sig, err := sign(secret, id, ts, body)
				if err != nil {
					failed.Store(err)
					return
				}
				// A retry is the same delivery (the same webhook-id), as an
				// HRIS retries: a replay answers 202 and changes nothing.
				code, b, err := doRetry(func() *http.Request {
					req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("webhook-id", id)
					req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
					req.Header.Set("webhook-signature", sig)
					return req
				})
				if err != nil || code != 202 {
					failed.Store(fmt.Errorf("webhook %s: %d %v %s", id, code, err, b))
					return
				}
				out[i] = sent{email: email, at: t0, acc: time.Now(), accepted: true}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		stop()
		return HRIS{}, err
	}
	var lastAccepted time.Time
	emails := make([]string, n)
	for i, x := range out {
		emails[i] = x.email
		if x.acc.After(lastAccepted) {
			lastAccepted = x.acc
		}
	}
	usable, err := f.awaitEmails(emails, 15*time.Minute)
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return HRIS{}, err
	}
	var accept, toUsable []time.Duration
	var last time.Time
	for i, x := range out {
		accept = append(accept, x.acc.Sub(x.at))
		toUsable = append(toUsable, usable[i].Sub(x.acc))
		if usable[i].After(last) {
			last = usable[i]
		}
	}
	send := lastAccepted.Sub(start)
	return HRIS{
		OfferedRate: rate, Webhooks: n, InFlight: inFlight,
		SendSeconds: round(send.Seconds()), AchievedRate: round(float64(n) / send.Seconds()),
		AcceptMs: percentiles(accept, time.Millisecond), ToUsableMs: percentiles(toUsable, time.Millisecond),
		UsableSeconds: round(last.Sub(start).Seconds()), UsablePerSec: round(float64(n) / last.Sub(start).Seconds()),
	}, nil
}
