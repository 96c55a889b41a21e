package runner

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seatflow/seatflow/pipeline/row"

	"github.com/seatflow/seatflow/sinks/clickhouse"
)

// flush takes every unit's changed rows and dead letters (and, with
// checkpoint, its state and offsets) and queues them for the sink.
func (r *Runner) flush(ctx context.Context, checkpoint bool) error {
	return r.flushNotify(ctx, checkpoint, nil)
}

// flushNotify is flush, telling written (if not nil) once the sink has
// written it all.
func (r *Runner) flushNotify(ctx context.Context, checkpoint bool, written chan<- error) error {
	var units []*unit
	for _, p := range slices.Sorted(maps.Keys(r.units)) {
		units = append(units, r.units[p])
	}
	if err := r.flushUnits(ctx, units, checkpoint, written); err != nil {
		return err
	}
	var users, tenants, skus int
	for _, u := range units {
		users, tenants, skus = users+u.engine.Users(), tenants+u.engine.Tenants(), skus+u.engine.TenantSKUs()
	}
	m := r.cfg.Metrics
	m.StateUsers.Set(float64(users))
	m.StateTenants.Set(float64(tenants))
	m.StateSKUs.Set(float64(skus))
	return nil
}

// pending counts the user_activity rows waiting in all units.
func (r *Runner) pending() int {
	n := 0
	for _, u := range r.units {
		n += u.engine.Pending()
	}
	return n
}

// flushUnits is flush of some units only: one whose events ran ahead of
// its bitmaps flushes alone, and leaves the others' days to the interval.
func (r *Runner) flushUnits(ctx context.Context, units []*unit, checkpoint bool, written chan<- error) error {
	r.flushSeq++
	w := write{start: time.Now(), token: r.member + "-" + strconv.FormatUint(r.flushSeq, 10), written: written}
	// Units share nothing: their emits and checkpoint states are built on
	// every core. At the end of a backlog this is most of a flush's work.
	type out struct {
		rows  row.Set
		cp    clickhouse.Checkpoint
		state time.Duration
		err   error
	}
	outs := make([]out, len(units))
	for _, u := range units {
		u.seq++
	}
	onEveryCore(len(units), func(i int) {
		u, o := units[i], &outs[i]
		o.rows = u.engine.Emit(u.version())
		if checkpoint {
			start := time.Now()
			o.cp, o.err = r.checkpointOf(u)
			o.state = time.Since(start)
		}
	})
	m := r.cfg.Metrics
	sets := make([]row.Set, len(units))
	for i, u := range units {
		if err := outs[i].err; err != nil {
			return err
		}
		sets[i] = outs[i].rows
		w.deadLetters = append(w.deadLetters, u.deadLetters...)
		u.deadLetters = nil
		if wm := u.engine.Watermark(); wm > 0 {
			m.UnitWatermark.WithLabelValues(strconv.Itoa(u.p)).Set(float64(wm) / 1e9)
		}
		st := u.engine.Stats()
		m.Unknown.WithLabelValues("sku").Add(float64(st.UnknownSKUEvents - u.stats.UnknownSKUEvents))
		m.Unknown.WithLabelValues("workload").Add(float64(st.UnknownWorkloadEvents - u.stats.UnknownWorkloadEvents))
		u.stats = st
		if checkpoint {
			w.checkpoints = append(w.checkpoints, unitCheckpoint{u, outs[i].cp})
			w.stateTime = max(w.stateTime, outs[i].state)
		}
	}
	w.rows = row.Join(sets)
	err := r.sink.send(ctx, w)
	if err != nil && ctx.Err() != nil {
		// the rows left the engines: a clean stop still writes them
		r.unsent = &w
	}
	return err
}

// onEveryCore runs f(0) to f(n-1) on up to GOMAXPROCS goroutines and
// returns when all are done.
func onEveryCore(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

func (r *Runner) checkpointOf(u *unit) (clickhouse.Checkpoint, error) {
	var state bytes.Buffer
	if err := u.engine.WriteState(&state); err != nil {
		return clickhouse.Checkpoint{}, fmt.Errorf("checkpoint unit %d: %w", u.p, err)
	}
	offsets := map[string]int64{}
	for i, t := range r.partitionsOf(u.p) {
		if u.known[i] {
			offsets[t.String()] = u.next[i]
		}
	}
	return clickhouse.Checkpoint{Unit: int32(u.p), Version: u.version(), Offsets: offsets, State: state.Bytes()}, nil
}
