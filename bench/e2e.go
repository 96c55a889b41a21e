package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/seatflow/seatflow/localch/launch"
)

// vmHWM is a process's peak resident set in MB, from /proc.
func vmHWM(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// freeAddr is a loopback address nobody listens on.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// stack is the dev services (the embedded broker and the local
// ClickHouse, in their own process) holding published simulated events.
type stack struct {
	bin               string // the seatflow binary
	kafkaAddr, chAddr string
	tenants           int
	published         int
	stop              func()
}

// devStack builds seatflow, starts the dev services and publishes about n
// simulated events to them.
func devStack(ctx context.Context, n int) (*stack, error) {
	dir, err := os.MkdirTemp("", "seatflow-bench-e2e-")
	if err != nil {
		return nil, err
	}
	st := &stack{bin: filepath.Join(dir, "seatflow"), kafkaAddr: freeAddr(), chAddr: freeAddr(), stop: func() { os.RemoveAll(dir) }}
	if err := launch.Build(ctx, dir, "seatflow", launch.BinaryName); err != nil {
		st.stop()
		return nil, err
	}
	svc := exec.Command(st.bin, "dev", "--services-only", "--data-dir", filepath.Join(dir, "data"),
		"--kafka.listen-address", st.kafkaAddr, "--clickhouse.listen-address", st.chAddr)
	svc.Stderr = os.Stderr
	out, _ := svc.StdoutPipe()
	if err := svc.Start(); err != nil {
		st.stop()
		return nil, err
	}
	st.stop = func() { svc.Process.Signal(os.Interrupt); svc.Wait(); os.RemoveAll(dir) }
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "Press Ctrl-C") {
		k, err := out.Read(buf)
		if err != nil {
			st.stop()
			return nil, fmt.Errorf("dev services did not start: %s", seen.String())
		}
		seen.Write(buf[:k])
	}
	// ~4,400 events per simulated tenant of 120 users over 35 days
	st.tenants = max(1, n/4400)
	sim := exec.Command(st.bin, "simulate", "--tenants", fmt.Sprint(st.tenants), "--users", "120", "--days", "35",
		"--start", "2026-09-01", "--seed", "42", "--kafka.brokers", st.kafkaAddr)
	simOut, err := sim.CombinedOutput()
	if err != nil {
		st.stop()
		return nil, fmt.Errorf("simulate: %v\n%s", err, simOut)
	}
	for _, line := range strings.Split(string(simOut), "\n") {
		if i := strings.Index(line, "published "); i >= 0 {
			fmt.Sscanf(line[i:], "published %d", &st.published)
		}
	}
	return st, nil
}

// endToEnd publishes about n simulated events to the dev services and
// times `seatflow run --drain` of them, then the same with
// --no-user-activity, rounds times over (each run with its own group and
// database). The figures are the median runs', with the best and the
// worst in the note: on a shared VM single runs swing by a quarter. A
// non-empty profile names where the first run writes its CPU profile.
func endToEnd(ctx context.Context, n, rounds int, profile string) ([]Result, error) {
	st, err := devStack(ctx, n)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	var full, figuresOnly []drained
	for i := range rounds {
		if i > 0 {
			profile = ""
		}
		name := fmt.Sprintf("full_%d", i)
		d, err := drain(ctx, st.bin, st.kafkaAddr, st.chAddr, name, profile, n)
		if err != nil {
			return nil, err
		}
		full = append(full, d)
		name = fmt.Sprintf("figures_only_%d", i)
		if d, err = drain(ctx, st.bin, st.kafkaAddr, st.chAddr, name, "", n, "--no-user-activity"); err != nil {
			return nil, err
		}
		figuresOnly = append(figuresOnly, d)
	}
	rate := func(d drained) float64 { return float64(st.published) / d.took.Seconds() }
	spread := func(ds []drained) string {
		rates := make([]float64, len(ds))
		for i, d := range ds {
			rates[i] = rate(d)
		}
		return fmt.Sprintf("median of %d runs; best %.2fM/s, worst %.2fM/s", len(ds), slices.Max(rates)/1e6, slices.Min(rates)/1e6)
	}
	f, fo := medianRun(full), medianRun(figuresOnly)
	return []Result{
		{Name: "end to end", Size: st.published, Value: rate(f), Unit: "events/s",
			Target: ">= 1M/s sustained over 10M", Note: fmt.Sprintf("%d tenants, drained in %.1f s incl. start and group join; %s", st.tenants, f.took.Seconds(), spread(full))},
		{Name: "pipeline peak RSS", Size: st.published, Value: f.rss, Unit: "MB"},
		{Name: "end to end, figures only", Size: st.published, Value: rate(fo), Unit: "events/s",
			Note: fmt.Sprintf("--no-user-activity: every table but the per-user one; drained in %.1f s, peak RSS %.0f MB; %s", fo.took.Seconds(), fo.rss, spread(figuresOnly))},
	}, nil
}

// medianRun is the run of median time.
func medianRun(ds []drained) drained {
	s := slices.Clone(ds)
	slices.SortFunc(s, func(a, b drained) int { return cmp.Compare(a.took, b.took) })
	return s[len(s)/2]
}

type drained struct {
	took time.Duration
	rss  float64 // MB
}

// drain times `seatflow run --drain` of what the dev services hold, into
// group and database name. A non-empty profile names where the run writes
// its CPU profile.
func drain(ctx context.Context, bin, kafkaAddr, chAddr, name, profile string, n int, extra ...string) (drained, error) {
	args := []string{"run", "--drain", "--kafka.brokers", kafkaAddr, "--kafka.group", name,
		"--clickhouse.dsn", "http://" + chAddr, "--clickhouse.database", name,
		"--metrics.listen-address", "127.0.0.1:0", "--checkpoint-interval", "1m"}
	if profile != "" {
		args = append(args, "--debug.cpuprofile", fmt.Sprintf("%s.%d", profile, n))
	}
	run := exec.CommandContext(ctx, bin, append(args, extra...)...)
	var runOut strings.Builder
	run.Stdout, run.Stderr = &runOut, &runOut
	t0 := time.Now()
	if err := run.Start(); err != nil {
		return drained{}, err
	}
	// The child's own high-water mark: rusage's maxrss would count this
	// (large) process's pages at fork time.
	var rss float64
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return drained{}, fmt.Errorf("run --drain %s: %v\n%s", strings.Join(extra, " "), err, runOut.String())
			}
			return drained{took: time.Since(t0), rss: rss}, nil
		case <-tick.C:
			rss = max(rss, vmHWM(run.Process.Pid))
		}
	}
}
