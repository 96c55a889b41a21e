package runner

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/seatflow/seatflow/pipeline/figures"
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
	version    uint64
	rows       figures.Rows
	dead       []deadletter.Entry
	checkpoint *clickhouse.Checkpoint // nil: rows only
	start      time.Time              // when the flush began
	stateTime  time.Duration          // building the checkpoint's state
}

type sink struct {
	writes   chan write
	dead     chan struct{} // closed when the goroutine ends
	err      error         // why it ended, read after dead is closed
	cancel   context.CancelFunc
	finished bool // finish was called: nothing more may be sent
}

func (r *Runner) startSink(ctx context.Context) *sink {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx)) // the final flush outlives Run's context
	s := &sink{writes: make(chan write, 1), dead: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.dead)
		for {
			select {
			case w, ok := <-s.writes:
				if !ok {
					return
				}
				if err := r.write(ctx, w); err != nil {
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
	case <-s.dead:
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
	case <-s.dead:
	case <-ctx.Done():
		s.stop()
	}
	return s.err
}

// stop gives up on queued writes and waits for the goroutine to end.
func (s *sink) stop() {
	s.cancel()
	<-s.dead
}

func (r *Runner) write(ctx context.Context, w write) error {
	if err := r.writer.Write(ctx, w.rows, strconv.FormatUint(w.version, 10)); err != nil {
		return err
	}
	r.ready.Store(true)
	m := r.cfg.Metrics
	m.SinkRows.WithLabelValues("deployment_daily").Add(float64(len(w.rows.Deployment)))
	m.SinkRows.WithLabelValues("usage_daily").Add(float64(len(w.rows.Usage)))
	m.SinkRows.WithLabelValues("workload_daily").Add(float64(len(w.rows.Workload)))
	m.SinkRows.WithLabelValues("subscriptions").Add(float64(len(w.rows.Subscriptions)))
	m.SinkRows.WithLabelValues("user_activity").Add(float64(w.rows.ActivityLen()))
	rep, err := r.dlq.Write(ctx, w.dead)
	if err != nil {
		return err
	}
	m.DeadLetters.WithLabelValues("written").Add(float64(rep.Written))
	m.DeadLetters.WithLabelValues("truncated").Add(float64(rep.Truncated))
	m.DeadLetters.WithLabelValues("failed").Add(float64(rep.Failed))
	if len(w.dead) > 0 {
		r.cfg.Log.Info("wrote dead letters", "topic", r.cfg.DeadLetterTopic, "count", len(w.dead), "truncated", rep.Truncated,
			"failed", rep.Failed, "first_reason", w.dead[0].Reason, "first_detail", w.dead[0].Detail)
	}
	r.flushes.Add(1)
	m.FlushDuration.Observe(time.Since(w.start).Seconds())
	if w.checkpoint == nil {
		return nil
	}
	start := time.Now()
	// a ClickHouse outage during a save waits like one during an insert,
	// rather than ending the run
	if err := r.writer.Retry(ctx, "checkpoints", func() error { return r.cps.Save(ctx, *w.checkpoint) }); err != nil {
		return err
	}
	m.Checkpoint.Observe((w.stateTime + time.Since(start)).Seconds())
	r.commit(w.checkpoint.Offsets)
	return nil
}

// commit tells Kafka the checkpoint's offsets. A failure is only logged:
// the checkpoint holds the offsets, and a later commit catches up.
func (r *Runner) commit(offsets map[string]int64) {
	gen := r.gen.Load()
	if gen == nil {
		return
	}
	commits := map[string]map[int]int64{}
	for _, t := range r.allPartitions() {
		off, ok := offsets[t.String()]
		if !ok || r.lastCommit[t] == off {
			continue
		}
		if commits[t.topic] == nil {
			commits[t.topic] = map[int]int64{}
		}
		commits[t.topic][t.partition] = off
	}
	if len(commits) == 0 {
		return
	}
	if err := gen.CommitOffsets(commits); err != nil {
		r.cfg.Log.Warn("commit offsets to Kafka", "err", err)
		return
	}
	for topic, parts := range commits {
		for p, off := range parts {
			r.lastCommit[tp{topic, p}] = off
		}
	}
}
