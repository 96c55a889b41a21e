package runner_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/testenv"
)

// replica is one `seatflow run` process of a group.
type replica struct {
	name    string
	cmd     *exec.Cmd
	mu      sync.Mutex
	log     strings.Builder
	metrics string // its /metrics address, once it has said it
}

var metricsAddr = regexp.MustCompile(`metrics=(http://\S+/metrics)`)

func startReplica(t *testing.T, bin, name string, args []string) *replica {
	t.Helper()
	r := &replica{name: name, cmd: exec.Command(bin, args...)}
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.mu.Lock()
			r.log.WriteString(sc.Text() + "\n")
			if m := metricsAddr.FindStringSubmatch(sc.Text()); m != nil && r.metrics == "" {
				r.metrics = m[1]
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	})
	return r
}

// gauge reads one metric of the replica (summed over its series); -1
// while it cannot be read.
func (r *replica) gauge(name string) float64 {
	r.mu.Lock()
	addr := r.metrics
	r.mu.Unlock()
	if addr == "" {
		return -1
	}
	resp, err := http.Get(addr)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				sum, found = sum+v, true
			}
		}
	}
	if !found {
		return -1
	}
	return sum
}

func (r *replica) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// stop ends the replica with SIGTERM, a clean stop, and waits.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGTERM)
	if err := r.cmd.Wait(); err != nil {
		t.Errorf("%s stopped with %v:\n%s", r.name, err, r.output())
	}
}

// withGroup sets the consumer group of runArgs' arguments.
func withGroup(args []string, group string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == "--kafka.group" {
			out[i+1] = group
		}
	}
	return out
}

// waitForUnits waits until the replicas work exactly `want` units between
// them, each of the given ones at least one, and says how long it took.
func waitForUnits(t *testing.T, ctx context.Context, what string, want int, rs ...*replica) time.Duration {
	t.Helper()
	start := time.Now()
	waitUntil(t, ctx, what, func() bool {
		total := 0.0
		for _, r := range rs {
			n := r.gauge("seatflow_units_assigned")
			if n < 1 {
				return false
			}
			total += n
		}
		return total == float64(want)
	})
	return time.Since(start)
}

// publishOverTime publishes events in slices, one every gap, from a
// goroutine of its own; the returned channel closes when all are out.
func publishOverTime(t *testing.T, k *testenv.Kafka, events []event.Event, slices int, gap time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := (len(events) + slices - 1) / slices
		for i := 0; i < len(events); i += n {
			produce(t, k, events[i:min(i+n, len(events))])
			time.Sleep(gap)
		}
	}()
	return done
}

// TestReplicasShareUnits runs the group as 1, then 3, then 1 replicas
// while events flow on 6 partitions: every replica works some units; one
// is killed with SIGKILL and the others take its units within 15 s; one
// stops cleanly and the last takes everything. A drain then finishes, and
// the rows equal the reference model's, with no (key, version) twice.
func TestReplicasShareUnits(t *testing.T) {
	s := newReplicaTest(t, "scale-test")
	ctx, bin, args := s.ctx, s.bin, s.args
	a := startReplica(t, bin, "a", args)
	waitForUnits(t, ctx, "replica a working all 6 units", 6, a)
	b := startReplica(t, bin, "b", args)
	c := startReplica(t, bin, "c", args)
	took := waitForUnits(t, ctx, "3 replicas sharing the 6 units", 6, a, b, c)
	t.Logf("1 → 3 replicas: units shared in %.1f s", took.Seconds())
	waitUntil(t, ctx, "every replica consuming", func() bool {
		for _, r := range []*replica{a, b, c} {
			if r.gauge("seatflow_events_consumed_total") <= 0 {
				return false
			}
		}
		return true
	})

	b.cmd.Process.Kill() // SIGKILL mid-stream
	b.cmd.Wait()
	took = waitForUnits(t, ctx, "a and c taking b's units", 6, a, c)
	t.Logf("kill -9 of one of 3: its units taken in %.1f s", took.Seconds())
	if took > 15*time.Second {
		t.Errorf("the killed replica's units were taken after %.1f s, want within 15 s", took.Seconds())
	}
	c.stop(t)
	waitForUnits(t, ctx, "a alone working all units", 6, a)
	s.finish(a)
}

// TestZombieReplica stops a replica with SIGSTOP past its session while
// events flow, so that the other takes its units and writes newer rows;
// then wakes it with SIGCONT, still believing it owns them. Whatever it
// writes then, the final rows are exactly the reference model's.
func TestZombieReplica(t *testing.T) {
	s := newReplicaTest(t, "zombie-test")
	ctx, bin, args := s.ctx, s.bin, s.args
	a := startReplica(t, bin, "a", args)
	z := startReplica(t, bin, "zombie", args)
	waitForUnits(t, ctx, "2 replicas sharing the 6 units", 6, a, z)
	waitUntil(t, ctx, "the zombie-to-be consuming", func() bool { return z.gauge("seatflow_events_consumed_total") > 0 })

	z.cmd.Process.Signal(syscall.SIGSTOP)
	waitForUnits(t, ctx, "a taking the stopped replica's units", 6, a)
	flushes := a.gauge("seatflow_sink_flush_duration_seconds_count")
	waitUntil(t, ctx, "a writing rows of the units it took", func() bool {
		return a.gauge("seatflow_sink_flush_duration_seconds_count") > flushes+3
	})
	z.cmd.Process.Signal(syscall.SIGCONT)
	waitForUnits(t, ctx, "the woken replica back in the group", 6, a, z)
	s.finish(a, z)
}

// replicaTest is a group of replicas on 6 partitions, with simulated
// events published over about 12 s.
type replicaTest struct {
	t         *testing.T
	ctx       context.Context
	bin       string
	args      []string
	k         *testenv.Kafka
	ch        *testenv.ClickHouse
	events    []event.Event
	cat       *catalog.Catalog
	published <-chan struct{}
}

func newReplicaTest(t *testing.T, group string) *replicaTest {
	if testing.Short() {
		t.Skip("runs the binary as several replicas")
	}
	s := &replicaTest{t: t, bin: testenv.BuildSeatflow(t), k: testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 6}), ch: testenv.StartClickHouse(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	s.ctx = ctx
	s.events, s.cat = simulated(t, 30, 30)
	s.args = withGroup(runArgs(s.k, s.ch), group)
	s.published = publishOverTime(t, s.k, s.events, 30, 400*time.Millisecond)
	return s
}

// finish waits for the events, stops the replicas cleanly, drains what is
// left, and compares the rows with the reference model's.
func (s *replicaTest) finish(replicas ...*replica) {
	t := s.t
	<-s.published
	for _, r := range replicas {
		r.stop(t)
	}
	out, err := drain(t, s.bin, append(s.args, "--drain"))
	if err != nil {
		t.Fatalf("drain after the replicas: %v\n%s", err, out)
	}
	conn := s.ch.Open(t)
	must(t, compare(t, conn, s.ch.Database, referenceOf(s.k, s.events, s.cat)))
	noDuplicates(t, conn, s.ch.Database)
	for reason, m := range deadLetters(t, s.k) {
		t.Errorf("simulated events are all valid, yet a dead letter says %s: %s", reason, m.Value)
	}
}
