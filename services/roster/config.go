// Package roster composes Roster's four services into the `roster` binary:
// `roster serve` runs all of them in one process on embedded defaults,
// `roster serve <service>` runs one against an external NATS.
package roster

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"roster.dev/pkg/mail"
)

// Config is the configuration of `roster serve` (api.md), from flags and
// ROSTER_<FLAG> environment variables.
type Config struct {
	Data       string
	HTTP       string
	NATSListen string
	NATSURL    string
	DB         string
	Mail       string
	PublicURL  string
	LogFormat  string
	LogLevel   string
	// The audit service.
	AuditSigningKey string
	AuditRetention  time.Duration
	AuditMaxBytes   int64
	// StreamReplicas is the replica count of the streams (1 embedded, 3 on
	// a NATS cluster: deploy/nats).
	StreamReplicas int
	// AckWait is how long JetStream leaves an event with a consumer that
	// took it and died before redelivering it (pkg/eventbus).
	AckWait time.Duration
	// SettleTimeout bounds how long a write waits for its effects in the
	// other services before answering (docs/architecture.md
	// "Read-your-writes").
	SettleTimeout time.Duration
}

func (c *Config) bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.Data, "data", "./data", "data directory (SQLite files, JetStream store, mail, operator token)")
	fs.StringVar(&c.HTTP, "http", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "embedded NATS client address, or off")
	fs.StringVar(&c.NATSURL, "nats-url", "", "use an external NATS (cluster) instead of the embedded server")
	fs.StringVar(&c.DB, "db", "", "database: empty for SQLite files in the data dir, or a postgres:// URL (a schema per service)")
	fs.StringVar(&c.Mail, "mail", "", "mail transport: file://DIR (one .eml file per message) or smtp://host:port (default file://<data>/mail)")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL of the links in mails (default: the HTTP server's address)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.AuditSigningKey, "audit-signing-key", "", "PEM file of the Ed25519 key that signs audit checkpoints, created when missing (default <data>/audit-signing.key); every audit process of an installation needs the same file")
	fs.DurationVar(&c.AuditRetention, "audit-retention", 30*24*time.Hour, "how long the public audit stream keeps records (0: forever); the audit log itself keeps everything")
	fs.Int64Var(&c.AuditMaxBytes, "audit-max-bytes", 0, "size cap of the public audit stream in bytes, oldest records dropped first (0: none)")
	fs.DurationVar(&c.AckWait, "ack-wait", 30*time.Second, "how long an event delivered to a process that died stays with it before another process gets it (1s to 10m); longer than the slowest event handler")
	fs.DurationVar(&c.SettleTimeout, "settle-timeout", 10*time.Second, "how long a write request waits for the services that derive state from it before it answers anyway, with Roster-Consistency: pending (100ms to 5m)")
	fs.IntVar(&c.StreamReplicas, "stream-replicas", 1, "replica count of the JetStream streams Roster creates or updates: 1 to 5, more than 1 only with --nats-url (3 on a 3-node cluster)")
}

// applyEnv fills every flag not given on the command line from
// ROSTER_<FLAG> (dashes become underscores).
func applyEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		env := "ROSTER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}

func (c *Config) validate() error {
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	}
	if c.Data == "" {
		return errors.New("--data must not be empty")
	}
	if c.AuditRetention < 0 || c.AuditMaxBytes < 0 {
		return errors.New("--audit-retention and --audit-max-bytes must not be negative")
	}
	if c.AckWait < time.Second || c.AckWait > 10*time.Minute {
		return fmt.Errorf("--ack-wait must be 1s to 10m, got %v", c.AckWait)
	}
	if c.SettleTimeout < 100*time.Millisecond || c.SettleTimeout > 5*time.Minute {
		return fmt.Errorf("--settle-timeout must be 100ms to 5m, got %v", c.SettleTimeout)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return fmt.Errorf("--stream-replicas must be 1 to 5 (JetStream's limit), got %d", c.StreamReplicas)
	}
	if c.StreamReplicas > 1 && c.NATSURL == "" {
		return fmt.Errorf("--stream-replicas %d needs --nats-url: the embedded NATS is one node", c.StreamReplicas)
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") {
		return errors.New("--db must be empty (SQLite) or a postgres:// URL")
	}
	if c.Mail != "" {
		if _, err := mail.Open(c.Mail); err != nil {
			return fmt.Errorf("--mail: %w", err)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--public-url must be an absolute http(s) URL such as https://roster.example.com, got %q", c.PublicURL)
		}
	}
	return nil
}

// operatorToken returns ROSTER_OPERATOR_TOKEN, or the token in
// <data>/operator.token, generating it (mode 0600) on first start; fresh
// reports a newly generated token, which is printed once.
func operatorToken(dataDir string) (token, path string, fresh bool, err error) {
	if t := os.Getenv("ROSTER_OPERATOR_TOKEN"); t != "" {
		return t, "", false, nil
	}
	path = filepath.Join(dataDir, "operator.token")
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, path, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", path, false, fmt.Errorf("read operator token: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", path, false, err
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token = "rop_" + base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", path, false, fmt.Errorf("write operator token: %w", err)
	}
	return token, path, true, nil
}
