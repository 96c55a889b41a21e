package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/sinks/deadletter"
)

// A unit is partition p of both topics: the tenants whose events land
// there (SPEC §2 keys them by tenant_id), with their own figure state,
// watermark, checkpoint and flushes. One member of the group works a unit
// at a time; nothing couples two units.
type unit struct {
	p      int
	engine *figures.Engine // sources: 0 the license partition, 1 the usage one
	// next is the offset after the last message applied, per side;
	// known false: nothing applied or restored yet (read from the start)
	next        [2]int64
	known       [2]bool
	pending     [2]*paused // a side's messages waiting for the watermark or for the other side
	deadLetters []deadletter.Entry

	// epoch leads the unit's row and checkpoint versions: each claim of
	// the unit (a restore, by any member) takes a higher one, so a later
	// owner's rows replace an earlier owner's whatever their positions.
	// seq counts the unit's flushes.
	epoch, seq uint64
	stats      figures.Stats // engine counters already added to the metrics

	acquired time.Time // for seatflow_unit_handoff_seconds, until the first applied event
	handedIn bool
	// retired is set once another member may own the unit: the sink
	// then commits none of its offsets.
	retired atomic.Bool
	// committed: the offsets last committed to Kafka, per side, and the
	// checkpoints saved (the sink's goroutine alone uses them)
	committed [2]int64
	saves     int
}

// seqBits of a version are the unit's flush count; the rest, its epoch.
const seqBits = 40

func (u *unit) version() uint64 { return u.epoch<<seqBits | u.seq }

// side of a partition in its unit: 0 for the license topic, 1 for usage.
func (r *Runner) side(t topicPartition) int {
	if t.topic == r.cfg.LicenseTopic {
		return 0
	}
	return 1
}

// partitions of unit p: its license partition, then its usage one.
func (r *Runner) partitionsOf(p int) [2]topicPartition {
	return [2]topicPartition{{r.cfg.LicenseTopic, p}, {r.cfg.UsageTopic, p}}
}

// checkpointsKept is how many checkpoints of each unit stay: an older one
// is there when the newest cannot be read.
const checkpointsKept = 3

// acquire takes unit p for this member in generation gen: it restores the
// newest readable checkpoint (an older one when the newest cannot be
// read), claims a new epoch, and sets where the unit's readers start.
func (r *Runner) acquire(ctx context.Context, p int, gen int32) (*unit, error) {
	start := time.Now()
	engine, err := r.newEngine()
	if err != nil {
		return nil, err
	}
	u := &unit{p: p, engine: engine, acquired: start}
	cp, newest, err := r.restoreInto(ctx, u)
	if err != nil {
		return nil, err
	}
	if cp.Version == 0 && !r.cfg.AllowReset {
		if why, err := r.startedBefore(ctx, p); err != nil {
			return nil, err
		} else if why != "" {
			return nil, fmt.Errorf("%w: unit %d has no checkpoint, yet %s. Starting it from nothing would rewrite its figures from what retention kept; restore the checkpoints, or allow the reset if that is what you want",
				ErrResetRefused, p, why)
		}
	}
	// above the newest checkpoint's epoch, readable or not, so that this
	// owner's checkpoints outrank it
	if u.epoch, err = r.cps.Claim(ctx, int32(p), gen, r.member, max(cp.Version, newest)>>seqBits); err != nil {
		return nil, err
	}
	u.seq = cp.Version & (1<<seqBits - 1)
	for i, t := range r.partitionsOf(p) {
		if u.known[i] {
			r.positions.set(t, u.next[i])
		} else {
			r.positions.forget(t)
		}
	}
	r.cfg.Log.Info("unit acquired", "unit", p, "generation", gen, "epoch", u.epoch, "checkpoint", cp.Version,
		"state_bytes", len(cp.State), "took", time.Since(start).Round(time.Millisecond))
	return u, nil
}

// ErrResetRefused: a unit would start from nothing where it was worked
// before; Config.AllowReset lets it.
var ErrResetRefused = errors.New("refusing to start a unit from nothing")

// startedBefore says why unit p, which has no checkpoint, was worked
// before, or "" if it was not: the group committed offsets for its
// partitions (only ever after a checkpoint), another consumer group claims
// the unit in this database (its rows would outrank this group's), or
// the database holds checkpoints from before units. What it reads is read
// once for all of an assignment's units (a first start has no checkpoints
// at all).
func (r *Runner) startedBefore(ctx context.Context, p int) (string, error) {
	r.usedBeforeMu.Lock()
	defer r.usedBeforeMu.Unlock()
	if r.usedBefore == nil {
		topics := map[string][]int{}
		for _, u := range r.assigned.units {
			for _, t := range r.partitionsOf(u) {
				topics[t.topic] = append(topics[t.topic], t.partition)
			}
		}
		resp, err := r.kafka.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: r.cfg.Group, Topics: topics})
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			return "", fmt.Errorf("committed offsets: %w", err)
		}
		others, all, err := r.cps.OtherWriters(ctx)
		if err != nil {
			return "", err
		}
		r.usedBefore = others
		for _, u := range r.assigned.units {
			if r.usedBefore[u] == "" && all != "" {
				r.usedBefore[u] = all
			}
		}
		for topic, parts := range resp.Topics {
			for _, part := range parts {
				if part.CommittedOffset > 0 && r.usedBefore[part.Partition] == "" {
					r.usedBefore[part.Partition] = fmt.Sprintf("the group %s has committed offset %d of %s/%d", r.cfg.Group, part.CommittedOffset, topic, part.Partition)
				}
			}
		}
	}
	return r.usedBefore[p], nil
}

func (r *Runner) newEngine() (*figures.Engine, error) {
	e, err := figures.New(figures.Config{Catalog: r.cfg.Catalog, Lateness: r.cfg.Lateness, Horizon: r.cfg.Horizon,
		MaxSkew: r.cfg.MaxSkew, NoUserActivity: r.cfg.NoUserActivity, Limits: r.cfg.Limits})
	if err != nil {
		return nil, err
	}
	e.SetSources(0, 1)
	return e, nil
}

// restoreInto loads u's newest readable checkpoint; none at all leaves u
// empty, read from the start of its partitions. newest is the newest
// checkpoint's version, readable or not.
func (r *Runner) restoreInto(ctx context.Context, u *unit) (cp clickhouse.Checkpoint, newest uint64, err error) {
	versions, err := r.cps.Versions(ctx, int32(u.p), checkpointsKept)
	if err != nil || len(versions) == 0 {
		return clickhouse.Checkpoint{}, 0, err
	}
	newest = versions[0]
	var failed []error
	for _, v := range versions {
		cp, err := r.cps.Load(ctx, int32(u.p), v)
		if err == nil {
			err = u.engine.ReadState(bytes.NewReader(cp.State))
		}
		if err != nil {
			failed = append(failed, err)
			r.cfg.Metrics.CheckpointFallbacks.Inc()
			r.cfg.Log.Warn("checkpoint unreadable; trying an older one", "unit", u.p, "version", v, "err", err)
			if u.engine, err = r.newEngine(); err != nil { // ReadState may have half-filled it
				return cp, newest, err
			}
			continue
		}
		for i, t := range r.partitionsOf(u.p) {
			u.next[i], u.known[i] = cp.Offsets[t.String()]
		}
		// rows an earlier owner wrote after this checkpoint are rewritten
		// at this owner's epoch
		u.engine.Reemit()
		return cp, newest, nil
	}
	return clickhouse.Checkpoint{}, newest, fmt.Errorf("unit %d: none of its %d newest checkpoints can be read: %w", u.p, len(failed), errors.Join(failed...))
}

// drop lets unit u go: its queued and paused batches are given back, and
// the sink commits none of its offsets from now on.
func (r *Runner) drop(u *unit) {
	u.retired.Store(true)
	for i, t := range r.partitionsOf(u.p) {
		if p := u.pending[i]; p != nil {
			for _, s := range p.spent {
				r.recycle(t, s)
			}
			r.release(t, len(p.spent))
			u.pending[i] = nil
		}
		r.positions.forget(t)
		r.cfg.Metrics.Lag.DeleteLabelValues(t.topic, strconv.Itoa(t.partition))
	}
	r.cfg.Metrics.UnitWatermark.DeleteLabelValues(strconv.Itoa(u.p))
	delete(r.units, u.p)
}

// process applies one fetched batch, or queues it behind a paused side's
// messages. A batch read for a unit this member no longer works (or works
// anew, restored) is given back unapplied.
func (r *Runner) process(ctx context.Context, b batch) error {
	t := b.part
	u := r.units[t.partition]
	if u == nil || u != b.unit {
		r.recycle(t, b.spare)
		r.release(t, 1)
		return nil
	}
	side := r.side(t)
	if p := u.pending[side]; p != nil { // the side is paused: keep order
		p.msgs = append(p.msgs, b.msgs...)
		p.spent = append(p.spent, b.spare)
		p.atEnd = b.atEnd
		return nil
	}
	msgs := b.msgs
	if u.known[side] {
		covered := 0 // by the restored checkpoint, or already applied
		for covered < len(msgs) && msgs[covered].offset < u.next[side] {
			covered++
		}
		r.processed.Add(int64(covered))
		msgs = msgs[covered:]
	}
	n, err := r.applyRun(ctx, u, t, msgs, true)
	if err != nil {
		return err
	}
	if n < len(msgs) {
		u.pending[side] = &paused{msgs: msgs[n:], spent: []spare{b.spare}, atEnd: b.atEnd}
		// what this side applied before it paused may be what the other
		// side waits for
		return r.retryPaused(ctx, u)
	}
	// the spare first: the credit wakes the reader, which takes a spare
	// if one is there and allocates anew if not
	r.recycle(t, b.spare)
	r.release(t, 1)
	if b.atEnd {
		// at its end now rather than at the next lag check: the other
		// side may be waiting for it
		u.engine.SetIdle(int32(side), true)
	}
	if r.pending() >= MaxPendingRows {
		// a backfill finds rows faster than the flush interval wants
		// them: flush early, which bounds memory and keeps inserts even
		if err := r.flush(ctx, false); err != nil {
			return err
		}
	}
	return r.retryPaused(ctx, u)
}

// applyRun applies t's msgs in order until one must wait, and says how
// many went.
func (r *Runner) applyRun(ctx context.Context, u *unit, t topicPartition, msgs []message, flushIfAhead bool) (n int, err error) {
	// The run's offset and counts are recorded once at its end: per
	// message, a map write and a counter lookup were a tenth of the
	// apply loop.
	var consumed [event.Usage + 1]int64
	side := r.side(t)
	defer func() {
		if n > 0 {
			u.next[side], u.known[side] = msgs[n-1].offset+1, true
			if !u.handedIn {
				u.handedIn = true
				r.cfg.Metrics.Handoff.Observe(time.Since(u.acquired).Seconds())
			}
		}
		r.processed.Add(int64(n))
		for k, c := range consumed {
			if c > 0 {
				r.consumed[consumedKey{t.topic, event.Kind(k)}].Add(float64(c))
			}
		}
	}()
	for ; n < len(msgs); n++ {
		done, err := r.apply(ctx, u, t, &msgs[n], flushIfAhead, &consumed)
		if err != nil {
			return n, err
		}
		if !done {
			break
		}
	}
	return n, nil
}

// apply applies one decoded message; false means it is too far ahead of
// the unit's watermark (even after a flush, with flushIfAhead) or of its
// other side, and its side pauses.
func (r *Runner) apply(ctx context.Context, u *unit, t topicPartition, m *message, flushIfAhead bool, consumed *[event.Usage + 1]int64) (bool, error) {
	if m.rej != nil {
		r.reject(u, t, m, m.rej)
		return true, nil
	}
	ev := &m.ev
	src := int32(r.side(t))
	outcome, rej, err := u.engine.Apply(src, ev)
	if errors.Is(err, figures.ErrAhead) && flushIfAhead {
		// a flush of the unit may let its bitmaps slide
		if err := r.flushUnits(ctx, []*unit{u}, false, nil); err != nil {
			return false, err
		}
		outcome, rej, err = u.engine.Apply(src, ev)
	}
	if errors.Is(err, figures.ErrAhead) || errors.Is(err, figures.ErrSkew) {
		return false, nil // the side pauses
	}
	if err != nil {
		return false, err
	}
	consumed[ev.Kind]++
	if rej != nil {
		if rej.Reason == event.TooLate {
			r.cfg.Metrics.Late.WithLabelValues("rejected").Inc()
		}
		r.reject(u, t, m, rej)
		return true, nil
	}
	if outcome == figures.Restated {
		r.cfg.Metrics.Late.WithLabelValues("restated").Inc()
	}
	return true, nil
}

// retryPaused applies what u's paused sides hold, as far as each may go,
// and goes round again while either went on: one side going on moves the
// watermark or the slowest mark the other waits for.
func (r *Runner) retryPaused(ctx context.Context, u *unit) error {
	for progress := true; progress; {
		progress = false
		for side, p := range u.pending {
			if p == nil {
				continue
			}
			t := r.partitionsOf(u.p)[side]
			n, err := r.applyRun(ctx, u, t, p.msgs, false)
			if err != nil {
				return err
			}
			progress = progress || n > 0
			p.msgs = p.msgs[n:]
			if len(p.msgs) == 0 {
				u.pending[side] = nil
				for _, s := range p.spent {
					r.recycle(t, s)
				}
				r.release(t, len(p.spent))
				if p.atEnd {
					u.engine.SetIdle(int32(side), true)
				}
			}
		}
	}
	return nil
}

func (r *Runner) reject(u *unit, t topicPartition, m *message, rej *event.Rejection) {
	r.cfg.Metrics.Rejected.WithLabelValues(string(rej.Reason)).Inc()
	src := kafka.Message{Topic: t.topic, Partition: t.partition, Offset: m.offset,
		Key: bytes.Clone(m.key), Value: bytes.Clone(m.value)} // not the whole fetch they alias
	u.deadLetters = append(u.deadLetters, deadletter.Entry{Source: src, Reason: string(rej.Reason), Detail: rej.Detail})
}
