// Command bench measures Roster the way users run it (issue 11, `make
// bench`): it starts the `roster serve` binary as a child process on a
// fresh data dir and talks to it over HTTP and NATS, and measures each
// figure beside its baseline in the same run, so that ratios hold on a
// noisy machine. It writes bench/results.json and prints a table;
// docs/performance.md explains the figures.
//
//	go run ./bench -roster bin/roster             # default sizes, ~15 minutes here
//	go run ./bench -roster bin/roster -full       # issue 11's sizes
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/natsembed"
	"roster.dev/pkg/rpc"
	"roster.dev/pkg/svc"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
)

const operator = "bench-operator-token"

type config struct {
	roster      string
	technicians int
	concurrency int
	baseline    int
	checks      int
	out         string
	log         string
	profile     string
	goBench     bool
	idle        time.Duration
	// paced: a second lifecycle run at a fixed rate below saturation, for
	// the request-to-audit latency (0: half the measured throughput).
	paced     int
	pacedRate float64
	// deployment: all-in-one, or separate (four processes on an external
	// nats-server, SQLite files unless db names a PostgreSQL database).
	deployment string
	natsServer string
	db         string
	// HRIS end-to-end: hrisRate webhooks/s for hrisSeconds, up to
	// hrisInFlight at once.
	hrisRate     float64
	hrisSeconds  float64
	hrisInFlight int
	// Bulk paths: CSV rows imported, SCIM users created.
	importRows int
	scimUsers  int
	// auditRecords: the chain of the audit Go benchmarks (-gobench).
	auditRecords int
}

func main() {
	var c config
	full := flag.Bool("full", false, "issue 11's sizes: 20,000 technicians, 200,000 baseline messages, 20,000 checks")
	flag.StringVar(&c.roster, "roster", "bin/roster", "the roster binary to run (make bench builds it)")
	flag.IntVar(&c.technicians, "technicians", 2000, "technicians created in the lifecycle run")
	flag.IntVar(&c.concurrency, "concurrency", 32, "requests in flight at once in the lifecycle run")
	flag.IntVar(&c.baseline, "baseline-msgs", 50000, "messages of the raw JetStream baseline")
	flag.IntVar(&c.checks, "checks", 5000, "access checks per transport")
	flag.StringVar(&c.out, "out", "bench/results.json", "where to write the results")
	flag.StringVar(&c.log, "log", "bench/serve.log", "where the started processes' stderr (warnings and errors) goes (empty: nowhere)")
	flag.StringVar(&c.profile, "cpuprofile", "bench/lifecycle.cpu.pprof", "CPU profile of roster serve during the lifecycle run (empty: none)")
	flag.BoolVar(&c.goBench, "gobench", true, "also run rolepolicy's Go benchmarks (in-process check on the 10,000 × 1,000 × 1,000 fixture)")
	flag.DurationVar(&c.idle, "idle", 5*time.Second, "how long roster serve idles before its RSS is read")
	flag.StringVar(&c.deployment, "deployment", "all-in-one", "all-in-one, or separate: four roster serve <service> processes on an external nats-server behind a front proxy")
	flag.StringVar(&c.natsServer, "nats-server", "nats-server", "the nats-server binary of -deployment separate (go install github.com/nats-io/nats-server/v2@v2.15.2)")
	flag.StringVar(&c.db, "db", "", "-deployment separate: a postgres:// URL of an empty database (default: SQLite files)")
	flag.IntVar(&c.paced, "paced", 500, "technicians of the paced run (latency below saturation)")
	flag.Float64Var(&c.pacedRate, "paced-rate", 0, "technicians/s of the paced run (0: half the measured throughput)")
	flag.Float64Var(&c.hrisRate, "hris-rate", 500, "HRIS webhooks offered per second (0: skip the HRIS run)")
	flag.Float64Var(&c.hrisSeconds, "hris-seconds", 20, "how long the HRIS webhooks are offered")
	flag.IntVar(&c.hrisInFlight, "hris-in-flight", 256, "HRIS webhooks in flight at most (the sender is open loop up to this)")
	flag.IntVar(&c.importRows, "import-rows", 1000, "rows of the CSV import (0: skip)")
	flag.IntVar(&c.scimUsers, "scim-users", 1000, "users created through SCIM (0: skip)")
	flag.IntVar(&c.auditRecords, "audit-records", 1_000_000, "records of the audit Go benchmarks' chain (-gobench; 0: skip them)")
	flag.Parse()
	if *full {
		c.technicians, c.baseline, c.checks = 20000, 200000, 20000
		c.importRows, c.scimUsers = 10000, 10000
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Results is bench/results.json.
type Results struct {
	Time       time.Time `json:"time"`
	Machine    Machine   `json:"machine"`
	Deployment string    `json:"deployment"`
	Lifecycle  Lifecycle `json:"lifecycle"`
	Paced      Lifecycle `json:"lifecycle_paced"`
	Baseline   Baseline  `json:"jetstream_baseline"`
	Access     []Access  `json:"access_checks"`
	Audit      Audit     `json:"audit"`
	Footprint  Footprint `json:"footprint"`
	HRIS       *HRIS     `json:"hris,omitempty"`
	Bulk       Bulk      `json:"bulk"`
	Audit1M    *Audit1M  `json:"audit_go_benchmark,omitempty"`
	// Retries: requests answered 5xx or cut off and retried with their
	// Idempotency-Key, over the whole run.
	Retries     int64    `json:"client_retries"`
	NotMeasured []string `json:"not_measured"`
}

type Machine struct {
	CPUs      int    `json:"cpus"`
	CPU       string `json:"cpu"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
}

type Lifecycle struct {
	Technicians     int     `json:"technicians"`
	Concurrency     int     `json:"concurrency"`
	Rate            float64 `json:"offered_rate_per_s,omitempty"`
	Seconds         float64 `json:"seconds"`
	PerSecond       float64 `json:"technicians_per_s"`
	EventsPerTech   float64 `json:"events_per_technician"`
	EventsPerSecond float64 `json:"events_per_s"`
	// RequestMs: the POST's own latency; ToAuditMs: from sending the POST
	// to the last of technician.created, seat.assigned and role.assigned
	// (Beginner) readable in the audit log over HTTP.
	RequestMs Percentiles `json:"request_ms"`
	ToAuditMs Percentiles `json:"request_to_audit_ms"`
	Profile   string      `json:"cpu_profile,omitempty"`
	FracPub   float64     `json:"fraction_of_baseline_publish"`
	FracCons  float64     `json:"fraction_of_baseline_consume"`
}

type Baseline struct {
	Messages       int     `json:"messages"`
	Bytes          int     `json:"message_bytes"`
	PublishPerSec  float64 `json:"async_publish_per_s"`
	ConsumePerSec  float64 `json:"durable_consume_ack_per_s"`
	PublishSeconds float64 `json:"publish_seconds"`
	ConsumeSeconds float64 `json:"consume_seconds"`
}

type Access struct {
	Transport string      `json:"transport"`
	Fixture   string      `json:"fixture"`
	OpsPerSec float64     `json:"ops_per_s"`
	Micros    Percentiles `json:"latency_us"`
	Note      string      `json:"note,omitempty"`
}

type Audit struct {
	Records    int         `json:"records"`
	VerifyMs   float64     `json:"verify_ms"`
	QueryMs    Percentiles `json:"query_ms"`
	QueryNote  string      `json:"query"`
	VerifiedOK bool        `json:"verified_ok"`
}

type Footprint struct {
	ColdStartMs    []float64 `json:"cold_start_ms"`
	IdleRSSMB      float64   `json:"idle_rss_mb"`
	IdlePeakRSSMB  float64   `json:"idle_peak_rss_mb"`
	AfterTechs     int       `json:"after_technicians"`
	AfterRSSMB     float64   `json:"after_rss_mb"`
	AfterPeakRSSMB float64   `json:"after_peak_rss_mb"`
}

type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(ds []time.Duration, unit time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		return float64(ds[int(p*float64(len(ds)-1))]) / float64(unit)
	}
	return Percentiles{P50: round(at(0.50)), P95: round(at(0.95)), P99: round(at(0.99)), Max: round(at(1))}
}

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func run(c config) error {
	bin, err := filepath.Abs(c.roster)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no roster binary at %s: run make build (or make bench)", bin)
	}
	c.roster = bin
	if c.log != "" {
		if serveLog, err = os.Create(c.log); err != nil {
			return err
		}
		defer serveLog.Close()
	}
	deployment := "all-in-one: roster serve (embedded NATS JetStream, SQLite files), one process on this machine"
	switch c.deployment {
	case "all-in-one":
	case "separate":
		if c.natsServer, err = exec.LookPath(c.natsServer); err != nil {
			return fmt.Errorf("-deployment separate needs nats-server: go install github.com/nats-io/nats-server/v2@v2.15.2 (%w)", err)
		}
		store := "SQLite files"
		if c.db != "" {
			store = "PostgreSQL (a schema per service)"
			// One database for every start: the figures after the first
			// start are not on fresh data.
		}
		deployment = "separate: nats-server v2.15.2 (JetStream) + roster serve identity|seatbilling|rolepolicy|audit, five processes, " +
			store + ", behind a front proxy in the bench process"
	default:
		return fmt.Errorf("-deployment must be all-in-one or separate, got %q", c.deployment)
	}
	res := Results{Time: time.Now().UTC(), Machine: machine(),
		Deployment: deployment,
		NotMeasured: []string{
			"RSS after 100,000 technicians: -technicians 100000 (about half an hour of load here)",
			"the other deployment: run again with -deployment " + map[string]string{"all-in-one": "separate", "separate": "all-in-one"}[c.deployment],
		}}

	// Footprint: cold start to ready, three times on fresh data dirs, and
	// the RSS of the last one after idling.
	for i := range 3 {
		ch, err := startServe(c, "")
		if err != nil {
			return err
		}
		res.Footprint.ColdStartMs = append(res.Footprint.ColdStartMs, round(float64(ch.started)/float64(time.Millisecond)))
		if i == 2 {
			fmt.Fprintf(os.Stderr, "idling %v for the RSS…\n", c.idle)
			time.Sleep(c.idle)
			res.Footprint.IdleRSSMB, res.Footprint.IdlePeakRSSMB = ch.rss()
		}
		if err := ch.stop(); err != nil {
			return err
		}
	}

	// The lifecycle run and everything measured on its data.
	profile := ""
	if c.profile != "" {
		if profile, err = filepath.Abs(c.profile); err != nil {
			return err
		}
	}
	ch, err := startServe(c, profile)
	if err != nil {
		return err
	}
	defer ch.kill()
	acc, err := createAccount(ch, c.technicians+c.paced)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "lifecycle: %d technicians, %d in flight…\n", c.technicians, c.concurrency)
	lc, ids, msgBytes, err := lifecycle(ch, acc, c, 0, c.technicians, 0)
	if err != nil {
		return err
	}
	res.Lifecycle = lc
	if c.paced > 0 {
		rate := c.pacedRate
		if rate <= 0 {
			rate = max(1, round(lc.PerSecond/2))
		}
		fmt.Fprintf(os.Stderr, "lifecycle paced: %d technicians at %.1f/s…\n", c.paced, rate)
		pl, pids, _, err := lifecycle(ch, acc, c, c.technicians, c.paced, rate)
		if err != nil {
			return err
		}
		res.Paced = pl
		ids = append(ids, pids...)
	}
	res.Footprint.AfterTechs = c.technicians
	res.Footprint.AfterRSSMB, res.Footprint.AfterPeakRSSMB = ch.rss()

	fmt.Fprintln(os.Stderr, "audit verify and queries…")
	if res.Audit, err = auditFigures(ch, acc, ids); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "access checks over HTTP and NATS…")
	acs, err := accessChecks(ch, acc, ids, c.checks)
	if err != nil {
		return err
	}
	res.Access = append(res.Access, acs...)
	if err := ch.stop(); err != nil {
		return err
	}
	if profile != "" {
		res.Lifecycle.Profile = c.profile
	}

	// HRIS and the bulk paths on a second fresh start, so the lifecycle's
	// CPU profile is the lifecycle's alone; an account each.
	if err := hrisAndBulk(c, &res); err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "JetStream baseline: %d messages of %d bytes…\n", c.baseline, msgBytes)
	if res.Baseline, err = baseline(c.baseline, msgBytes); err != nil {
		return err
	}
	if res.Baseline.PublishPerSec > 0 {
		res.Lifecycle.FracPub = round(res.Lifecycle.EventsPerSecond / res.Baseline.PublishPerSec * 100)
	}
	if res.Baseline.ConsumePerSec > 0 {
		res.Lifecycle.FracCons = round(res.Lifecycle.EventsPerSecond / res.Baseline.ConsumePerSec * 100)
	}

	if c.goBench {
		fmt.Fprintln(os.Stderr, "rolepolicy's Go benchmarks…")
		gb, err := goBenchmarks()
		if err != nil {
			return err
		}
		res.Access = append(gb, res.Access...)
		if c.auditRecords > 0 {
			fmt.Fprintf(os.Stderr, "audit's Go benchmarks over %d records (builds the chain first)…\n", c.auditRecords)
			if res.Audit1M, err = auditBenchmarks(c.auditRecords); err != nil {
				return err
			}
		}
	}
	if res.Audit1M == nil {
		res.NotMeasured = append(res.NotMeasured, "audit over 1,000,000 records: -gobench (services/audit/adapters BenchmarkAudit1M*)")
	}

	res.Retries = retries.Load()
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(c.out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	printTable(os.Stdout, res)
	fmt.Printf("\nwritten: %s", c.out)
	if profile != "" {
		fmt.Printf(", CPU profile %s (go tool pprof -top %s %s)", c.profile, c.roster, c.profile)
	}
	fmt.Println()
	return nil
}

// hrisAndBulk runs the HRIS end-to-end figure and the bulk paths on a
// fresh start of the deployment, an account each.
func hrisAndBulk(c config, res *Results) error {
	n := int(c.hrisRate * c.hrisSeconds)
	for _, skip := range []struct {
		off  bool
		what string
	}{{n == 0, "HRIS end-to-end: -hris-rate 0"}, {c.importRows == 0, "CSV import: -import-rows 0"}, {c.scimUsers == 0, "SCIM create: -scim-users 0"}} {
		if skip.off {
			res.NotMeasured = append(res.NotMeasured, skip.what)
		}
	}
	if n == 0 && c.importRows == 0 && c.scimUsers == 0 {
		return nil
	}
	ch, err := startServe(c, "")
	if err != nil {
		return err
	}
	defer ch.kill()
	if n > 0 {
		acc, err := createAccount(ch, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "HRIS: %d signed webhooks at %.0f/s…\n", n, c.hrisRate)
		h, err := benchHRIS(ch, acc, n, c.hrisRate, c.hrisInFlight)
		if err != nil {
			return err
		}
		res.HRIS = &h
	}
	if c.importRows > 0 {
		acc, err := createAccount(ch, c.importRows)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "CSV import: %d rows…\n", c.importRows)
		if err := benchImport(ch, acc, c.importRows, &res.Bulk); err != nil {
			return err
		}
	}
	if c.scimUsers > 0 {
		acc, err := createAccount(ch, c.scimUsers)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "SCIM: %d users, %d at once…\n", c.scimUsers, c.concurrency)
		if err := benchSCIM(ch, acc, c.scimUsers, c.concurrency, &res.Bulk); err != nil {
			return err
		}
	}
	return ch.stop()
}

// serve is the system under test: one `roster serve` child (all-in-one)
// or, separately, a nats-server and four `roster serve <service>` children
// behind a front proxy in this process (separate).
type serve struct {
	procs   []*proc
	dir     string
	url     string
	natsURL string
	started time.Duration
	front   *http.Server
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan error
	stderr *bytes.Buffer
	ready  func() bool
}

// serveLog is bench/serve.log: the stderr of every process started, each
// line prefixed with the process's name.
var (
	serveLog   *os.File
	serveLogMu sync.Mutex
)

type prefixed struct{ name string }

func (p prefixed) Write(b []byte) (int, error) {
	serveLogMu.Lock()
	defer serveLogMu.Unlock()
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			fmt.Fprintf(serveLog, "%s: %s", p.name, l)
		}
	}
	return len(b), nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (s *serve) spawn(name string, ready func() bool, exe string, env []string, args ...string) error {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1), stderr: &bytes.Buffer{}, ready: ready}
	cmd.Stderr = p.stderr
	if serveLog != nil {
		// Every process's warnings and errors, also kept in a file: a 5xx
		// says only "the error was logged".
		fmt.Fprintf(serveLog, "=== %s %s: %s\n", time.Now().UTC().Format(time.RFC3339), name, strings.Join(args, " "))
		cmd.Stderr = io.MultiWriter(p.stderr, prefixed{name})
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { p.done <- cmd.Wait() }()
	s.procs = append(s.procs, p)
	return nil
}

func readyz(url string) func() bool {
	return func() bool {
		res, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}
}

func dials(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
}

// awaitReady waits for every process started so far.
func (s *serve) awaitReady(t0 time.Time) error {
	for _, p := range s.procs {
		for !p.ready() {
			select {
			case err := <-p.done:
				s.kill()
				return fmt.Errorf("%s exited: %v\n%s", p.name, err, p.stderr)
			case <-time.After(5 * time.Millisecond):
			}
			if time.Since(t0) > time.Minute {
				s.kill()
				return fmt.Errorf("%s not ready in a minute", p.name)
			}
		}
	}
	return nil
}

// startServe starts the deployment on a fresh data dir and waits until
// every process is ready: started is the cold start, exec to ready.
func startServe(c config, cpuProfile string) (*serve, error) {
	dir, err := os.MkdirTemp("", "roster-bench-")
	if err != nil {
		return nil, err
	}
	natsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &serve{dir: dir, natsURL: "nats://" + natsAddr}
	env := []string{"ROSTER_OPERATOR_TOKEN=" + operator}
	t0 := time.Now()
	if c.deployment == "all-in-one" {
		httpAddr, err := freePort()
		if err != nil {
			return nil, err
		}
		s.url = "http://" + httpAddr
		if cpuProfile != "" {
			env = append(env, "ROSTER_CPU_PROFILE="+cpuProfile)
		}
		if err := s.spawn("roster serve", readyz(s.url), c.roster, env,
			"serve", "--data", dir, "--http", httpAddr, "--nats-listen", natsAddr, "--log-level", "warn"); err != nil {
			return nil, err
		}
		if err := s.awaitReady(t0); err != nil {
			return nil, err
		}
		s.started = time.Since(t0)
		return s, nil
	}
	host, port, _ := net.SplitHostPort(natsAddr)
	if err := s.spawn("nats-server", dials(natsAddr), c.natsServer, nil,
		"-js", "-sd", filepath.Join(dir, "nats"), "-a", host, "-p", port); err != nil {
		return nil, err
	}
	if err := s.awaitReady(t0); err != nil {
		return nil, err
	}
	backends := map[string]*httputil.ReverseProxy{}
	for _, name := range []string{"identity", "seatbilling", "rolepolicy", "audit"} {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		e := env
		if cpuProfile != "" {
			e = append(e, "ROSTER_CPU_PROFILE="+cpuProfile+"."+name)
		}
		args := []string{"serve", name, "--nats-url", s.natsURL, "--data", dir, "--http", addr, "--log-level", "warn"}
		if c.db != "" {
			args = append(args, "--db", c.db)
		}
		if err := s.spawn(name, readyz("http://"+addr), c.roster, e, args...); err != nil {
			return nil, err
		}
		backends[name] = httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	}
	if err := s.awaitReady(t0); err != nil {
		return nil, err
	}
	s.started = time.Since(t0)
	frontAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", frontAddr)
	if err != nil {
		return nil, err
	}
	s.url = "http://" + frontAddr
	s.front = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backends[svc.ServiceOf(r.URL.Path)].ServeHTTP(w, r)
	})}
	go s.front.Serve(ln)
	return s, nil
}

// stop sends SIGTERM to the roster processes, then the nats-server (the
// CPU profiles are written on the way out), and removes the data dir.
func (s *serve) stop() error {
	if s.front != nil {
		s.front.Close()
	}
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil && p.name != "nats-server" {
				errs = append(errs, fmt.Errorf("%s: %v\n%s", p.name, err, p.stderr))
			}
		case <-time.After(45 * time.Second):
			_ = p.cmd.Process.Kill()
			errs = append(errs, fmt.Errorf("%s did not drain in 45 s", p.name))
		}
	}
	os.RemoveAll(s.dir)
	return errors.Join(errs...)
}

func (s *serve) kill() {
	for _, p := range s.procs {
		_ = p.cmd.Process.Kill()
	}
	os.RemoveAll(s.dir)
}

// rss is the sum over the processes.
func (s *serve) rss() (now, peak float64) {
	for _, p := range s.procs {
		n, k := rss(p.cmd.Process.Pid)
		now, peak = now+n, peak+k
	}
	return round(now), round(peak)
}

// rss reads the resident set and its peak (VmHWM) in MB.
func rss(pid int) (now, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			now = round(kb / 1024)
		case "VmHWM:":
			peak = round(kb / 1024)
		}
	}
	return now, peak
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 60 * time.Second}

func call(method, url, token string, body any, out any) (int, error) {
	return callKey(method, url, token, "", body, out)
}

// retries counts the 5xx answers and transport errors retried by
// callRetry in the whole run (reported, so a run that needed them says so).
var retries atomic.Int64

// callRetry is call with an Idempotency-Key, retried as a client would on
// a 5xx or a transport error (up to 5 times, 200 ms apart): the same key
// makes a retry answer the first attempt's answer.
func callRetry(method, url, token, key string, body any, out any) (int, error) {
	for attempt := 0; ; attempt++ {
		code, err := callKey(method, url, token, key, body, out)
		if (err == nil && code < 500) || attempt == 5 {
			return code, err
		}
		if retries.Add(1) <= 3 {
			fmt.Fprintf(os.Stderr, "retrying (%d %v)\n", code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// doRetry sends the request newReq builds, again on a 5xx or a transport
// error (up to 5 times, 200 ms apart), and returns the last answer.
func doRetry(newReq func() *http.Request) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		res, err := client.Do(newReq())
		var code int
		var b []byte
		if err == nil {
			b, err = io.ReadAll(res.Body)
			res.Body.Close()
			code = res.StatusCode
		}
		if (err == nil && code < 500) || attempt == 5 {
			return code, b, err
		}
		if retries.Add(1) <= 3 {
			fmt.Fprintf(os.Stderr, "retrying (%d %v %s)\n", code, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func callKey(method, url, token, key string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	if res.StatusCode >= 500 {
		return res.StatusCode, fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, b)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, b)
		}
	}
	return res.StatusCode, nil
}

type account struct{ id, token string }

// createAccount opens a roster account with a seat for every technician
// (no seat purchases in the lifecycle run).
func createAccount(s *serve, techs int) (account, error) {
	var body struct {
		Account  struct{ ID string } `json:"account"`
		APIToken string              `json:"api_token"`
	}
	code, err := call("POST", s.url+"/v1/accounts", operator, map[string]any{
		"name": "Bench", "profile": "roster", "plan": "pro", "billing_period": "monthly", "seats": techs + 10,
		"admin": map[string]any{"email": "admin@bench.test", "first_name": "Ada", "last_name": "Admin"},
	}, &body)
	if err != nil || code != 201 {
		return account{}, fmt.Errorf("create account: %d %v", code, err)
	}
	acc := account{body.Account.ID, body.APIToken}
	for range 500 {
		if code, _ := call("GET", s.url+"/v1/accounts/"+acc.id+"/subscription", acc.token, nil, nil); code == 200 {
			return acc, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return account{}, errors.New("the subscription did not open")
}

type auditRecord struct {
	Sequence int64  `json:"sequence"`
	Action   string `json:"action"`
	Target   struct {
		ID string `json:"id"`
	} `json:"target"`
	Data map[string]any `json:"data"`
}

// follower reads the audit log as it grows and notes when each
// technician's three records (created, seat, Beginner role) were first
// readable.
type follower struct {
	mu   sync.Mutex
	seen map[string]uint8
	done map[string]time.Time
	// ids: a technician's id by its email (technician.created's data),
	// for the paths whose answer names no technician (HRIS, CSV import).
	ids  map[string]string
	last int64
}

func newFollower() *follower {
	return &follower{seen: map[string]uint8{}, done: map[string]time.Time{}, ids: map[string]string{}}
}

// follow reads the account's audit log from its current end every 20 ms
// until stop is called; stop returns the first error of a poll.
func (f *follower) follow(s *serve, acc account) (stop func() error, err error) {
	if _, err := f.poll(s, acc); err != nil {
		return nil, err
	}
	quit := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		for {
			select {
			case <-quit:
				errc <- nil
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := f.poll(s, acc); err != nil {
				errc <- err
				return
			}
		}
	}()
	var once sync.Once
	var ferr error
	return func() error {
		once.Do(func() { close(quit); ferr = <-errc })
		return ferr
	}, nil
}

// awaitEmails waits until the technician of every email is done and
// returns when each was, in the order of emails.
func (f *follower) awaitEmails(emails []string, limit time.Duration) ([]time.Time, error) {
	return f.await(len(emails), func(i int) string { return f.ids[emails[i]] }, limit)
}

// awaitIDs is awaitEmails by technician id.
func (f *follower) awaitIDs(ids []string, limit time.Duration) ([]time.Time, error) {
	return f.await(len(ids), func(i int) string { return ids[i] }, limit)
}

// await waits until the technicians idOf(0) … idOf(n-1) are done; idOf
// runs under f.mu.
func (f *follower) await(n int, idOf func(int) string, limit time.Duration) ([]time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		f.mu.Lock()
		at := make([]time.Time, n)
		got := 0
		for i := range n {
			if d, ok := f.done[idOf(i)]; ok {
				at[i] = d
				got++
			}
		}
		f.mu.Unlock()
		if got == n {
			return at, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d technicians usable in %v", got, n, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var lifecycleActions = map[string]uint8{"technician.created": 1, "seat.assigned": 2, "role.assigned": 4}

func (f *follower) poll(s *serve, acc account) (int, error) {
	n := 0
	for {
		url := s.url + "/v1/accounts/" + acc.id + "/audit?limit=500"
		if f.last > 0 {
			// The audit API's cursor carries the last sequence read
			// (services/audit/ports: "s1:" + sequence); the follower
			// resumes after the tail it has already seen.
			url += "&cursor=" + base64.RawURLEncoding.EncodeToString([]byte("s1:"+strconv.FormatInt(f.last, 10)))
		}
		var page struct {
			Data []auditRecord `json:"data"`
		}
		if code, err := call("GET", url, acc.token, nil, &page); err != nil || code != 200 {
			return n, fmt.Errorf("audit follow: %d %v", code, err)
		}
		now := time.Now()
		f.mu.Lock()
		for _, r := range page.Data {
			f.last = r.Sequence
			bit := lifecycleActions[r.Action]
			if bit == 0 {
				continue
			}
			if email, _ := r.Data["email"].(string); bit == 1 && email != "" {
				f.ids[email] = r.Target.ID
			}
			f.seen[r.Target.ID] |= bit
			if f.seen[r.Target.ID] == 7 {
				if _, ok := f.done[r.Target.ID]; !ok {
					f.done[r.Target.ID] = now
					n++
				}
			}
		}
		f.mu.Unlock()
		if len(page.Data) < 500 {
			return n, nil
		}
	}
}

func streamTotals(nc *nats.Conn) (msgs, bytes uint64, err error) {
	js, err := nc.JetStream()
	if err != nil {
		return 0, 0, err
	}
	for info := range js.StreamsInfo() {
		if strings.HasPrefix(info.Config.Name, "ROSTER_") && info.Config.Name != "ROSTER_AUDIT" && info.Config.Name != "ROSTER_DEADLETTER" {
			msgs += info.State.Msgs
			bytes += info.State.Bytes
		}
	}
	return msgs, bytes, nil
}

// lifecycle creates the technicians with bounded concurrency and waits
// until each is done (audit log over HTTP); it returns the figures, the
// technician ids and the mean size of an event on the bus.
func lifecycle(s *serve, acc account, c config, from, count int, rate float64) (Lifecycle, []string, int, error) {
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		return Lifecycle{}, nil, 0, err
	}
	defer nc.Close()
	msgs0, bytes0, err := streamTotals(nc)
	if err != nil {
		return Lifecycle{}, nil, 0, err
	}
	f := newFollower()
	stopFollow, err := f.follow(s, acc)
	if err != nil {
		return Lifecycle{}, nil, 0, err
	}

	type sent struct {
		id    string
		at    time.Time
		took  time.Duration
		email string
	}
	out := make([]sent, count)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				if rate > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
				}
				email := fmt.Sprintf("tech%06d@bench.test", from+i)
				var body struct{ ID string }
				t0 := time.Now()
				code, err := callRetry("POST", s.url+"/v1/accounts/"+acc.id+"/technicians", acc.token, "add-"+email,
					map[string]any{"email": email, "first_name": "Tess", "last_name": strconv.Itoa(i), "role": "Billing"}, &body)
				if err != nil || code != 201 {
					failed.Store(fmt.Errorf("add %s: %d %v", email, code, err))
					return
				}
				out[i] = sent{id: body.ID, at: t0, took: time.Since(t0), email: email}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		stopFollow()
		return Lifecycle{}, nil, 0, err
	}
	ids := make([]string, len(out))
	for i, x := range out {
		ids[i] = x.id
	}
	doneAt, err := f.awaitIDs(ids, 10*time.Minute)
	if serr := stopFollow(); err == nil {
		err = serr
	}
	if err != nil {
		return Lifecycle{}, nil, 0, err
	}
	var last time.Time
	var req, toAudit []time.Duration
	for i, x := range out {
		d := doneAt[i]
		if d.After(last) {
			last = d
		}
		req = append(req, x.took)
		toAudit = append(toAudit, d.Sub(x.at))
	}
	elapsed := last.Sub(start)
	msgs1, bytes1, err := streamTotals(nc)
	if err != nil {
		return Lifecycle{}, nil, 0, err
	}
	events := float64(msgs1 - msgs0)
	size := 256
	if msgs1 > msgs0 {
		size = int((bytes1 - bytes0) / (msgs1 - msgs0))
	}
	return Lifecycle{
		Technicians: count, Concurrency: c.concurrency, Rate: rate, Seconds: round(elapsed.Seconds()),
		PerSecond:     round(float64(count) / elapsed.Seconds()),
		EventsPerTech: round(events / float64(count)), EventsPerSecond: round(events / elapsed.Seconds()),
		RequestMs: percentiles(req, time.Millisecond), ToAuditMs: percentiles(toAudit, time.Millisecond),
	}, ids, size, nil
}

// auditFigures: verification of the account's whole chain, and the p99 of
// an audit query (one technician's records, by target).
func auditFigures(s *serve, acc account, ids []string) (Audit, error) {
	var a Audit
	var v struct {
		OK      bool `json:"ok"`
		Records int  `json:"records"`
	}
	t0 := time.Now()
	if code, err := call("GET", s.url+"/v1/accounts/"+acc.id+"/audit/verify", acc.token, nil, &v); err != nil || code != 200 {
		return a, fmt.Errorf("audit verify: %d %v", code, err)
	}
	a.VerifyMs, a.Records, a.VerifiedOK = round(float64(time.Since(t0))/float64(time.Millisecond)), v.Records, v.OK
	var lat []time.Duration
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		id := ids[rng.IntN(len(ids))]
		t := time.Now()
		if code, err := call("GET", s.url+"/v1/accounts/"+acc.id+"/audit?target="+id, acc.token, nil, nil); err != nil || code != 200 {
			return a, fmt.Errorf("audit query: %d %v", code, err)
		}
		lat = append(lat, time.Since(t))
	}
	a.QueryMs = percentiles(lat, time.Millisecond)
	a.QueryNote = "GET …/audit?target=<technician> (its records), 500 random technicians, one at a time"
	return a, nil
}

// accessChecks times checks against the running server: over HTTP (one
// at a time, then 16 at once for throughput, issue 18's figure) and over NATS request-reply
// from this process (TCP loopback, as a service in another process).
func accessChecks(s *serve, acc account, ids []string, n int) ([]Access, error) {
	var perms struct {
		Data []struct{ ID string } `json:"data"`
	}
	if code, err := call("GET", s.url+"/v1/permissions?profile=roster", acc.token, nil, &perms); err != nil || code != 200 || len(perms.Data) == 0 {
		return nil, fmt.Errorf("permissions: %d %v", code, err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	type q struct{ tech, perm string }
	qs := make([]q, n)
	for i := range qs {
		qs[i] = q{ids[rng.IntN(len(ids))], perms.Data[rng.IntN(len(perms.Data))].ID}
	}
	fixture := fmt.Sprintf("the lifecycle account: %d technicians, the 4 built-in roles, no sites", len(ids)+1)
	httpCheck := func(x q) error {
		var d struct {
			Allowed *bool `json:"allowed"`
		}
		code, err := call("POST", s.url+"/v1/accounts/"+acc.id+"/access/check", acc.token,
			map[string]any{"technician_id": x.tech, "permission": x.perm}, &d)
		if err != nil || code != 200 || d.Allowed == nil {
			return fmt.Errorf("access check: %d %v", code, err)
		}
		return nil
	}
	var out []Access
	lat := make([]time.Duration, 0, n)
	t0 := time.Now()
	for _, x := range qs {
		t := time.Now()
		if err := httpCheck(x); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
	}
	out = append(out, Access{Transport: "HTTP, one at a time", Fixture: fixture,
		OpsPerSec: round(float64(n) / time.Since(t0).Seconds()), Micros: percentiles(lat, time.Microsecond)})

	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	latN := make([]time.Duration, n)
	t0 = time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				if err := httpCheck(qs[i]); err != nil {
					firstErr.Store(err)
					return
				}
				latN[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	out = append(out, Access{Transport: "HTTP, 16 at once", Fixture: fixture,
		OpsPerSec: round(float64(n) / time.Since(t0).Seconds()), Micros: percentiles(latN, time.Microsecond)})

	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	lat = lat[:0]
	ctx := context.Background()
	t0 = time.Now()
	for _, x := range qs {
		var rep rolepolicyv1.CheckAccessReply
		t := time.Now()
		if err := rpc.Call(ctx, nc, rpc.CheckAccess, &rolepolicyv1.CheckAccessRequest{AccountId: acc.id, TechnicianId: x.tech, Permission: x.perm}, &rep); err != nil {
			return nil, fmt.Errorf("check over NATS: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	out = append(out, Access{Transport: "NATS request-reply to roster serve, TCP loopback, one at a time", Fixture: fixture,
		OpsPerSec: round(float64(n) / time.Since(t0).Seconds()), Micros: percentiles(lat, time.Microsecond)})
	return out, nil
}

// baseline is the bus's physical limit on this machine: an embedded
// JetStream server as roster serve runs it (file store under a temp dir),
// async publishes of size-byte messages, then a durable pull consumer
// acking each.
func baseline(n, size int) (Baseline, error) {
	dir, err := os.MkdirTemp("", "roster-bench-js-")
	if err != nil {
		return Baseline{}, err
	}
	defer os.RemoveAll(dir)
	ns, err := natsembed.Start(natsembed.Config{DataDir: dir, Listen: "off"})
	if err != nil {
		return Baseline{}, err
	}
	defer ns.Shutdown()
	nc, err := ns.Connect("bench")
	if err != nil {
		return Baseline{}, err
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.PublishAsyncMaxPending(4096))
	if err != nil {
		return Baseline{}, err
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: nats.FileStorage,
		Duplicates: 10 * time.Minute}); err != nil {
		return Baseline{}, err
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	t0 := time.Now()
	for i := range n {
		// A message id per message, as the outbox relay sets Nats-Msg-Id.
		if _, err := js.PublishAsync("bench.events."+strconv.Itoa(i%16), payload, nats.MsgId(strconv.Itoa(i))); err != nil {
			return Baseline{}, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		return Baseline{}, errors.New("baseline publish did not complete")
	}
	pub := time.Since(t0)
	sub, err := js.PullSubscribe("bench.>", "bench", nats.AckExplicit(), nats.BindStream("BENCH"))
	if err != nil {
		return Baseline{}, err
	}
	t0 = time.Now()
	got := 0
	for got < n {
		msgs, err := sub.Fetch(256, nats.MaxWait(5*time.Second))
		if err != nil {
			return Baseline{}, fmt.Errorf("baseline consume after %d: %w", got, err)
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				return Baseline{}, err
			}
		}
		got += len(msgs)
	}
	if err := nc.Flush(); err != nil {
		return Baseline{}, err
	}
	cons := time.Since(t0)
	return Baseline{Messages: n, Bytes: size,
		PublishPerSec: round(float64(n) / pub.Seconds()), ConsumePerSec: round(float64(n) / cons.Seconds()),
		PublishSeconds: round(pub.Seconds()), ConsumeSeconds: round(cons.Seconds())}, nil
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$`)

// goBenchmarks runs rolepolicy's check benchmarks (10,000 technicians,
// 1,000 roles, 1,000 sites; docs/performance.md) for the in-process
// figure, which no outside client can measure.
func goBenchmarks() ([]Access, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkCheck(InProcess|InProcessParallel|NATS)$",
		"-benchtime", "20000x", "roster.dev/services/rolepolicy")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench: %v\n%s%s", err, b, stderr.String())
	}
	fixture := "rolepolicy's fixture: 10,000 technicians, 1,000 roles, 1,000 sites (services/rolepolicy/bench_test.go)"
	var out []Access
	for _, l := range strings.Split(string(b), "\n") {
		m := benchLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		a := Access{Fixture: fixture, OpsPerSec: round(1e9 / ns), Micros: Percentiles{P50: round(ns / 1e3)}}
		metric := func(unit string) float64 { return metricOf(m[3], unit) }
		switch m[1] {
		case "BenchmarkCheckInProcess":
			a.Transport, a.Note = "in process", "mean per check; the Go benchmark's ns/op"
		case "BenchmarkCheckInProcessParallel":
			a.Transport, a.Note = "in process, every CPU", "mean per check across all CPUs"
		case "BenchmarkCheckNATS":
			a.Transport = "NATS request-reply, in-process connection"
			a.Micros = Percentiles{P50: metric("p50-µs"), P99: metric("p99-µs")}
		default:
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// Audit1M is the audit service's Go benchmarks over a long chain
// (services/audit/adapters/bench_test.go): verification of every record,
// and the p50/p99 of a page of each query filter.
type Audit1M struct {
	Records       int          `json:"records"`
	VerifySeconds float64      `json:"verify_seconds"`
	VerifyPerSec  float64      `json:"verify_records_per_s"`
	Queries       []AuditQuery `json:"queries"`
	Command       string       `json:"command"`
}

type AuditQuery struct {
	Filter string  `json:"filter"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
}

// auditBenchmarks runs BenchmarkAudit1MVerify and BenchmarkAudit1MQuery
// once each on a chain of records (SQLite, as the all-in-one stores it);
// building the chain takes about 2 minutes for 1,000,000.
func auditBenchmarks(records int) (*Audit1M, error) {
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkAudit1M(Verify|Query)$", "-benchtime", "1x", "-timeout", "30m",
		"roster.dev/services/audit/adapters", "-args", "-audit.records", strconv.Itoa(records)}
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench Audit1M: %v\n%s%s", err, b, stderr.String())
	}
	a := &Audit1M{Records: records, Command: "go " + strings.Join(args, " ")}
	for _, l := range strings.Split(string(b), "\n") {
		m := benchLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		switch name := m[1]; {
		case name == "BenchmarkAudit1MVerify":
			a.VerifySeconds = round(ns / 1e9)
			a.VerifyPerSec = round(float64(records) / (ns / 1e9))
		case strings.HasPrefix(name, "BenchmarkAudit1MQuery/"):
			// go test writes a sub-benchmark's spaces as underscores.
			a.Queries = append(a.Queries, AuditQuery{Filter: strings.ReplaceAll(strings.TrimPrefix(name, "BenchmarkAudit1MQuery/"), "_", " "),
				P50Ms: metricOf(m[3], "p50-ms"), P99Ms: metricOf(m[3], "p99-ms")})
		}
	}
	if a.VerifySeconds == 0 || len(a.Queries) == 0 {
		return nil, fmt.Errorf("go test -bench Audit1M: no figures in\n%s", b)
	}
	return a, nil
}

// metricOf reads a b.ReportMetric value from a benchmark line's tail.
func metricOf(tail, unit string) float64 {
	r := regexp.MustCompile(`([\d.]+) ` + regexp.QuoteMeta(unit))
	if mm := r.FindStringSubmatch(tail); mm != nil {
		f, _ := strconv.ParseFloat(mm[1], 64)
		return f
	}
	return 0
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m.CPU = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	return m
}

func printTable(w io.Writer, r Results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Roster bench, %s, %d CPUs (%s), %s\n", r.Time.Format(time.RFC3339), r.Machine.CPUs, r.Machine.CPU, r.Machine.GoVersion)
	fmt.Fprintf(tw, "deployment: %s\n\n", r.Deployment)
	l, b := r.Lifecycle, r.Baseline
	fmt.Fprintf(tw, "figure\tvalue\tbaseline in the same run\n")
	fmt.Fprintf(tw, "lifecycle: technicians/s (%d, %d in flight)\t%.1f\t\n", l.Technicians, l.Concurrency, l.PerSecond)
	fmt.Fprintf(tw, "lifecycle: events on the bus/s (%.1f per technician)\t%.0f\tJetStream async publish %.0f/s (%.2f%%), durable consume+ack %.0f/s (%.2f%%), %d-byte messages\n",
		l.EventsPerTech, l.EventsPerSecond, b.PublishPerSec, l.FracPub, b.ConsumePerSec, l.FracCons, b.Bytes)
	fmt.Fprintf(tw, "lifecycle: POST latency ms p50/p95/p99\t%.1f / %.1f / %.1f\t\n", l.RequestMs.P50, l.RequestMs.P95, l.RequestMs.P99)
	fmt.Fprintf(tw, "lifecycle: request-to-audit ms p50/p95/p99 (saturated)\t%.1f / %.1f / %.1f\t\n", l.ToAuditMs.P50, l.ToAuditMs.P95, l.ToAuditMs.P99)
	if p := r.Paced; p.Technicians > 0 {
		fmt.Fprintf(tw, "lifecycle paced at %.1f/s (%d): request-to-audit ms p50/p95/p99\t%.1f / %.1f / %.1f\tachieved %.1f technicians/s\n",
			p.Rate, p.Technicians, p.ToAuditMs.P50, p.ToAuditMs.P95, p.ToAuditMs.P99, p.PerSecond)
	}
	for _, a := range r.Access {
		if a.Micros.P99 == 0 {
			// A Go benchmark's mean: no percentiles.
			fmt.Fprintf(tw, "access check: %s\t%.0f ops/s, mean %.2f µs\t%s\n", a.Transport, a.OpsPerSec, a.Micros.P50, a.Fixture)
			continue
		}
		fmt.Fprintf(tw, "access check: %s\t%.0f ops/s, p50 %.1f µs, p99 %.1f µs\t%s\n", a.Transport, a.OpsPerSec, a.Micros.P50, a.Micros.P99, a.Fixture)
	}
	fmt.Fprintf(tw, "audit: verify %d records\t%.0f ms (ok=%v)\t\n", r.Audit.Records, r.Audit.VerifyMs, r.Audit.VerifiedOK)
	fmt.Fprintf(tw, "audit: query ms p50/p99\t%.1f / %.1f\t%s\n", r.Audit.QueryMs.P50, r.Audit.QueryMs.P99, r.Audit.QueryNote)
	fmt.Fprintf(tw, "footprint: cold start to ready, ms\t%v\t\n", r.Footprint.ColdStartMs)
	fmt.Fprintf(tw, "footprint: idle RSS (peak), MB\t%.1f (%.1f)\t\n", r.Footprint.IdleRSSMB, r.Footprint.IdlePeakRSSMB)
	fmt.Fprintf(tw, "footprint: RSS (peak) after %d technicians, MB\t%.1f (%.1f)\t\n", r.Footprint.AfterTechs, r.Footprint.AfterRSSMB, r.Footprint.AfterPeakRSSMB)
	if a := r.Audit1M; a != nil {
		fmt.Fprintf(tw, "audit Go benchmark: verify %d records\t%.1f s (%.0f records/s)\t%s\n", a.Records, a.VerifySeconds, a.VerifyPerSec, "SQLite, services/audit/adapters")
		for _, q := range a.Queries {
			fmt.Fprintf(tw, "audit Go benchmark: query a page by %s over %d, ms p50/p99\t%.1f / %.1f\t\n", q.Filter, a.Records, q.P50Ms, q.P99Ms)
		}
	}
	if h := r.HRIS; h != nil {
		fmt.Fprintf(tw, "HRIS: %d signed webhooks offered at %.0f/s\tachieved %.1f/s (202s), 202 in p50 %.1f / p99 %.1f ms\t≤ %d in flight\n",
			h.Webhooks, h.OfferedRate, h.AchievedRate, h.AcceptMs.P50, h.AcceptMs.P99, h.InFlight)
		fmt.Fprintf(tw, "HRIS: 202 to technician usable, ms p50/p95/p99\t%.0f / %.0f / %.0f\t%.1f usable/s (%.1f s for all)\n",
			h.ToUsableMs.P50, h.ToUsableMs.P95, h.ToUsableMs.P99, h.UsablePerSec, h.UsableSeconds)
	}
	if b := r.Bulk; b.ImportRows > 0 {
		fmt.Fprintf(tw, "CSV import: %d rows, upload to done\t%.1f rows/s (%.1f s)\tall usable: %.1f/s (%.1f s)\n",
			b.ImportRows, b.ImportRowsPerSec, b.ImportSeconds, b.ImportUsablePerS, b.ImportUsableSecs)
	}
	if b := r.Bulk; b.SCIMUsers > 0 {
		fmt.Fprintf(tw, "SCIM: %d users created, %d at once\t%.1f users/s (%.1f s), 201 in p50 %.1f / p99 %.1f ms\tall usable: %.1f/s (%.1f s)\n",
			b.SCIMUsers, b.SCIMConcurrency, b.SCIMUsersPerSec, b.SCIMSeconds, b.SCIMCreateMs.P50, b.SCIMCreateMs.P99, b.SCIMUsablePerSec, b.SCIMUsableSeconds)
	}
	fmt.Fprintf(tw, "client retries (5xx or cut off, retried with the same Idempotency-Key)\t%d\t\n", r.Retries)
	tw.Flush()
	fmt.Fprintln(w, "\nnot measured:")
	for _, s := range r.NotMeasured {
		fmt.Fprintln(w, "  -", s)
	}
}
