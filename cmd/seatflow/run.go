package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/runner"
)

// runFlags are the pipeline's settings: bound to run's flags, or filled in
// by dev.
type runFlags struct {
	kafka             *kafkaFlags
	ch                *clickhouseFlags
	catalog           string
	group             string
	flush, checkpoint time.Duration
	lateness, horizon time.Duration
	maxSkew           time.Duration
	userActivity      bool
	limits            figures.Limits
	drain             bool
	allowReset        bool
	metricsAddr       string
	cpuProfile        string
	pprofAddr         string
}

func addRunFlags(cmd *kingpin.CmdClause) *runFlags {
	f := &runFlags{kafka: addKafkaFlags(cmd), ch: addClickHouseFlags(cmd)}
	cmd.Flag("catalog", catalogHelp).Default("").StringVar(&f.catalog)
	cmd.Flag("kafka.group", "Consumer group (and checkpoint) name.").Default("seatflow").StringVar(&f.group)
	cmd.Flag("flush-interval", "How often changed rows are written to ClickHouse.").Default("5s").DurationVar(&f.flush)
	cmd.Flag("checkpoint-interval", "How often the state and offsets are checkpointed (offsets are committed then).").Default("1m").DurationVar(&f.checkpoint)
	cmd.Flag("lateness", "Allowed lateness: how far behind the slowest partition's newest event the watermark stays.").Default("1h").DurationVar(&f.lateness)
	cmd.Flag("horizon", "Restatement horizon: late events up to this far before the watermark rewrite closed days; older ones are too_late.").Default("168h").DurationVar(&f.horizon)
	cmd.Flag("max-skew", "How far a partition may run ahead of the slowest busy one before it waits for it (watermark alignment: a backfill recomputes fewer days); 0 turns it off.").Default(figures.DefaultMaxSkew.String()).DurationVar(&f.maxSkew)
	cmd.Flag("user-activity", "Write user_activity, the per-user detail: a row per user, workload and day with activity, up to one per usage event. --no-user-activity writes every other table the same, for deployments that must not hold per-user data or do not need it.").Default("true").BoolVar(&f.userActivity)
	cmd.Flag("limit.users-per-tenant", "Most distinct users one tenant may have; events of further users are limit_exceeded dead letters.").Default(strconv.Itoa(figures.DefaultLimits.Users)).IntVar(&f.limits.Users)
	cmd.Flag("limit.subscriptions-per-tenant", "Most subscriptions one tenant may have; further ones are limit_exceeded dead letters.").Default(strconv.Itoa(figures.DefaultLimits.Subscriptions)).IntVar(&f.limits.Subscriptions)
	cmd.Flag("limit.skus-per-tenant", "Most SKUs one tenant may have subscriptions or assignments of; further ones are limit_exceeded dead letters.").Default(strconv.Itoa(figures.DefaultLimits.SKUs)).IntVar(&f.limits.SKUs)
	cmd.Flag("metrics.listen-address", "Address of /metrics, /healthz and /readyz.").Default("127.0.0.1:9464").StringVar(&f.metricsAddr)
	cmd.Flag("debug.pprof-address", "Serve Go's profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty. They tell much about the process: keep it on loopback.").Default("").StringVar(&f.pprofAddr)
	cmd.Flag("debug.cpuprofile", "Write a CPU profile (pprof) of the run to this file.").Default("").StringVar(&f.cpuProfile)
	cmd.Flag("allow-reset", "Let a unit with no checkpoint start from its partitions' beginning even where it was worked before (committed offsets, another group's rows, checkpoints from before units): its figures are rewritten from what retention kept.").BoolVar(&f.allowReset)
	cmd.Flag("drain", "Consume to the end of every partition, flush, checkpoint and exit 0 (backfills, tests).").BoolVar(&f.drain)
	return f
}

func runCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("run", "Run the pipeline: Kafka events in, daily figures in ClickHouse out.")
	f := addRunFlags(cmd)
	return cmd.FullCommand(), func(ctx context.Context) error {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		_, err := f.start(ctx, log, nil)
		return err
	}
}

// newRegistry holds what /metrics serves: the pipeline's metrics and the
// Go and process ones that dashboards and alert rules also read.
func newRegistry() (*prometheus.Registry, *runner.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, runner.NewMetrics(reg)
}

// start runs the pipeline until ctx ends (or the drain finishes); started,
// if set, hears of the runner once it is made.
func (f *runFlags) start(ctx context.Context, log *slog.Logger, started func(*runner.Runner)) (*runner.Runner, error) {
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return nil, fmt.Errorf("--debug.cpuprofile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	if f.flush <= 0 || f.checkpoint < f.flush {
		return nil, fmt.Errorf("--flush-interval (%s) must be positive and at most --checkpoint-interval (%s)", f.flush, f.checkpoint)
	}
	if f.maxSkew < 0 {
		return nil, fmt.Errorf("--max-skew (%s) must not be negative; 0 turns alignment off", f.maxSkew)
	}
	for flag, v := range map[string]int{"--limit.users-per-tenant": f.limits.Users, "--limit.subscriptions-per-tenant": f.limits.Subscriptions, "--limit.skus-per-tenant": f.limits.SKUs} {
		if v < 1 {
			return nil, fmt.Errorf("%s (%d) must be at least 1", flag, v)
		}
	}
	cat, err := loadCatalog(f.catalog)
	if err != nil {
		return nil, err
	}
	sec, err := f.kafka.security()
	if err != nil {
		return nil, err
	}
	conn, err := f.ch.open(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	reg, metrics := newRegistry()
	cfg := runner.Config{
		Brokers: f.kafka.brokerList(), TLS: sec.TLS, SASL: sec.SASL, LicenseTopic: f.kafka.licenseTopic, UsageTopic: f.kafka.usageTopic,
		DeadLetterTopic: f.kafka.deadTopic, Group: f.group, Database: f.ch.database,
		FlushInterval: f.flush, CheckpointInterval: f.checkpoint, Lateness: f.lateness, Horizon: f.horizon,
		MaxSkew: f.maxSkew, NoUserActivity: !f.userActivity, Limits: f.limits, Drain: f.drain, AllowReset: f.allowReset, Catalog: cat, Log: log, Metrics: metrics,
	}
	ports, closePorts, err := runner.ClickHousePorts(ctx, cfg, conn)
	if err != nil {
		return nil, err
	}
	defer closePorts()
	r, err := runner.New(cfg, ports)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", f.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics.listen-address %s: %w", f.metricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := r.NotReady(); len(why) > 0 {
			http.Error(w, "not ready:\n"+strings.Join(why, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	if f.pprofAddr != "" {
		stop, err := servePprof(f.pprofAddr)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	log.Info("seatflow running", "kafka", f.kafka.brokers, "clickhouse", f.ch.redacted(), "database", f.ch.database,
		"metrics", "http://"+ln.Addr().String()+"/metrics", "drain", f.drain)
	if started != nil {
		started(r)
	}
	switch err := r.Run(ctx); {
	case errors.Is(err, runner.ErrResetRefused):
		return r, fmt.Errorf("%w (with --allow-reset)", err)
	case err != nil && !errors.Is(err, context.Canceled):
		return r, err
	}
	return r, nil
}

// servePprof serves Go's profiles, as Prometheus does: go tool pprof
// http://ADDR/debug/pprof/heap.
func servePprof(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug.pprof-address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
