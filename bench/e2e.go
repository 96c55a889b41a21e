package main

import (
	"context"
	"fmt"
	"github.com/seatflow/seatflow/localch/launch"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
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
// --no-user-activity. A non-empty profile names where the first run
// writes its CPU profile.
func endToEnd(ctx context.Context, n int, profile string) ([]Result, error) {
	st, err := devStack(ctx, n)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	bin, kafkaAddr, chAddr, published, tenants := st.bin, st.kafkaAddr, st.chAddr, st.published, st.tenants
	// the same events twice: as configured by default, then without the
	// per-user user_activity rows (each run has its own group and database)
	full, err := drain(ctx, bin, kafkaAddr, chAddr, "full", profile, n)
	if err != nil {
		return nil, err
	}
	figuresOnly, err := drain(ctx, bin, kafkaAddr, chAddr, "figures_only", "", n, "--no-user-activity")
	if err != nil {
		return nil, err
	}
	return []Result{
		{Name: "end to end", Size: published, Value: float64(published) / full.took.Seconds(), Unit: "events/s",
			Target: ">= 1M/s sustained over 10M", Note: fmt.Sprintf("%d tenants, drained in %.1f s incl. start and group join", tenants, full.took.Seconds())},
		{Name: "pipeline peak RSS", Size: published, Value: full.rss, Unit: "MB"},
		{Name: "end to end, figures only", Size: published, Value: float64(published) / figuresOnly.took.Seconds(), Unit: "events/s",
			Note: fmt.Sprintf("--no-user-activity: every table but the per-user one; drained in %.1f s, peak RSS %.0f MB", figuresOnly.took.Seconds(), figuresOnly.rss)},
	}, nil
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
