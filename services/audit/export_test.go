package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/audit"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
	"roster.dev/services/audit/ports"
)

// emitTechs emits n TechnicianCreated events for acc, one after another,
// and waits until the audit has recorded them.
func (w *world) emitTechs(t *testing.T, acc string, from, n int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		ev := &identityv1.TechnicianCreated{TechnicianId: fmt.Sprintf("tech_%s_%d", acc, i),
			Email: fmt.Sprintf("t%d@%s.example", i, acc), FirstName: "Tech", LastName: fmt.Sprintf("No. %d, \"quoted\"", i), Status: "invited"}
		if err := w.identity.DB.InTx(ctx, func(tx *sql.Tx) error { return w.identity.Bus.Emit(ctx, tx, acc, ev) }); err != nil {
			t.Fatal(err)
		}
	}
	svctest.Eventually(t, fmt.Sprintf("%d records for %s", from+n, acc), func() bool {
		var v app.Verification
		w.get(t, "/v1/accounts/"+acc+"/audit/verify", operatorToken, &v)
		return v.Records >= int64(from+n)
	})
}

func (w *world) export(t *testing.T, acc, query string) (http.Header, []byte) {
	t.Helper()
	st, hdr, body := svctest.Get(t, w.url+"/v1/accounts/"+acc+"/audit?"+query, operatorToken)
	if st != http.StatusOK {
		t.Fatalf("export %s?%s: status %d: %s", acc, query, st, body)
	}
	return hdr, body
}

func lines(b []byte) [][]byte {
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

// a whole-chain JSON Lines export carries the chain's signed
// checkpoints and one signed for the export itself; with the key from
// GET /v1/audit/keys it verifies without the database, and each kind of
// tampering with the file is reported at its sequence. The CSV export
// holds the same records.
func TestExportVerifiesOfflineWithThePublicKey(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		keyFile := filepath.Join(t.TempDir(), "audit-signing.key")
		w := newWorldWith(t, dbURL, audit.Options{SigningKeyFile: keyFile, Checkpoints: app.CheckpointPolicy{Every: 5}})
		const acc = "acc_x"
		w.emitTechs(t, acc, 0, 23)

		var keys ports.KeysResponse
		if st := w.get(t, "/v1/audit/keys", "", &keys); st != http.StatusOK || len(keys.Keys) != 1 {
			t.Fatalf("GET /v1/audit/keys = %d %+v, want one key without a token", st, keys)
		}
		key, err := audit.LoadSigningKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if want := domain.NewSigner(key).PublicKey().ID; keys.Keys[0].ID != want || keys.Keys[0].Algorithm != "Ed25519" {
			t.Fatalf("served key %+v, want %s from the key file", keys.Keys[0], want)
		}
		keysJSON, _ := json.Marshal(keys)
		pub, err := audit.ParsePublicKeys(keysJSON)
		if err != nil {
			t.Fatal(err)
		}
		pemKeys, err := audit.ParsePublicKeys([]byte(keys.Keys[0].PEM))
		if err != nil || pemKeys[0].ID != pub[0].ID {
			t.Fatalf("the PEM form reads as %v, %v", pemKeys, err)
		}

		hdr, body := w.export(t, acc, "format=jsonl")
		if ct := hdr.Get("Content-Type"); ct != "application/jsonl" || !strings.Contains(hdr.Get("Content-Disposition"), "audit-acc_x.jsonl") {
			t.Fatalf("export headers: %v", hdr)
		}
		ls := lines(body)
		var recLines, cpSeqs []int64
		for _, l := range ls {
			var cp ports.CheckpointLine
			if json.Unmarshal(l, &cp) == nil && cp.Checkpoint.Signature != "" {
				cpSeqs = append(cpSeqs, cp.Checkpoint.Sequence)
				continue
			}
			var r domain.Record
			if err := json.Unmarshal(l, &r); err != nil {
				t.Fatalf("line %s: %v", l, err)
			}
			recLines = append(recLines, r.Sequence)
		}
		if len(recLines) != 23 || fmt.Sprint(cpSeqs) != "[5 10 15 20 23]" {
			t.Fatalf("export holds records %v and checkpoints %v, want 23 records and checkpoints [5 10 15 20 23]", recLines, cpSeqs)
		}
		res, err := audit.VerifyExport(bytes.NewReader(body), pub)
		if err != nil || !res.OK || res.Records != 23 || res.Checkpoints != 5 || res.SignedThrough != 23 || res.AccountID != acc {
			t.Fatalf("VerifyExport = %+v, %v; want ok, 23 records, 5 checkpoints through 23", res, err)
		}

		// Each kind of tampering with the file, and where it is found.
		recordLine := func(seq int64) int { // index in ls of record seq
			for i, l := range ls {
				if bytes.HasPrefix(l, []byte(fmt.Sprintf(`{"sequence":%d,`, seq))) {
					return i
				}
			}
			t.Fatalf("no line for record %d", seq)
			return 0
		}
		edit := func(f func(ls [][]byte) [][]byte) []byte {
			cp := make([][]byte, len(ls))
			copy(cp, ls)
			return append(bytes.Join(f(cp), []byte("\n")), '\n')
		}
		i12, i13 := recordLine(12), recordLine(13)
		rewritten := func(ls [][]byte) [][]byte {
			// record 12 changed and every later hash recomputed: links and
			// hashes hold; checkpoint 15 does not.
			var head domain.Head
			out := [][]byte{}
			for _, l := range ls {
				var r domain.Record
				if json.Unmarshal(l, &r) != nil || r.ID == "" {
					out = append(out, l)
					continue
				}
				if r.Sequence >= 12 {
					if r.Sequence == 12 {
						r.Data = json.RawMessage(`{"email":"forged@example.com"}`)
					}
					r, _ = domain.Seal(r, head)
					l, _ = json.Marshal(r)
				}
				head = domain.Head{Sequence: r.Sequence, Hash: r.Hash}
				out = append(out, l)
			}
			return out
		}
		for _, c := range []struct {
			name string
			file []byte
			keys []byte
			bad  int64
		}{
			{"changed", edit(func(ls [][]byte) [][]byte {
				ls[i12] = bytes.Replace(ls[i12], []byte(`"t11@`), []byte(`"x11@`), 1)
				return ls
			}), keysJSON, 12},
			{"removed", edit(func(ls [][]byte) [][]byte { return append(ls[:i12:i12], ls[i12+1:]...) }), keysJSON, 12},
			{"inserted", edit(func(ls [][]byte) [][]byte {
				return append(append(ls[:i13:i13], ls[i12]), ls[i13:]...)
			}), keysJSON, 13},
			{"reordered", edit(func(ls [][]byte) [][]byte { ls[i12], ls[i13] = ls[i13], ls[i12]; return ls }), keysJSON, 12},
			{"rewritten", edit(rewritten), keysJSON, 11},
			{"another key", body, []byte(domain.EncodePublicKey(domain.NewSigner(mustKey(t)).PublicKey().Key)), 1},
		} {
			k, err := audit.ParsePublicKeys(c.keys)
			if err != nil {
				t.Fatal(err)
			}
			res, err := audit.VerifyExport(bytes.NewReader(c.file), k)
			if err != nil || res.OK || res.FirstBadSequence == nil || *res.FirstBadSequence != c.bad {
				t.Errorf("%s: VerifyExport = %+v, %v; want first bad %d", c.name, res, err, c.bad)
			}
		}
		// Cut off the end (last record and its checkpoint): the rest still
		// verifies, but the signatures stop short of the last record.
		cut := edit(func(ls [][]byte) [][]byte { return ls[:len(ls)-2] })
		if res, err := audit.VerifyExport(bytes.NewReader(cut), pub); err != nil || !res.OK || res.Records != 22 || res.SignedThrough != 20 {
			t.Errorf("export cut short: %+v, %v; want ok, 22 records signed through 20", res, err)
		}

		// CSV: a header and the same records, data as JSON text.
		hdr, body = w.export(t, acc, "format=csv&action=technician.created")
		if !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
			t.Fatalf("csv content type %q", hdr.Get("Content-Type"))
		}
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil || len(rows) != 24 || strings.Join(rows[0], ",") != strings.Join(ports.CSVHeader, ",") {
			t.Fatalf("csv: %d rows, header %v, %v", len(rows), rows[0], err)
		}
		var data map[string]any
		if err := json.Unmarshal([]byte(rows[13][11]), &data); err != nil || data["last_name"] != `No. 12, "quoted"` || rows[13][0] != "13" {
			t.Fatalf("csv row 13 = %v (%v)", rows[13], err)
		}
		// A filtered JSON Lines export has no checkpoints: it is not a chain.
		_, body = w.export(t, acc, "format=jsonl&since="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
		if n := len(lines(body)); n != 23 || bytes.Contains(body, []byte(`"checkpoint"`)) {
			t.Fatalf("filtered export: %d lines, checkpoints %v", n, bytes.Contains(body, []byte(`"checkpoint"`)))
		}
	})
}

// the live tail serves the records published on the public audit
// stream from now on, as server-sent events, for one account and action.
func TestTailServesNewRecords(t *testing.T) {
	w := newWorld(t, "")
	w.emitTechs(t, "acc_t", 0, 2)
	svctest.Eventually(t, "records 1 and 2 on the stream", svctest.OutboxDrained(w.audit))
	req, _ := http.NewRequest(http.MethodGet, w.url+"/v1/accounts/acc_t/audit/stream?action=technician.created", nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ": listening on roster.audit.acc_t.technician.created") {
		t.Fatalf("first line %q", sc.Text())
	}
	w.emitTechs(t, "acc_t", 2, 3)
	var got []int64
	for len(got) < 3 && sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var r domain.Record
			if err := json.Unmarshal([]byte(d), &r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r.Sequence)
		}
	}
	if fmt.Sprint(got) != "[3 4 5]" {
		t.Fatalf("tail gave records %v, want [3 4 5] (only those after it started)", got)
	}
	if st, _, _ := svctest.Get(t, w.url+"/v1/audit/stream", "not-the-operator"); st != http.StatusUnauthorized {
		t.Errorf("operator tail with a wrong token: %d", st)
	}
	if st, _, _ := svctest.Get(t, w.url+"/v1/accounts/acc_t/audit/stream?action=Bad*", operatorToken); st != http.StatusUnprocessableEntity {
		t.Errorf("tail with a bad action: %d", st)
	}
}

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := audit.LoadSigningKey("")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
