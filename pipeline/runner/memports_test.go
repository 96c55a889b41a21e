package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/seatflow/seatflow/pipeline/row"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/sinks/deadletter"
	"github.com/seatflow/seatflow/testenv/reference"
)

// MemPorts keep the runner's records in memory, for tests of units,
// rebalances and handoffs without ClickHouse: rows as a ReplacingMergeTree
// keeps them (the highest version of a key wins), checkpoints and claims
// as sinks/clickhouse keeps them.
type MemPorts struct {
	mu     sync.Mutex
	rows   map[string]memRow
	clash  []string // a (key, version) written twice with different values
	cps    map[int32]map[uint64]clickhouse.Checkpoint
	claims map[int32][]memClaim
	dead   []deadletter.Entry
}

type memRow struct {
	version uint64
	value   string
}

type memClaim struct {
	epoch      uint64
	generation int32
}

func NewMemPorts() *MemPorts {
	return &MemPorts{rows: map[string]memRow{}, cps: map[int32]map[uint64]clickhouse.Checkpoint{}, claims: map[int32][]memClaim{}}
}

// Ports wires m into a runner.
func (m *MemPorts) Ports() Ports {
	return Ports{Rows: memRows{m}, Checkpoints: memCheckpoints{m}, DeadLetters: memDeadLetters{m}, Skips: memSkips{}}
}

// Rows are the snapshot rows as FINAL reads them, keyed as RowsOfReference.
func (m *MemPorts) Rows() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.rows))
	for k, r := range m.rows {
		out[k] = r.value
	}
	return out
}

// Clashes lists the (key, version) pairs written with two values.
func (m *MemPorts) Clashes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.clash)
}

// DeadLetterCount counts the dead letters written.
func (m *MemPorts) DeadLetterCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.dead)
}

// RowsOfReference keys the reference's snapshot rows as Rows does.
func RowsOfReference(ref reference.Result) map[string]string { return rowsOf(ref) }

type memRows struct{ m *MemPorts }

// Write folds a write's rows as an insert does (of one key and version,
// the last row in the block), then keeps the higher version of each key;
// another write's row of the same key and version must be the same.
func (s memRows) Write(_ context.Context, rows row.Set, _ string) error {
	block := map[string]memRow{}
	eachRow(rows, func(key string, version uint64, value string) {
		if old, ok := block[key]; !ok || version >= old.version {
			block[key] = memRow{version, value}
		}
	})
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, r := range block {
		old, ok := m.rows[key]
		switch {
		case ok && old.version == r.version && old.value != r.value:
			m.clash = append(m.clash, fmt.Sprintf("%s @%d: %s and %s", key, r.version, old.value, r.value))
		case !ok || r.version > old.version:
			m.rows[key] = r
		}
	}
	return nil
}

// eachRow calls put with each snapshot row's key, version and value, keyed
// and written as rowsOf does the reference's.
func eachRow(rows row.Set, put func(key string, version uint64, value string)) {
	for _, r := range rows.Deployment {
		put(fmt.Sprint("deployment ", r.TenantID, " ", r.SKU, " ", r.Date), r.Version, fmt.Sprint(r.Sold, r.Trial, r.Assigned, r.Qualified, pct(r.DeploymentPct)))
	}
	for _, r := range rows.Usage {
		put(fmt.Sprint("usage ", r.TenantID, " ", r.SKU, " ", r.Workload, " ", r.Date), r.Version, fmt.Sprint(r.ActiveUsers, r.Qualified, pct(r.UsagePct)))
	}
	for _, r := range rows.Workload {
		put(fmt.Sprint("workload ", r.TenantID, " ", r.Workload, " ", r.Date), r.Version, fmt.Sprint(r.ActiveUsers))
	}
	for _, r := range rows.Subscriptions {
		put(fmt.Sprint("subscription ", r.TenantID, " ", r.SubscriptionID), r.Version, fmt.Sprint(r.SKU, r.PartnerID, r.Status, r.Trial, r.Quantity, r.OccurredAt))
	}
}

func (memRows) Retry(ctx context.Context, _ string, op func() error) error {
	for {
		err := op()
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type memCheckpoints struct{ m *MemPorts }

func (s memCheckpoints) Save(_ context.Context, cps ...clickhouse.Checkpoint) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	for _, cp := range cps {
		if s.m.cps[cp.Unit] == nil {
			s.m.cps[cp.Unit] = map[uint64]clickhouse.Checkpoint{}
		}
		cp.State = slices.Clone(cp.State)
		cp.Offsets = maps.Clone(cp.Offsets)
		s.m.cps[cp.Unit][cp.Version] = cp
	}
	return nil
}

func (s memCheckpoints) Versions(_ context.Context, unit int32, n int) ([]uint64, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	vs := slices.Sorted(maps.Keys(s.m.cps[unit]))
	slices.Reverse(vs)
	return vs[:min(n, len(vs))], nil
}

func (s memCheckpoints) Load(_ context.Context, unit int32, version uint64) (clickhouse.Checkpoint, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	cp, ok := s.m.cps[unit][version]
	if !ok {
		return cp, fmt.Errorf("no checkpoint %d of unit %d", version, unit)
	}
	return cp, nil
}

func (s memCheckpoints) Prune(_ context.Context, unit int32, keep int) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	vs := slices.Sorted(maps.Keys(s.m.cps[unit]))
	for _, v := range vs[:max(0, len(vs)-keep)] {
		delete(s.m.cps[unit], v)
	}
	return nil
}

func (s memCheckpoints) Claim(ctx context.Context, unit int32, generation int32, _ string, atLeast uint64) (uint64, error) {
	s.m.mu.Lock()
	var last uint64
	for _, c := range s.m.claims[unit] {
		last = max(last, c.epoch)
	}
	epoch := max(last, atLeast) + 1
	s.m.claims[unit] = append(s.m.claims[unit], memClaim{epoch, generation})
	s.m.mu.Unlock()
	if lost, _ := s.Superseded(ctx, unit, epoch, generation); lost {
		return 0, clickhouse.ErrClaimLost
	}
	return epoch, nil
}

func (s memCheckpoints) Superseded(_ context.Context, unit int32, epoch uint64, generation int32) (bool, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	for _, c := range s.m.claims[unit] {
		if c.epoch > epoch || c.epoch == epoch && c.generation > generation {
			return true, nil
		}
	}
	return false, nil
}

func (memCheckpoints) OtherWriters(context.Context) (map[int]string, string, error) {
	return map[int]string{}, "", nil
}

type memDeadLetters struct{ m *MemPorts }

func (s memDeadLetters) Write(_ context.Context, entries []deadletter.Entry) (deadletter.Report, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.m.dead = append(s.m.dead, entries...)
	return deadletter.Report{Written: len(entries)}, nil
}

type memSkips struct{}

func (memSkips) Covering(_ context.Context, topic string, partition int32, _ int64) (clickhouse.Skip, bool, error) {
	return clickhouse.Skip{Topic: topic, Partition: partition}, false, nil
}
