package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/event"
)

// replica is one `seatflow run` of a group, watched through its /metrics.
type replica struct {
	cmd     *exec.Cmd
	metrics string
	log     strings.Builder
}

func startReplica(ctx context.Context, st *stack, group string) (*replica, error) {
	r := &replica{metrics: freeAddr()}
	r.cmd = exec.CommandContext(ctx, st.bin, "run", "--kafka.brokers", st.kafkaAddr, "--kafka.group", group,
		"--clickhouse.dsn", "http://"+st.chAddr, "--clickhouse.database", group, "--metrics.listen-address", r.metrics)
	r.cmd.Stdout, r.cmd.Stderr = &r.log, &r.log
	return r, r.cmd.Start()
}

// scrape reads the replica's metrics: each series' value by its text
// (name and labels); nil while it cannot be read.
func (r *replica) scrape() map[string]float64 {
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out
}

// sum adds the values of the series of a metric name.
func sum(series map[string]float64, name string) (total float64, n int) {
	for k, v := range series {
		if k == name || strings.HasPrefix(k, name+"{") {
			total, n = total+v, n+1
		}
	}
	return total, n
}

// group is the replicas of one consumer group.
type group []*replica

// state sums the group's metrics: units worked (and the fewest of one
// replica), lag series and their sum, events consumed, CPU seconds.
func (g group) state() (units, fewest, lagSeries int, lag, consumed, cpu float64) {
	fewest = -1
	for _, r := range g {
		if r == nil {
			continue
		}
		m := r.scrape()
		u, _ := sum(m, "seatflow_units_assigned")
		if fewest < 0 || int(u) < fewest {
			fewest = int(u)
		}
		l, n := sum(m, "seatflow_consumer_lag")
		c, _ := sum(m, "seatflow_events_consumed_total")
		p, _ := sum(m, "process_cpu_seconds_total")
		units, lagSeries, lag, consumed, cpu = units+int(u), lagSeries+n, lag+l, consumed+c, cpu+p
	}
	return
}

// waitFor polls the group until cond holds, up to 10 minutes.
func (g group) waitFor(what string, cond func(units, fewest, lagSeries int, lag, consumed float64) bool) (cpu float64, err error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		units, fewest, series, lag, consumed, cpu := g.state()
		if cond(units, fewest, series, lag, consumed) {
			return cpu, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.stop() // its logs are whole once it has stopped
	var logs strings.Builder
	for _, r := range g {
		if r != nil {
			logs.WriteString(r.log.String())
		}
	}
	return 0, fmt.Errorf("replicas: no %s within 10 minutes\n%s", what, logs.String())
}

func (g group) stop() {
	for _, r := range g {
		if r != nil {
			r.cmd.Process.Signal(syscall.SIGTERM)
			r.cmd.Wait()
		}
	}
}

// replicaScaling times groups of 1, 2 and 3 `seatflow run` replicas over
// the same n published events, each group from its start until every unit
// is read to its end (the group's join included), with the CPU time of
// all its replicas; then a group of three in which one replica is killed
// (SIGKILL) a third of the way, timing until the others work its units.
func replicaScaling(ctx context.Context, n int) ([]Result, error) {
	st, err := devStack(ctx, n)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	conn, err := kafka.Dial("tcp", st.kafkaAddr)
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(event.UsageTopic)
	conn.Close()
	if err != nil {
		return nil, err
	}
	units := len(parts)
	// done: every unit worked, and each of its partitions' lag is 0
	done := func(u, _, series int, lag, _ float64) bool { return u == units && series == 2*units && lag == 0 }

	var out []Result
	for replicas := 1; replicas <= 3; replicas++ {
		name := fmt.Sprintf("replicas_%d", replicas)
		g := make(group, replicas)
		start := time.Now()
		for i := range g {
			if g[i], err = startReplica(ctx, st, name); err != nil {
				return nil, err
			}
		}
		cpu, err := g.waitFor("end of every unit", done)
		took := time.Since(start)
		var rebalances, restores float64
		for _, r := range g {
			m := r.scrape()
			n, _ := sum(m, "seatflow_rebalances_total")
			k, _ := sum(m, "seatflow_unit_handoff_seconds_count")
			rebalances, restores = rebalances+n, restores+k
		}
		g.stop()
		if err != nil {
			return nil, err
		}
		out = append(out,
			Result{Name: fmt.Sprintf("end to end, %s", plural(replicas, "replica")), Size: st.published, Value: float64(st.published) / took.Seconds(), Unit: "events/s",
				Note: fmt.Sprintf("%d units; every unit read to its end in %.1f s, group join included (no final flush: replicas keep running); %.0f generations joined, %.0f unit restores in all",
					units, took.Seconds(), rebalances, restores)},
			Result{Name: fmt.Sprintf("CPU, %s", plural(replicas, "replica")), Size: st.published, Value: cpu, Unit: "CPU s",
				Note: "process CPU of all replicas until every unit was read to its end"})
	}

	g := make(group, 3)
	for i := range g {
		if g[i], err = startReplica(ctx, st, "handoff"); err != nil {
			return nil, err
		}
	}
	defer g.stop()
	// every replica works a unit, and a third of the events are read
	if _, err := g.waitFor("third of the events", func(u, fewest, _ int, _, consumed float64) bool {
		return u == units && fewest > 0 && consumed >= float64(st.published)/3
	}); err != nil {
		return nil, err
	}
	g[0].cmd.Process.Kill()
	g[0].cmd.Wait()
	g[0] = nil
	killed := time.Now()
	if _, err := g.waitFor("units taken over", func(u, _, _ int, _, _ float64) bool { return u == units }); err != nil {
		return nil, err
	}
	handoff := time.Since(killed)
	if _, err := g.waitFor("end of every unit after the kill", done); err != nil {
		return nil, err
	}
	return append(out, Result{Name: "handoff after kill -9", Size: st.published, Value: handoff.Seconds(), Unit: "s",
		Target: "< 15 s", Note: "from SIGKILL of one of 3 replicas, a third of the way, until the other two work all its units: the broker's session timeout, the rebalance and the restore"}), nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
