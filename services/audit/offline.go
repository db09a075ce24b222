package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
)

// OfflineResult is the verification of an exported chain.
type OfflineResult struct {
	app.Verification
	AccountID string `json:"account_id"`
	// SignaturesChecked is false when no public key was given: the chain
	// links and hashes were checked, the checkpoints were not.
	SignaturesChecked bool `json:"signatures_checked"`
}

// ParsePublicKeys reads checkpoint public keys as GET /v1/audit/keys serves
// them (JSON), or as PEM "PUBLIC KEY" blocks.
func ParsePublicKeys(b []byte) ([]domain.PublicKey, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var doc struct {
			Keys []struct {
				PEM string `json:"pem"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(t, &doc); err != nil {
			return nil, fmt.Errorf("public keys: %w", err)
		}
		var out []domain.PublicKey
		for _, k := range doc.Keys {
			ks, err := domain.DecodePublicKeys([]byte(k.PEM))
			if err != nil {
				return nil, err
			}
			out = append(out, ks...)
		}
		if len(out) == 0 {
			return nil, errors.New("public keys: the document lists no key")
		}
		return out, nil
	}
	return domain.DecodePublicKeys(b)
}

// VerifyExport verifies a whole-chain JSON Lines export (GET
// …/audit?format=jsonl, `roster audit export`) without the database:
// every record links to the one before and hashes to its hash, and, with
// keys, every checkpoint in it is signed by one of them and matches the
// chain where it stands. An export made by Roster ends with a checkpoint
// of its last record, so SignedThrough equals Records when nothing was cut
// off its end. It reads the export line by line.
func VerifyExport(r io.Reader, keys []domain.PublicKey) (OfflineResult, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var check *app.ChainCheck
	res := OfflineResult{SignaturesChecked: len(keys) > 0}
	line := 0
	var pending []domain.Checkpoint
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] == '#' {
			return res, fmt.Errorf("line %d: the export is incomplete: %s", line, b)
		}
		var probe struct {
			Checkpoint *domain.Checkpoint `json:"checkpoint"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return res, fmt.Errorf("line %d: not a JSON object: %w", line, err)
		}
		if probe.Checkpoint != nil {
			if !res.SignaturesChecked {
				continue
			}
			if check == nil {
				pending = append(pending, *probe.Checkpoint)
				continue
			}
			check.Checkpoint(*probe.Checkpoint)
			continue
		}
		var rec domain.Record
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return res, fmt.Errorf("line %d: not an audit record: %w", line, err)
		}
		if check == nil {
			res.AccountID = rec.AccountID
			check = app.NewChainCheck(rec.AccountID, keys)
			for _, cp := range pending {
				check.Checkpoint(cp)
			}
		}
		// A checkpoint line follows the record it covers: it is queued
		// when read and checked with the next record or at the end.
		check.Record(rec)
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("line %d: %w", line+1, err)
	}
	if check == nil {
		return res, errors.New("the export holds no record")
	}
	res.Verification = check.End(nil)
	return res, nil
}

// PublicKey is a checkpoint verification key.
type PublicKey = domain.PublicKey
