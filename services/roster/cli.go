package roster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/natsembed"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/telemetry"
	"roster.dev/services/audit"
	"roster.dev/services/identity"
	"roster.dev/services/rolepolicy"
	"roster.dev/services/roster/console"
	"roster.dev/services/seatbilling"
)

// Services returns a fresh instance of every service, in start order, with
// their default options.
func Services() []svc.Service {
	return []svc.Service{identity.New(), seatbilling.New(), rolepolicy.New(), audit.New()}
}

// ServicesFor returns every service configured by cfg.
func ServicesFor(cfg Config) []svc.Service {
	key := cfg.AuditSigningKey
	if key == "" {
		key = filepath.Join(cfg.Data, "audit-signing.key")
	}
	return []svc.Service{identity.New(), seatbilling.New(), rolepolicy.New(), audit.NewWith(audit.Options{SigningKeyFile: key})}
}

// NewCommand is the `roster` command.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "roster",
		Short:         "Roster: technician and user lifecycle platform",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCommand(stdout, stderr), deadLettersCommand(stdout))
	root.AddCommand(adminCommands(stdout)...)
	root.AddCommand(rolesCommands(stdout)...)
	root.AddCommand(layerCommands(stdout)...)
	root.AddCommand(seatsCommands(stdout)...)
	root.AddCommand(auditCommands(stdout)...)
	root.AddCommand(securityCommands(stdout)...)
	root.AddCommand(importCommand(stdout))
	root.AddCommand(offboardingCommand(stdout))
	return root
}

func serveCommand(stdout, stderr io.Writer) *cobra.Command {
	var cfg Config
	cmd := &cobra.Command{
		Use:   "serve [identity|seatbilling|rolepolicy|audit]",
		Short: "Run every service in one process (embedded NATS, SQLite), or one service against --nats-url",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			if err := cfg.validate(); err != nil {
				return err
			}
			services := ServicesFor(cfg)
			if len(args) == 1 {
				var one []svc.Service
				for _, s := range services {
					if s.Name() == args[0] {
						one = append(one, s)
					}
				}
				if len(one) == 0 {
					return fmt.Errorf("unknown service %q: one of identity, seatbilling, rolepolicy, audit", args[0])
				}
				if cfg.NATSURL == "" {
					return fmt.Errorf("roster serve %s runs one service against an external NATS: set --nats-url", args[0])
				}
				services = one
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// ROSTER_CPU_PROFILE: a CPU profile of the whole run, written
			// at shutdown (`make bench` profiles the lifecycle run with it;
			// docs/performance.md).
			if path := os.Getenv("ROSTER_CPU_PROFILE"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return fmt.Errorf("ROSTER_CPU_PROFILE: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("ROSTER_CPU_PROFILE: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			return Serve(ctx, cfg, services, stdout, stderr)
		},
	}
	cfg.bind(cmd.Flags())
	return cmd
}

// Serve runs services until ctx ends, then drains.
func Serve(ctx context.Context, cfg Config, services []svc.Service, stdout, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log, err := telemetry.NewLogger(stderr, cfg.LogFormat, level)
	if err != nil {
		return err
	}
	shutdownTracing, err := telemetry.SetupTracing(ctx, "roster")
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())

	token, tokenPath, fresh, err := operatorToken(cfg.Data)
	if err != nil {
		return err
	}
	natsListen := cfg.NATSListen
	if cfg.NATSURL != "" {
		natsListen = "off"
	}
	host, err := svc.Start(ctx, svc.Config{
		DataDir: cfg.Data, HTTP: cfg.HTTP, NATSListen: natsListen, NATSURL: cfg.NATSURL,
		DB: cfg.DB, OperatorToken: token, Log: log, Mail: cfg.Mail, PublicURL: cfg.PublicURL,
		AuditMaxAge: cfg.AuditRetention, AuditMaxBytes: cfg.AuditMaxBytes, StreamReplicas: cfg.StreamReplicas,
		AckWait: cfg.AckWait, SettleTimeout: cfg.SettleTimeout,
		Routes: console.Mount, // the web console at / (issue 12)
	}, services...)
	if err != nil {
		return err
	}
	var names []string
	for _, s := range services {
		names = append(names, s.Name())
	}
	select {
	case <-host.Ready():
		fmt.Fprintf(stdout, "Roster is ready at %s (services: %s)\n", host.URL(), strings.Join(names, ", "))
		switch {
		case fresh:
			fmt.Fprintf(stdout, "Operator token (shown once, saved in %s):\n  %s\n", tokenPath, token)
		case tokenPath != "":
			fmt.Fprintf(stdout, "Operator token: in %s\n", tokenPath)
		}
	case err := <-host.Errors():
		_ = host.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	select {
	case <-ctx.Done():
	case err := <-host.Errors():
		log.Error("component stopped; shutting down", "err", err)
	}
	log.Info("shutting down: draining HTTP and consumers")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return host.Stop(stopCtx)
}

func deadLettersCommand(stdout io.Writer) *cobra.Command {
	var natsURL string
	var limit int
	cmd := &cobra.Command{
		Use:   "deadletters",
		Short: "List events that a consumer gave up on (ROSTER_DEADLETTER)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			nc, err := natsembed.Connector(natsURL)("roster-cli")
			if err != nil {
				return err
			}
			defer nc.Close()
			dls, err := eventbus.ListDeadLetters(nc, limit)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			for _, d := range dls {
				if err := enc.Encode(d); err != nil {
					return err
				}
			}
			if len(dls) == 0 {
				fmt.Fprintln(os.Stderr, "no dead letters")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS to read from")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return cmd
}

// Main runs the command line and returns the exit code.
func Main(args []string) int {
	cmd := NewCommand(os.Stdout, os.Stderr)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		if !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "roster:", err)
		}
		return 1
	}
	return 0
}
