package runner

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

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
	m := r.cfg.Metrics
	for _, u := range units {
		p := u.p
		u.seq++
		w.rows.Append(u.engine.Emit(u.version()))
		w.deadLetters = append(w.deadLetters, u.deadLetters...)
		u.deadLetters = nil
		if wm := u.engine.Watermark(); wm > 0 {
			m.UnitWatermark.WithLabelValues(strconv.Itoa(p)).Set(float64(wm) / 1e9)
		}
		st := u.engine.Stats()
		m.Unknown.WithLabelValues("sku").Add(float64(st.UnknownSKUEvents - u.stats.UnknownSKUEvents))
		m.Unknown.WithLabelValues("workload").Add(float64(st.UnknownWorkloadEvents - u.stats.UnknownWorkloadEvents))
		u.stats = st
		if checkpoint {
			start := time.Now()
			cp, err := r.checkpointOf(u)
			if err != nil {
				return err
			}
			w.checkpoints = append(w.checkpoints, unitCheckpoint{u, cp})
			w.stateTime += time.Since(start)
		}
	}
	w.rows.SortActivity() // the units' runs, each in key order
	err := r.sink.send(ctx, w)
	if err != nil && ctx.Err() != nil {
		// the rows left the engines: a clean stop still writes them
		r.unsent = &w
	}
	return err
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
