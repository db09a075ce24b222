package domain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Checkpoint is a signed statement that an account's chain had this head at
// this time: an Ed25519 signature over the checkpoint's canonical
// form, so whoever holds the records (an export, the stream) and the public
// key can check that nobody rewrote the chain since, without trusting the
// database, which never sees the private key.
type Checkpoint struct {
	AccountID string `json:"account_id"`
	Sequence  int64  `json:"sequence"`
	// Hash is the hash of record Sequence, the chain's head when signed.
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	// KeyID names the signing key (KeyID).
	KeyID string `json:"key_id"`
	// Signature is the standard base64 Ed25519 signature over Signed.
	Signature string `json:"signature"`
}

// Signed is what a checkpoint's signature covers: its JSON encoding without
// "signature", in RFC 8785 canonical JSON, as for records.
func (c Checkpoint) Signed() ([]byte, error) {
	doc, err := json.Marshal(struct {
		AccountID string `json:"account_id"`
		Sequence  int64  `json:"sequence"`
		Hash      string `json:"hash"`
		Time      string `json:"time"`
		KeyID     string `json:"key_id"`
	}{c.AccountID, c.Sequence, c.Hash, c.Time.UTC().Format(time.RFC3339Nano), c.KeyID})
	if err != nil {
		return nil, fmt.Errorf("audit: encode checkpoint %s #%d: %w", c.AccountID, c.Sequence, err)
	}
	return CanonicalJSON(doc)
}

// Signer signs checkpoints with one Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
	id  string
}

// NewSigner signs with key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, id: KeyID(key.Public().(ed25519.PublicKey))}
}

// KeyID is the id of the public key pub: "ed25519:" and the first 16 hex
// digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// PublicKey is the key that verifies the signer's checkpoints.
func (s *Signer) PublicKey() PublicKey {
	return PublicKey{ID: s.id, Key: s.key.Public().(ed25519.PublicKey)}
}

// Sign makes the checkpoint of head in accountID's chain at time at.
func (s *Signer) Sign(accountID string, head Head, at time.Time) (Checkpoint, error) {
	c := Checkpoint{AccountID: accountID, Sequence: head.Sequence, Hash: head.Hash,
		Time: at.UTC().Truncate(time.Microsecond), KeyID: s.id}
	msg, err := c.Signed()
	if err != nil {
		return Checkpoint{}, err
	}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, msg))
	return c, nil
}

// PublicKey is a checkpoint verification key.
type PublicKey struct {
	ID  string
	Key ed25519.PublicKey
}

// Errors of CheckSignature.
var (
	ErrUnknownKey   = errors.New("audit: checkpoint signed by an unknown key")
	ErrBadSignature = errors.New("audit: checkpoint signature does not verify")
)

// CheckSignature verifies c's signature with the key it names among keys.
func CheckSignature(c Checkpoint, keys []PublicKey) error {
	for _, k := range keys {
		if k.ID != c.KeyID {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(c.Signature)
		if err != nil {
			return fmt.Errorf("%w: %s #%d: signature is not base64", ErrBadSignature, c.AccountID, c.Sequence)
		}
		msg, err := c.Signed()
		if err != nil {
			return err
		}
		if !ed25519.Verify(k.Key, msg, sig) {
			return fmt.Errorf("%w: %s #%d", ErrBadSignature, c.AccountID, c.Sequence)
		}
		return nil
	}
	return fmt.Errorf("%w %q: %s #%d", ErrUnknownKey, c.KeyID, c.AccountID, c.Sequence)
}

// PEM block types of keys.
const (
	pemPrivate = "PRIVATE KEY"
	pemPublic  = "PUBLIC KEY"
)

// EncodePrivateKey is key as a PKCS #8 PEM block.
func EncodePrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
}

// DecodePrivateKey reads a PKCS #8 PEM Ed25519 private key.
func DecodePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemPrivate {
		return nil, errors.New("audit: signing key: not a PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: signing key: a %T, want Ed25519", k)
	}
	return ek, nil
}

// EncodePublicKey is pub as a PKIX PEM block.
func EncodePublicKey(pub ed25519.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for an Ed25519 key
	return string(pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}))
}

// DecodePublicKeys reads every PKIX PEM Ed25519 public key in b.
func DecodePublicKeys(b []byte) ([]PublicKey, error) {
	var out []PublicKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != pemPublic {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: public key: %w", err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("audit: public key: a %T, want Ed25519", k)
		}
		out = append(out, PublicKey{ID: KeyID(ek), Key: ek})
	}
	if len(out) == 0 {
		return nil, errors.New("audit: no PEM \"PUBLIC KEY\" block")
	}
	return out, nil
}
