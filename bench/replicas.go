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
	// Offsets are committed once the rows and checkpoint before them are
	// in ClickHouse: short intervals make a committed end mean "done".
	r.cmd = exec.CommandContext(ctx, st.bin, "run", "--kafka.brokers", st.kafkaAddr, "--kafka.group", group,
		"--clickhouse.dsn", "http://"+st.chAddr, "--clickhouse.database", group, "--metrics.listen-address", r.metrics,
		"--flush-interval", "1s", "--checkpoint-interval", "1s")
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

// groupState sums the group's metrics.
type groupState struct {
	units, fewest int // units worked, and the fewest of one replica
	lagSeries     int // partitions with a lag series
	lag           float64
	consumed      float64 // events
	cpu           float64 // seconds, of all replicas
}

func (g group) state() groupState {
	s := groupState{fewest: -1}
	for _, r := range g {
		if r == nil {
			continue
		}
		m := r.scrape()
		u, _ := sum(m, "seatflow_units_assigned")
		if s.fewest < 0 || int(u) < s.fewest {
			s.fewest = int(u)
		}
		l, n := sum(m, "seatflow_consumer_lag")
		c, _ := sum(m, "seatflow_events_consumed_total")
		p, _ := sum(m, "process_cpu_seconds_total")
		s.units, s.lagSeries, s.lag, s.consumed, s.cpu = s.units+int(u), s.lagSeries+n, s.lag+l, s.consumed+c, s.cpu+p
	}
	return s
}

// waitFor polls the group until cond holds, up to 10 minutes.
func (g group) waitFor(what string, cond func(groupState) bool) (groupState, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if s := g.state(); cond(s) {
			return s, nil
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
	return groupState{}, fmt.Errorf("replicas: no %s within 10 minutes\n%s", what, logs.String())
}

func (g group) stop() {
	for _, r := range g {
		if r != nil {
			r.cmd.Process.Signal(syscall.SIGTERM)
			r.cmd.Wait()
		}
	}
}

// topicEnds are the end offsets of the seatflow topics' partitions.
type topicEnds struct {
	client *kafka.Client
	ends   map[string]map[int]int64
}

func readEnds(ctx context.Context, addr string) (*topicEnds, error) {
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{event.LicenseTopic, event.UsageTopic}})
	if err != nil {
		return nil, err
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, err
	}
	e := &topicEnds{client: c, ends: map[string]map[int]int64{}}
	for topic, parts := range resp.Topics {
		e.ends[topic] = map[int]int64{}
		for _, p := range parts {
			if p.Error != nil {
				return nil, p.Error
			}
			e.ends[topic][p.Partition] = p.LastOffset
		}
	}
	return e, nil
}

// committed says whether group has committed the end of every partition:
// its rows and checkpoints up to there are in ClickHouse.
func (e *topicEnds) committed(ctx context.Context, group string) bool {
	topics := map[string][]int{}
	for topic, parts := range e.ends {
		for p := range parts {
			topics[topic] = append(topics[topic], p)
		}
	}
	resp, err := e.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: topics})
	if err != nil || resp.Error != nil {
		return false
	}
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			if p.CommittedOffset != e.ends[topic][p.Partition] {
				return false
			}
		}
	}
	return true
}

// replicaScaling times groups of 1, 2 and 3 `seatflow run` replicas over
// the same n published events, each group from its start until it has
// committed the end of every partition (rows and checkpoints in
// ClickHouse; the group's join included), with the CPU time of all its
// replicas; then a group of three in which one replica is killed
// (SIGKILL) a third of the way, timing until the others work its units.
func replicaScaling(ctx context.Context, n int) ([]Result, error) {
	st, err := devStack(ctx, n)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	ends, err := readEnds(ctx, st.kafkaAddr)
	if err != nil {
		return nil, err
	}
	units := len(ends.ends[event.UsageTopic])
	done := func(group string) func(groupState) bool {
		return func(s groupState) bool {
			return s.units == units && s.lagSeries == 2*units && s.lag == 0 && ends.committed(ctx, group)
		}
	}

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
		end, err := g.waitFor("commit of every partition's end", done(name))
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
				Note: fmt.Sprintf("%d units; every partition's end committed (rows and checkpoints written) %.1f s after the start, group join included; flushes and checkpoints every 1 s; %.0f generations joined, %.0f unit restores in all",
					units, took.Seconds(), rebalances, restores)},
			Result{Name: fmt.Sprintf("CPU, %s", plural(replicas, "replica")), Size: st.published, Value: end.cpu, Unit: "CPU s",
				Note: "process CPU of all replicas until every partition's end was committed"})
	}

	g := make(group, 3)
	for i := range g {
		if g[i], err = startReplica(ctx, st, "handoff"); err != nil {
			return nil, err
		}
	}
	defer g.stop()
	// every replica works a unit, and a third of the events are read
	if _, err := g.waitFor("third of the events", func(s groupState) bool {
		return s.units == units && s.fewest > 0 && s.consumed >= float64(st.published)/3
	}); err != nil {
		return nil, err
	}
	g[0].cmd.Process.Kill()
	g[0].cmd.Wait()
	g[0] = nil
	killed := time.Now()
	if _, err := g.waitFor("units taken over", func(s groupState) bool { return s.units == units }); err != nil {
		return nil, err
	}
	handoff := time.Since(killed)
	if _, err := g.waitFor("commit of every partition's end after the kill", done("handoff")); err != nil {
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
