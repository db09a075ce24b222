package adapters_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/audit/adapters"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
)

// signedEnv is env with checkpoints every `every` records and a clock the
// test moves.
func signedEnv(t *testing.T, dbURL string, every int64) (*env, *time.Time) {
	t.Helper()
	e := newEnv(t, dbURL)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	st := adapters.Store{DB: e.db}
	e.app.Checkpoints, e.app.Signer, e.app.InTx = st, domain.NewSigner(key), e.db.InTx
	e.app.Policy = app.CheckpointPolicy{Every: every, Interval: time.Minute}
	// Chains of a few records are verified in parts, as a long one is.
	e.app.VerifyParts, e.app.MinVerifyPart = 3, 4
	e.app.Now = func() time.Time { return now }
	if err := st.AddKey(context.Background(), e.app.Signer.PublicKey(), now); err != nil {
		t.Fatal(err)
	}
	return e, &now
}

func (e *env) checkpoints(t *testing.T, acc string) []domain.Checkpoint {
	t.Helper()
	cps, err := adapters.Store{DB: e.db}.ListCheckpoints(context.Background(), acc, 0, 1<<62, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return cps
}

func sequences(cps []domain.Checkpoint) []int64 {
	var out []int64
	for _, c := range cps {
		out = append(out, c.Sequence)
	}
	return out
}

// a chain is signed every N records in the append's transaction, and
// T after a record no checkpoint covers; each checkpoint verifies with the
// service's public key and names the head it signed.
func TestCheckpointsEveryNRecordsAndAfterT(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e, now := signedEnv(t, dbURL, 5)
		ctx := context.Background()
		for i := range 12 {
			e.record(t, entry("acc_a", i))
		}
		e.record(t, entry("acc_b", 0))
		if got := sequences(e.checkpoints(t, "acc_a")); len(got) != 2 || got[0] != 5 || got[1] != 10 {
			t.Fatalf("acc_a checkpoints at %v, want [5 10]", got)
		}
		recs := e.all(t, "acc_a")
		keys, err := e.app.Keys(ctx)
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys = %v, %v", keys, err)
		}
		for _, c := range e.checkpoints(t, "acc_a") {
			if c.Hash != recs[c.Sequence-1].Hash || !c.Time.Equal(t0) {
				t.Errorf("checkpoint %d = %+v, does not sign record %d at %v", c.Sequence, c, c.Sequence, t0)
			}
			if err := domain.CheckSignature(c, []domain.PublicKey{keys[0].PublicKey}); err != nil {
				t.Error(err)
			}
		}

		// Not yet T since acc_a's last checkpoint: nothing due but acc_b,
		// which has never been signed.
		n, err := e.app.CheckpointDue(ctx)
		if err != nil || n != 1 {
			t.Fatalf("CheckpointDue = %d, %v; want acc_b only", n, err)
		}
		*now = now.Add(61 * time.Second)
		if n, err := e.app.CheckpointDue(ctx); err != nil || n != 1 {
			t.Fatalf("CheckpointDue after T = %d, %v; want acc_a", n, err)
		}
		if got := sequences(e.checkpoints(t, "acc_a")); len(got) != 3 || got[2] != 12 {
			t.Fatalf("acc_a checkpoints at %v, want [5 10 12]", got)
		}
		*now = now.Add(time.Hour)
		if n, err := e.app.CheckpointDue(ctx); err != nil || n != 0 {
			t.Fatalf("CheckpointDue with every head signed = %d, %v; want 0", n, err)
		}
		v := e.verify(t, "acc_a")
		if !v.OK || v.Checkpoints != 3 || v.SignedThrough != 12 || v.Records != 12 {
			t.Fatalf("verify = %+v, want ok with 3 checkpoints through 12", v)
		}
	})
}

// rewrite changes record `from` of acc in the database and recomputes its
// hash and every later one, and the head, as someone with write access to
// the database and the chain's rules would: the chain links and hashes
// right again. Only the signed checkpoints can tell.
func (e *env) rewrite(t *testing.T, acc string, from int64) {
	t.Helper()
	recs := e.all(t, acc)
	head := domain.Head{Sequence: from - 1, Hash: recs[from-2].Hash}
	err := e.db.InTx(context.Background(), func(tx *sql.Tx) error {
		for _, r := range recs[from-1:] {
			if r.Sequence == from {
				r.Data = []byte(`{"email":"someone.else@example.com","technician_id":"tech_forged"}`)
			}
			r, err := domain.Seal(r, head)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`UPDATE audit_records SET data = $1, prev_hash = $2, hash = $3 WHERE account_id = $4 AND sequence = $5`,
				string(r.Data), r.PrevHash, r.Hash, acc, r.Sequence); err != nil {
				return err
			}
			head = domain.Head{Sequence: r.Sequence, Hash: r.Hash}
		}
		_, err := tx.Exec(`UPDATE audit_heads SET hash = $1 WHERE account_id = $2`, head.Hash, acc)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// what the hash chain alone cannot catch — a chain rewritten with
// fresh hashes, records cut from the end with the head moved back, a
// forged checkpoint — the checkpoints catch, at the first record they can
// no longer vouch for.
func TestCheckpointsCatchWhatTheChainCannot(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e, _ := signedEnv(t, dbURL, 5)
		for _, acc := range []string{"acc_rewrite", "acc_cut", "acc_forge", "acc_key"} {
			for i := range 22 {
				e.record(t, entry(acc, i))
			}
		}
		for _, acc := range []string{"acc_rewrite", "acc_cut", "acc_forge", "acc_key"} {
			if v := e.verify(t, acc); !v.OK || v.Checkpoints != 4 || v.SignedThrough != 20 {
				t.Fatalf("%s before tampering: %+v", acc, v)
			}
		}
		expect := func(acc string, bad int64, reason string) {
			t.Helper()
			v := e.verify(t, acc)
			if v.OK || v.FirstBadSequence == nil || *v.FirstBadSequence != bad || !strings.Contains(v.Reason, reason) {
				t.Errorf("%s: verify = %+v, want first bad %d (%q)", acc, v, bad, reason)
			}
		}

		// Record 13 changed and 13..22 re-hashed: checkpoint 15 no longer
		// matches; 11 is the first record it cannot vouch for (10 is signed).
		e.rewrite(t, "acc_rewrite", 13)
		expect("acc_rewrite", 11, "rewritten")

		// Records 18..22 deleted and the head moved back to 17: the chain
		// is whole up to its head, but checkpoint 20 was signed past it.
		recs := e.all(t, "acc_cut")
		e.exec(t, `DELETE FROM audit_records WHERE account_id = $1 AND sequence > 17`, "acc_cut")
		e.exec(t, `UPDATE audit_heads SET sequence = 17, hash = $1 WHERE account_id = $2`, recs[16].Hash, "acc_cut")
		expect("acc_cut", 18, "removed from the end")

		// A checkpoint changed in the database: its signature fails.
		e.exec(t, `UPDATE audit_checkpoints SET hash = $1 WHERE account_id = $2 AND sequence = 15`, recs[0].Hash, "acc_forge")
		expect("acc_forge", 11, "cannot be trusted")

		// A checkpoint re-signed with a key the service never had.
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		keyRecs := e.all(t, "acc_key")
		forged, err := domain.NewSigner(other).Sign("acc_key", domain.Head{Sequence: 10, Hash: keyRecs[9].Hash}, t0)
		if err != nil {
			t.Fatal(err)
		}
		e.exec(t, `UPDATE audit_checkpoints SET key_id = $1, signature = $2 WHERE account_id = $3 AND sequence = 10`,
			forged.KeyID, forged.Signature, "acc_key")
		expect("acc_key", 6, "unknown key")
	})
}

func mustSigningKey() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// A chain verified in parts (after signed checkpoints, at once) reports
// what one pass would: the first bad record whichever part holds it,
// including a part's boundary record gone missing.
func TestVerifyInPartsFindsTheFirstBadRecord(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		e, _ := signedEnv(t, dbURL, 5)
		for _, acc := range []string{"acc_two", "acc_edge", "acc_tail"} {
			for i := range 30 {
				e.record(t, entry(acc, i))
			}
			if v := e.verify(t, acc); !v.OK || v.Records != 30 || v.Checkpoints != 6 || v.SignedThrough != 30 {
				t.Fatalf("%s: %+v", acc, v)
			}
		}
		expect := func(acc string, bad int64) {
			t.Helper()
			v := e.verify(t, acc)
			if v.OK || v.FirstBadSequence == nil || *v.FirstBadSequence != bad {
				t.Errorf("%s: verify = %+v, want first bad %d", acc, v, bad)
			}
		}
		// Bad records in the first and the last part: the first one wins.
		e.exec(t, `UPDATE audit_records SET correlation_id = 'x' WHERE account_id = 'acc_two' AND sequence IN (3, 27)`)
		expect("acc_two", 3)
		// The record a later part starts from (a checkpoint's) is gone.
		e.exec(t, `DELETE FROM audit_records WHERE account_id = 'acc_edge' AND sequence = 10`)
		expect("acc_edge", 10)
		// Only the last part is bad.
		e.exec(t, `UPDATE audit_records SET action = 'x' WHERE account_id = 'acc_tail' AND sequence = 29`)
		expect("acc_tail", 29)
	})
}
