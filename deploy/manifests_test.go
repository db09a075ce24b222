package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"roster.dev/services/roster"
)

// services are Roster's services, each deployed on its own.
var services = []string{"identity", "seatbilling", "rolepolicy", "audit"}

// decodeStrict decodes every YAML document of path into a new T, failing on
// any field T does not know (a typo, a field at the wrong level).
func decodeStrict[T any](t *testing.T, path string) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
}

// serveEnv is every environment variable `roster serve` reads: ROSTER_<FLAG>
// for each of its flags, and the ones it reads besides.
func serveEnv(t *testing.T) map[string]bool {
	t.Helper()
	serve, _, err := roster.NewCommand(io.Discard, io.Discard).Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]bool{"ROSTER_OPERATOR_TOKEN": true, "OTEL_EXPORTER_OTLP_ENDPOINT": true, "OTEL_SERVICE_NAME": true}
	for _, name := range []string{"http", "data", "nats-url", "db", "stream-replicas", "log-format", "audit-signing-key"} {
		if serve.Flags().Lookup(name) == nil {
			t.Fatalf("roster serve has no --%s", name)
		}
	}
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		env["ROSTER_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))] = true
	})
	return env
}

// Compose file (compose-spec), the parts Roster uses.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]struct{} `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Secrets     []string          `yaml:"secrets"`
	Deploy      *struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	StopGracePeriod string `yaml:"stop_grace_period"`
	Restart         string `yaml:"restart"`
}

// ${VAR}, ${VAR:?message}: compose interpolation.
var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:\?[^}]*)?\}`)

// envExample reads the KEY=value lines of an .env example file.
func envExample(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=value", path, line)
		}
		out[k] = v
	}
	return out
}

// deploy/compose/compose.yaml (issue 13, item 4), parsed strictly: three
// NATS nodes from deploy/nats/nats.conf, PostgreSQL initialised by
// deploy/postgres, the collector and Jaeger, and each service with 2
// replicas, `roster serve <service>`, only environment variables roster
// reads, its own NATS user and PostgreSQL role, streams with replicas 3.
func TestComposeFile(t *testing.T) {
	path := filepath.Join("compose", "compose.yaml")
	f := decodeStrict[composeFile](t, path)[0]
	env := serveEnv(t)
	example := envExample(t, filepath.Join("compose", ".env.example"))
	raw, _ := os.ReadFile(path)
	for _, m := range interpolation.FindAllStringSubmatch(string(raw), -1) {
		if _, ok := example[m[1]]; !ok {
			t.Errorf("compose.yaml uses ${%s}, which .env.example does not set", m[1])
		}
	}
	// Bind mounts name files that exist.
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := f.Volumes[src]; !ok {
				t.Errorf("%s mounts the undeclared volume %s", name, src)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("%s depends on the unknown service %s", name, dep)
			}
		}
	}

	var natsImage string
	for i, n := range []string{"nats-1", "nats-2", "nats-3"} {
		s, ok := f.Services[n]
		if !ok {
			t.Fatalf("no service %s", n)
		}
		if i == 0 {
			natsImage = s.Image
		}
		if s.Image != natsImage || !strings.HasPrefix(s.Image, "nats:") || !slices.Equal(s.Command, []string{"-c", "/etc/nats/nats.conf"}) ||
			!slices.Contains(s.Volumes, "../nats/nats.conf:/etc/nats/nats.conf:ro") || s.Environment["NATS_SERVER_NAME"] != n || s.Healthcheck == nil {
			t.Errorf("%s: %+v", n, s)
		}
		for _, r := range []string{"NATS_ROUTE_1", "NATS_ROUTE_2", "NATS_ROUTE_3"} {
			if !strings.Contains(s.Environment[r], "@nats-"+r[len(r)-1:]+":6222") {
				t.Errorf("%s: %s = %q", n, r, s.Environment[r])
			}
		}
		for user, v := range natsUsers {
			if s.Environment[v] == "" {
				t.Errorf("%s does not give the NATS user %s its password (%s)", n, user, v)
			}
		}
	}
	pg := f.Services["postgres"]
	if !slices.Contains(pg.Volumes, "../postgres/init.sql:/docker-entrypoint-initdb.d/01-init.sql:ro") ||
		!slices.Contains(pg.Volumes, "../postgres/passwords.sh:/docker-entrypoint-initdb.d/02-passwords.sh:ro") || pg.Environment["POSTGRES_DB"] != "roster" {
		t.Errorf("postgres: %+v", pg)
	}
	if c := f.Services["otel-collector"]; !slices.Contains(c.Volumes, "./otel-collector.yaml:/etc/otelcol/config.yaml:ro") {
		t.Errorf("otel-collector: %+v", c)
	}
	if _, ok := f.Services["jaeger"]; !ok {
		t.Error("no jaeger")
	}

	for _, name := range services {
		s, ok := f.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if s.Deploy == nil || s.Deploy.Replicas != 2 {
			t.Errorf("%s: replicas %+v, want 2", name, s.Deploy)
		}
		if !slices.Equal(s.Command, []string{"serve", name}) || s.Image != "roster:dev" || s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: image %q, command %v, build %+v", name, s.Image, s.Command, s.Build)
		}
		if _, err := os.Stat(filepath.Join("compose", s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for k := range s.Environment {
			if !env[k] {
				t.Errorf("%s sets %s, which roster serve does not read", name, k)
			}
		}
		e := s.Environment
		up := strings.ToUpper(name)
		if e["ROSTER_HTTP"] != "0.0.0.0:8080" || e["ROSTER_STREAM_REPLICAS"] != "3" ||
			strings.Count(e["ROSTER_NATS_URL"], "nats://"+name+":${ROSTER_NATS_"+up+"_PASSWORD}@nats-") != 3 ||
			!strings.HasPrefix(e["ROSTER_DB"], "postgres://roster_"+name+":${ROSTER_PG_"+up+"_PASSWORD}@postgres:5432/roster") ||
			e["OTEL_EXPORTER_OTLP_ENDPOINT"] != "http://otel-collector:4318" {
			t.Errorf("%s environment: %v", name, e)
		}
		for _, dep := range []string{"nats-1", "nats-2", "nats-3", "postgres"} {
			if s.DependsOn[dep].Condition != "service_healthy" {
				t.Errorf("%s does not wait for %s to be healthy", name, dep)
			}
		}
	}
	audit := f.Services["audit"]
	if key := audit.Environment["ROSTER_AUDIT_SIGNING_KEY"]; key != "/run/secrets/audit-signing.key" || !slices.Contains(audit.Secrets, "audit-signing.key") {
		t.Errorf("audit's signing key: %q, secrets %v", key, audit.Secrets)
	}
	if _, ok := f.Secrets["audit-signing.key"]; !ok {
		t.Error("no secret audit-signing.key")
	}
	t.Logf("compose services: %v", slices.Sorted(maps.Keys(f.Services)))
}
