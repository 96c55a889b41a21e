package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/sinks/clickhouse"
)

// Group membership. A member killed while holding units is expired by the
// coordinator within sessionTimeout, and the rebalance that follows ends
// within rebalanceTimeout: together they bound how long its units wait for
// another member. Heartbeats go every 2 s from kafka-go's own goroutine,
// so a long flush does not miss them.
const (
	sessionTimeout   = 6 * time.Second
	rebalanceTimeout = 6 * time.Second
)

// assignment is what a generation gave this member.
type assignment struct {
	gen   *kafka.Generation
	units []int
}

// newGroup joins the consumer group with the unit balancer; nil once
// closeGroup has run.
func (r *Runner) newGroup() (*kafka.ConsumerGroup, error) {
	r.groupMu.Lock()
	defer r.groupMu.Unlock()
	if r.groupClosed {
		return nil, nil
	}
	logf := func(level slog.Level) kafka.LoggerFunc {
		return func(msg string, args ...any) {
			r.cfg.Log.Log(context.Background(), level, "kafka consumer group: "+fmt.Sprintf(msg, args...), "group", r.cfg.Group)
		}
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: r.cfg.Group, Brokers: r.cfg.Brokers, Topics: []string{r.cfg.LicenseTopic, r.cfg.UsageTopic},
		Dialer:         &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: r.cfg.TLS, SASLMechanism: r.cfg.SASL},
		GroupBalancers: []kafka.GroupBalancer{unitBalancer{license: r.cfg.LicenseTopic, usage: r.cfg.UsageTopic, owned: r.Units}},
		StartOffset:    kafka.FirstOffset, SessionTimeout: sessionTimeout, HeartbeatInterval: 2 * time.Second,
		RebalanceTimeout: rebalanceTimeout, JoinGroupBackoff: time.Second,
		// a JoinGroup waits for the other members to rejoin, up to their
		// rebalance timeout and a session: its answer may take that long
		Timeout: sessionTimeout + 2*rebalanceTimeout,
		Logger:  logf(slog.LevelDebug), ErrorLogger: logf(slog.LevelWarn),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer group %s: %w", r.cfg.Group, err)
	}
	r.group = group
	return group, nil
}

// closeGroup leaves the group for good: readers stop, and follow ends.
func (r *Runner) closeGroup() {
	r.groupMu.Lock()
	defer r.groupMu.Unlock()
	r.groupClosed = true
	if r.group != nil {
		r.group.Close()
	}
}

// consume follows the group, leaving and joining it again as a new member
// when the loop asks (see stall.go).
func (r *Runner) consume(ctx context.Context, group *kafka.ConsumerGroup, out chan<- batch) {
	for group != nil && r.follow(ctx, group, out) {
		group.Close()
		var err error
		if group, err = r.newGroup(); err != nil { // the config was good a moment ago
			r.cfg.Log.Error("join the consumer group again", "err", err)
			return
		}
	}
}

// follow follows the group's generations: each one's units are worked at
// once, whatever share of them this member is given, and when it ends,
// every unit is flushed and checkpointed before the member joins the next.
// It says whether to join again as a new member.
func (r *Runner) follow(ctx context.Context, group *kafka.ConsumerGroup, out chan<- batch) (rejoin bool) {
	next, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.rejoin:
			cancel()
		case <-next.Done():
		}
	}()
	for {
		gen, err := group.Next(next)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return false
			}
			if next.Err() != nil {
				return true
			}
			r.cfg.Log.Warn("join consumer group; retrying", "group", r.cfg.Group, "err", err)
			continue
		}
		r.gen.Store(gen)
		r.cfg.Metrics.Rebalances.Inc()
		units := unitsOf(gen.Assignments, r.cfg.LicenseTopic, r.cfg.UsageTopic)
		if !r.onLoop(ctx, func(ctx context.Context) error { return r.assign(ctx, gen, units, out) }) {
			return false
		}
		r.cfg.Log.Info("working units", "group", r.cfg.Group, "generation", gen.ID, "units", units)
		// kafka-go waits for this before it joins the next generation
		gen.Start(func(gctx context.Context) {
			<-gctx.Done()
			r.handBack(gen)
		})
	}
}

// onLoop runs fn on the loop's goroutine and waits for it; false when
// the loop or ctx ended first.
func (r *Runner) onLoop(ctx context.Context, fn func(context.Context) error) bool {
	done := make(chan struct{})
	run := func(ctx context.Context) error {
		defer close(done)
		return fn(ctx)
	}
	select {
	case r.control <- run:
	case <-r.loopDone:
		return false
	case <-ctx.Done():
		return false
	}
	select {
	case <-done:
		return true
	case <-r.loopDone:
		return false
	}
}

// assign works generation gen's units: units this member kept from the
// generation just before go on from memory; any other unit it held is let
// go; new ones are restored from their checkpoints; and each unit's two
// partitions get a reader in gen.
func (r *Runner) assign(ctx context.Context, gen *kafka.Generation, units []int, out chan<- batch) error {
	// Memory is only as good as an unbroken line of generations: after a
	// gap (this member's session expired: a pause, a network cut), its
	// units may have been worked by others meanwhile.
	continuing := r.assigned.gen != nil && gen.ID == r.assigned.gen.ID+1
	for p, u := range r.units {
		if !continuing || !slices.Contains(units, p) {
			r.drop(u)
		}
	}
	r.assigned = assignment{gen: gen, units: units}
	r.usedBeforeMu.Lock()
	r.usedBefore = nil
	r.usedBeforeMu.Unlock()
	for _, u := range r.units {
		r.startReaders(gen, u, out)
	}
	return r.acquireMissing(ctx, out)
}

// acquireMissing restores the units of the current assignment that this
// member does not work yet (at a new generation, or after a restore
// failed), and says in Ready whether it now works them all.
func (r *Runner) acquireMissing(ctx context.Context, out chan<- batch) error {
	a := r.assigned
	var missing []int
	for _, p := range a.units {
		if r.units[p] == nil {
			missing = append(missing, p)
		}
	}
	// All at once: each waits on ClickHouse, and the loop (which applies
	// every unit's events) waits for them all.
	acquired := make([]*unit, len(missing))
	errs := make([]error, len(missing))
	var wg sync.WaitGroup
	for i, p := range missing {
		wg.Go(func() { acquired[i], errs[i] = r.acquire(ctx, p, a.gen.ID) })
	}
	wg.Wait()
	for i, p := range missing {
		switch err := errs[i]; {
		case errors.Is(err, ErrResetRefused):
			return err
		case errors.Is(err, clickhouse.ErrClaimLost):
			r.cfg.Log.Warn("unit claimed by a member of a later generation; leaving it", "unit", p, "generation", a.gen.ID)
			continue
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			r.cfg.Log.Warn("restore unit; retrying", "unit", p, "err", err)
			continue
		}
		r.units[p] = acquired[i]
		r.startReaders(a.gen, acquired[i], out)
	}
	owned := slices.Sorted(maps.Keys(r.units))
	r.owned.Store(&owned)
	r.cfg.Metrics.UnitsAssigned.Set(float64(len(owned)))
	r.worked.Store(len(owned) == len(a.units))
	return nil
}

func (r *Runner) startReaders(gen *kafka.Generation, u *unit, out chan<- batch) {
	for _, t := range r.partitionsOf(u.p) {
		gen.Start(func(ctx context.Context) { r.readPartition(ctx, t, u, out) })
	}
}

// handBack runs as a generation ends, before this member joins the next:
// every unit is flushed and checkpointed, so that one that moves is
// restored where this member left it. It is bounded by the rebalance
// timeout; a unit that moves without it is restored from its last
// checkpoint instead, and its rows are still right (see drop and Reemit).
func (r *Runner) handBack(gen *kafka.Generation) {
	ctx, cancel := context.WithTimeout(context.Background(), rebalanceTimeout-time.Second)
	defer cancel()
	written := make(chan error, 1)
	ok := r.onLoop(ctx, func(lctx context.Context) error {
		if r.assigned.gen != gen || len(r.units) == 0 {
			written <- nil
			return nil
		}
		return r.flushNotify(lctx, true, written)
	})
	if !ok {
		return
	}
	select {
	case err := <-written:
		if err != nil {
			r.cfg.Log.Warn("checkpoint at the end of a generation", "generation", gen.ID, "err", err)
		}
	case <-ctx.Done():
		r.cfg.Log.Warn("checkpoint at the end of a generation took too long; the units that move restart from their previous checkpoint",
			"generation", gen.ID, "waited", rebalanceTimeout-time.Second)
	}
}

// fence stops the work of generation gen's units at once: a commit was
// refused because the group has moved on without this member.
func (r *Runner) fence(gen *kafka.Generation) {
	go r.onLoop(context.Background(), func(context.Context) error {
		if r.assigned.gen != gen {
			return nil
		}
		for _, u := range r.units {
			r.drop(u)
		}
		r.assigned.units = nil
		r.owned.Store(&[]int{})
		r.cfg.Metrics.UnitsAssigned.Set(0)
		return nil
	})
}

// unitsOf lists the partition numbers assigned in both topics.
func unitsOf(assignments map[string][]kafka.PartitionAssignment, license, usage string) []int {
	in := map[int]int{}
	for _, topic := range []string{license, usage} {
		for _, p := range assignments[topic] {
			in[p.ID]++
		}
	}
	var units []int
	for p, n := range in {
		if n == 2 {
			units = append(units, p)
		}
	}
	sort.Ints(units)
	return units
}

// unitBalancer is the group's assignor: partition p of both topics always
// goes to one member, and members keep the units they report working (in
// their join's user data) as far as balance allows, so a rebalance moves
// only the units that must move.
type unitBalancer struct {
	license, usage string
	owned          func() []int
}

func (unitBalancer) ProtocolName() string { return "seatflow-units" }

func (b unitBalancer) UserData() ([]byte, error) { return json.Marshal(b.owned()) }

func (b unitBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	count := map[int]int{}
	for _, p := range partitions {
		if p.Topic == b.license || p.Topic == b.usage {
			count[p.ID]++
		}
	}
	var units []int
	for p, n := range count {
		if n == 2 {
			units = append(units, p)
		}
	}
	held := map[string][]int{}
	for _, m := range members {
		var owned []int
		if json.Unmarshal(m.UserData, &owned) == nil {
			held[m.ID] = owned
		}
	}
	out := kafka.GroupMemberAssignments{}
	for id, us := range assignUnits(held, units) {
		out[id] = map[string][]int{b.license: us, b.usage: us}
	}
	return out
}

// assignUnits shares units among members (by ID, with the units each
// holds now): every member gets ⌊n/m⌋ or ⌈n/m⌉, keeping what it holds
// first. It is deterministic: members are taken in ID order.
func assignUnits(held map[string][]int, units []int) map[string][]int {
	ids := slices.Sorted(maps.Keys(held))
	out := map[string][]int{}
	if len(ids) == 0 {
		return out
	}
	exists := map[int]bool{}
	for _, u := range units {
		exists[u] = true
	}
	base, extra := len(units)/len(ids), len(units)%len(ids)
	taken := map[int]bool{}
	// keep what each holds, up to ⌈n/m⌉, with at most `extra` members above ⌊n/m⌋
	for _, id := range ids {
		limit := base
		if extra > 0 {
			limit = base + 1
		}
		for _, u := range slices.Sorted(slices.Values(held[id])) {
			if len(out[id]) < limit && exists[u] && !taken[u] {
				out[id] = append(out[id], u)
				taken[u] = true
			}
		}
		if len(out[id]) > base {
			extra--
		}
	}
	// the rest, each to a member with the fewest
	for _, u := range slices.Sorted(slices.Values(units)) {
		if taken[u] {
			continue
		}
		best := ""
		for _, id := range ids {
			if best == "" || len(out[id]) < len(out[best]) {
				best = id
			}
		}
		out[best] = append(out[best], u)
	}
	for _, id := range ids {
		sort.Ints(out[id])
		if out[id] == nil {
			out[id] = []int{}
		}
	}
	return out
}
