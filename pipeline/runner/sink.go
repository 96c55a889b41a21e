package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/row"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/sinks/deadletter"
)

// A flush's output goes to ClickHouse and the dead-letter topic from a
// goroutine of its own, so that applying events goes on while ClickHouse
// takes the rows (on a 2-core machine the apply loop otherwise waited for
// the inserts about as long as it worked). Writes run in flush order: a
// checkpoint is saved only after every row before it, and offsets are
// committed only after their checkpoint. One write waits while another
// runs, so at most two flushes' rows are held.
type write struct {
	token       string // names the write, for ClickHouse's deduplication of a retried insert
	rows        row.Set
	deadLetters []deadletter.Entry
	checkpoints []unitCheckpoint // none: rows only
	start       time.Time        // when the flush began
	stateTime   time.Duration    // building the checkpoints' states
	written     chan<- error     // if set, hears once the write is done
}

// unitCheckpoint is a unit's checkpoint in a write: once it is saved, the
// unit's offsets are committed, unless the unit was let go meanwhile.
type unitCheckpoint struct {
	unit *unit
	cp   clickhouse.Checkpoint
}

type sink struct {
	writes   chan write
	ended    chan struct{} // closed when the goroutine ends
	err      error         // why it ended, read after ended is closed
	cancel   context.CancelFunc
	finished bool // finish was called: nothing more may be sent
}

func (r *Runner) startSink(ctx context.Context) *sink {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx)) // the final flush outlives Run's context
	s := &sink{writes: make(chan write, 1), ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.ended)
		for {
			select {
			case w, ok := <-s.writes:
				if !ok {
					return
				}
				err := r.write(ctx, w)
				if w.written != nil {
					w.written <- err
				}
				if err != nil {
					s.err = err
					return
				}
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			}
		}
	}()
	return s
}

// send queues a write; it waits while the previous one is still queued.
func (s *sink) send(ctx context.Context, w write) error {
	select {
	case s.writes <- w:
		return nil
	case <-s.ended:
		return s.failure()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sink) failure() error {
	if s.err != nil {
		return s.err
	}
	return fmt.Errorf("the ClickHouse writer stopped")
}

// finish writes what is queued and stops; when ctx ends first, it gives
// up on the rest (the last checkpoint still holds what was not written).
func (s *sink) finish(ctx context.Context) error {
	s.finished = true
	close(s.writes)
	select {
	case <-s.ended:
	case <-ctx.Done():
		s.stop()
	}
	return s.err
}

// stop gives up on queued writes and waits for the goroutine to end.
func (s *sink) stop() {
	s.cancel()
	<-s.ended
}

func (r *Runner) write(ctx context.Context, w write) error {
	if err := r.writer.Write(ctx, w.rows, w.token); err != nil {
		return err
	}
	r.ready.Store(true)
	m := r.cfg.Metrics
	for _, b := range w.rows.Batches() {
		m.SinkRows.WithLabelValues(b.Table()).Add(float64(b.Rows()))
	}
	rep, err := r.dlq.Write(ctx, w.deadLetters)
	if err != nil {
		return err
	}
	m.DeadLetters.WithLabelValues("written").Add(float64(rep.Written))
	m.DeadLetters.WithLabelValues("truncated").Add(float64(rep.Truncated))
	m.DeadLetters.WithLabelValues("failed").Add(float64(rep.Failed))
	if len(w.deadLetters) > 0 {
		r.cfg.Log.Info("wrote dead letters", "topic", r.cfg.DeadLetterTopic, "count", len(w.deadLetters), "truncated", rep.Truncated,
			"failed", rep.Failed, "first_reason", w.deadLetters[0].Reason, "first_detail", w.deadLetters[0].Detail)
	}
	r.flushes.Add(1)
	m.FlushDuration.Observe(time.Since(w.start).Seconds())
	if len(w.checkpoints) == 0 {
		return nil
	}
	start := time.Now()
	cps := make([]clickhouse.Checkpoint, len(w.checkpoints))
	for i, c := range w.checkpoints {
		cps[i] = c.cp
	}
	// a ClickHouse outage during a save waits like one during an insert,
	// rather than ending the run
	if err := r.writer.Retry(ctx, "checkpoints", func() error { return r.cps.Save(ctx, cps...) }); err != nil {
		return err
	}
	for _, c := range w.checkpoints {
		if c.unit.saves++; c.unit.saves%pruneEvery == 0 {
			if err := r.cps.Prune(ctx, c.cp.Unit, checkpointsKept); err != nil {
				r.cfg.Log.Warn("prune old checkpoints", "unit", c.cp.Unit, "err", err)
			}
		}
	}
	m.Checkpoint.Observe((w.stateTime + time.Since(start)).Seconds())
	r.commit(w.checkpoints)
	return nil
}

// pruneEvery: a unit's old checkpoints are deleted at every pruneEvery-th
// save (a delete is a mutation: not every minute).
const pruneEvery = 16

// commit tells Kafka the checkpoints' offsets, for lag monitoring (the
// checkpoints are what a restore reads). Units let go meanwhile are left
// out: another member may own them. A commit the group refuses because it
// has moved on without this member fences the generation's units at once;
// any other failure is only logged, and a later commit catches up.
func (r *Runner) commit(cps []unitCheckpoint) {
	gen := r.gen.Load()
	if gen == nil {
		return
	}
	commits := map[string]map[int]int64{}
	for _, c := range cps {
		if c.unit.retired.Load() {
			continue
		}
		for i, t := range r.partitionsOf(c.unit.p) {
			off, ok := c.cp.Offsets[t.String()]
			if !ok || c.unit.committed[i] == off {
				continue
			}
			if commits[t.topic] == nil {
				commits[t.topic] = map[int]int64{}
			}
			commits[t.topic][t.partition] = off
		}
	}
	if len(commits) == 0 {
		return
	}
	if err := gen.CommitOffsets(commits); err != nil {
		r.cfg.Log.Warn("commit offsets to Kafka", "generation", gen.ID, "err", err)
		if errors.Is(err, kafka.IllegalGeneration) || errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.FencedInstanceID) {
			r.fence(gen)
		}
		return
	}
	for _, c := range cps {
		for i, t := range r.partitionsOf(c.unit.p) {
			if off, ok := commits[t.topic][t.partition]; ok {
				c.unit.committed[i] = off
			}
		}
	}
}
