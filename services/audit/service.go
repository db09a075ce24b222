// Package audit is the audit service: it records every event of every
// Roster service as one record in its account's hash chain,
// signs the chains with checkpoints, serves, exports and verifies
// them over HTTP and publishes each record on the public audit
// stream.
package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/svc"
	"roster.dev/services/audit/adapters"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
	"roster.dev/services/audit/migrations"
	"roster.dev/services/audit/ports"
)

// Options configure the audit service.
type Options struct {
	// SigningKeyFile is the PEM file (PKCS #8) of the Ed25519 key that signs
	// checkpoints, created with mode 0600 when missing. Every audit process
	// of one installation must use the same file. Empty: a key made in
	// memory for this process only (tests).
	SigningKeyFile string
	// Checkpoints says when chains are signed; zero: app.DefaultCheckpoints.
	Checkpoints app.CheckpointPolicy
}

// Service is the audit service.
type Service struct {
	opts Options
	app  *app.App
	http *ports.HTTP
	log  *slog.Logger
}

var (
	_ svc.Service = (*Service)(nil)
	_ svc.Runner  = (*Service)(nil)
)

// EventuallyConsistent: a write does not wait for its audit record (the
// record is asynchronous by contract; docs/architecture.md).
func (s *Service) EventuallyConsistent() bool { return true }

// New returns the audit service with default options.
func New() *Service { return NewWith(Options{}) }

// NewWith returns the audit service configured by o.
func NewWith(o Options) *Service {
	if o.Checkpoints == (app.CheckpointPolicy{}) {
		o.Checkpoints = app.DefaultCheckpoints
	}
	return &Service{opts: o}
}

func (s *Service) Name() string      { return "audit" }
func (s *Service) Migrations() fs.FS { return migrations.FS }

// Routes mounts the audit routes; call it after Setup.
func (s *Service) Routes(r chi.Router) { s.http.Routes(r) }

// Setup wires the store, the signing key, the stream and the consumers of
// every event stream.
func (s *Service) Setup(ctx context.Context, d svc.Deps) error {
	key, err := LoadSigningKey(s.opts.SigningKeyFile)
	if err != nil {
		return err
	}
	st := adapters.Store{DB: d.DB}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	a := &app.App{Chain: st, Records: st, Stream: adapters.Stream{Outbox: d.Bus.Outbox()},
		Checkpoints: st, Signer: domain.NewSigner(key), Policy: s.opts.Checkpoints, InTx: d.DB.InTx, Now: now}
	if err := st.AddKey(ctx, a.Signer.PublicKey(), a.Now()); err != nil {
		return err
	}
	ports.Events{App: a, Log: d.Log}.Register(d.Bus)
	authn := d.Auth
	if authn == nil {
		authn = auth.New(d.Operator, nil)
	}
	s.app, s.log = a, d.Log
	s.http = &ports.HTTP{App: a, Auth: authn, Log: d.Log, Connect: d.Connect}
	return nil
}

// Run signs chains that no checkpoint has covered for the policy's
// interval until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	s.app.RunCheckpoints(ctx, func(err error) {
		if s.log != nil {
			s.log.Warn("audit checkpoints", "err", err)
		}
	})
	return nil
}

// LoadSigningKey reads the checkpoint key from path, creating it (mode
// 0600) when the file does not exist; an empty path gives a fresh key.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := domain.DecodePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pemBytes, err := domain.EncodePrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	// Written whole to a temporary file, then linked into place: two
	// processes starting at once never read a half-written key, and the
	// second one uses the first one's.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit-signing-key-*")
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return LoadSigningKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	return k, nil
}
