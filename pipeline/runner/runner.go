// Package runner is the running pipeline: it reads both event topics with a
// Kafka consumer group, decodes and applies events to the figure core,
// writes rows to ClickHouse and rejects to the dead-letter topic, and
// checkpoints the state with the offsets it covers. Offsets are committed to
// Kafka only after everything they produced is in ClickHouse.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/sinks/deadletter"
)

// Config configures a Runner.
type Config struct {
	Brokers                                   []string
	LicenseTopic, UsageTopic, DeadLetterTopic string
	Group                                     string
	Database                                  string
	FlushInterval                             time.Duration // default 5 s
	CheckpointInterval                        time.Duration // default 1 min
	Lateness, Horizon                         time.Duration
	MaxSkew                                   time.Duration // see figures.Config
	NoUserActivity                            bool          // see figures.Config
	Limits                                    figures.Limits
	Drain                                     bool // stop once every partition is read to its end
	Catalog                                   *catalog.Catalog
	Log                                       *slog.Logger
	Metrics                                   *Metrics
	// Now is the processing clock (future timestamps are judged by it);
	// the partition readers call it concurrently.
	Now func() time.Time
}

// MaxPendingRows triggers a flush before the interval. The activity log
// holds a pending user_activity row in 20 bytes plus its user ID (about
// 130 MB at this bound), and fewer, larger flushes recompute fewer days
// and fold more days into each row they write. Draining 10M events
// (bench/, this 2-core machine) took 12.1 s at 1M, 10.5-11.8 s at 2M,
// 9.3-10.0 s at 3M and 9.3-10.1 s at 4M, at 1.5-2.0 GB peak RSS for all.
const MaxPendingRows = 3_000_000

// Runner is one pipeline instance.
type Runner struct {
	cfg     Config
	ch      driver.Conn
	writer  *clickhouse.Writer
	cps     *clickhouse.Checkpoints
	dlq     *deadletter.Writer
	engine  *figures.Engine
	ready   atomic.Bool
	version uint64
	// progress, for people watching: messages processed, total lag, flushes
	processed, lag, flushes atomic.Int64

	partitions int
	next       map[tp]int64 // next offset to process per partition
	consumed   map[consumedKey]prometheus.Counter
	stats      figures.Stats // engine counters already added to the metrics
	pending    map[tp]*paused
	dead       []deadletter.Entry
	lastCommit map[tp]int64

	// reading (consume.go)
	gen         atomic.Pointer[kafka.Generation] // the current one, for commits
	groupMu     sync.Mutex
	group       *kafka.ConsumerGroup // the current membership
	groupClosed bool                 // Run is over: join no more
	positions   positions
	credits     map[tp]chan struct{} // batches handed over and not yet applied
	spare       map[tp]chan spare    // applied batches' arrays and arenas, for the reader to fill again

	sink *sink // writes flushes (sink.go)
	// unsent is a flush whose rows left the engine while Run's context
	// ended before the sink took them: the clean stop sends it first.
	unsent *write
	kafka  *kafka.Client // partition ends, for lag
}

// paused holds a partition's messages while it waits for the watermark
// (ErrAhead) or for the slowest partition (ErrSkew), and the batch credits
// they hold.
type paused struct {
	msgs []message
	// spent: the batches msgs came from, a credit each, whose arrays and
	// arenas go back to the reader once msgs are applied
	spent []spare
	atEnd bool // the last batch reached the partition's end
}

// consumedKey picks a seatflow_events_consumed_total series; resolved once,
// not per event.
type consumedKey struct {
	topic string
	kind  event.Kind
}

type tp struct {
	topic     string
	partition int
}

func (t tp) String() string { return t.topic + "/" + strconv.Itoa(t.partition) }

// New checks the configuration and prepares a runner writing through ch.
func New(cfg Config, ch driver.Conn) (*Runner, error) {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 5 * time.Second
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("no Kafka brokers: set --kafka.brokers")
	}
	engine, err := figures.New(figures.Config{Catalog: cfg.Catalog, Lateness: cfg.Lateness, Horizon: cfg.Horizon, MaxSkew: cfg.MaxSkew, NoUserActivity: cfg.NoUserActivity, Limits: cfg.Limits})
	if err != nil {
		return nil, err
	}
	r := &Runner{
		cfg: cfg, ch: ch, engine: engine,
		writer: clickhouse.NewWriter(ch, cfg.Database),
		cps:    clickhouse.NewCheckpoints(ch, cfg.Database, cfg.Group),
		next:   map[tp]int64{}, pending: map[tp]*paused{}, lastCommit: map[tp]int64{},
		positions: positions{next: map[tp]int64{}}, credits: map[tp]chan struct{}{}, spare: map[tp]chan spare{},
		consumed: map[consumedKey]prometheus.Counter{},
		kafka:    &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second},
	}
	for _, topic := range []string{cfg.LicenseTopic, cfg.UsageTopic} {
		for _, k := range []event.Kind{event.Subscription, event.Assignment, event.Usage} {
			r.consumed[consumedKey{topic, k}] = cfg.Metrics.Consumed.WithLabelValues(topic, k.String())
		}
	}
	r.writer.OnRetry = func(table string, err error) {
		r.ready.Store(false)
		cfg.Metrics.SinkErrors.WithLabelValues(table).Inc()
		cfg.Log.Warn("ClickHouse write failed; retrying", "table", table, "err", err)
	}
	return r, nil
}

// Progress reports messages processed, the total lag, and the flushes done.
func (r *Runner) Progress() (processed, lag, flushes int64) {
	return r.processed.Load(), r.lag.Load(), r.flushes.Load()
}

// Ready reports whether the last flush reached ClickHouse.
func (r *Runner) Ready() bool { return r.ready.Load() }

func (r *Runner) source(t tp) int32 {
	if t.topic == r.cfg.LicenseTopic {
		return int32(t.partition)
	}
	return int32(r.partitions + t.partition)
}

// Run consumes until ctx ends (or, with Drain, until every partition is
// read to its end), then flushes and checkpoints.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.checkTopics(ctx); err != nil {
		return err
	}
	dlq, err := deadletter.Open(ctx, deadletter.Config{Brokers: r.cfg.Brokers, Topic: r.cfg.DeadLetterTopic, Log: r.cfg.Log,
		OnRetry: func(err error) {
			r.ready.Store(false)
			r.cfg.Log.Warn("write dead letters failed; retrying", "topic", r.cfg.DeadLetterTopic, "err", err)
		}})
	if err != nil {
		return err
	}
	r.dlq = dlq
	defer dlq.Close()
	if _, err := clickhouse.Migrate(ctx, r.ch, r.cfg.Database); err != nil {
		return err
	}
	if err := r.restore(ctx); err != nil {
		return err
	}
	r.ready.Store(true)
	group, err := r.newGroup()
	if err != nil {
		return err
	}
	// Readers are stopped by closing the group, after the final flush has
	// committed through it.
	defer r.closeGroup()
	batches := make(chan batch, 2*r.partitions*batchesInFlight)
	go r.consume(ctx, group, batches)
	r.sink = r.startSink(ctx)
	defer r.sink.stop() // on errors: the last checkpoint holds what was not written

	err = r.loop(ctx, batches)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) && !r.sink.finished {
		// stopped, perhaps while a flush waited for the sink: a clean
		// stop all the same
		return r.shutdown()
	}
	return err
}

// loop applies batches, flushes and watches the lag until ctx ends (it
// then returns ctx.Err()), an error, or the end of a drain.
func (r *Runner) loop(ctx context.Context, batches chan batch) error {
	flushT := time.NewTicker(r.cfg.FlushInterval)
	defer flushT.Stop()
	lagT := time.NewTicker(500 * time.Millisecond)
	defer lagT.Stop()
	lastCheckpoint := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.sink.dead:
			return r.sink.failure()
		case b := <-batches:
			if err := r.process(ctx, b); err != nil {
				return err
			}
			if r.cfg.Drain && b.atEnd && len(batches) == 0 {
				// a partition's last batch may end the drain: look now
				// rather than at the next lag check, up to 500 ms later
				if done, err := r.checkEnds(ctx, len(batches)); done || err != nil {
					return err
				}
			}
		case <-flushT.C:
			checkpoint := time.Since(lastCheckpoint) >= r.cfg.CheckpointInterval
			if err := r.flush(ctx, checkpoint); err != nil {
				return err
			}
			if checkpoint {
				lastCheckpoint = time.Now()
			}
			// the flush may have let the bitmaps slide: paused partitions
			// may go on
			if err := r.retryPaused(ctx); err != nil {
				return err
			}
		case <-lagT.C:
			if done, err := r.checkEnds(ctx, len(batches)); done || err != nil {
				return err
			}
		}
	}
}

// checkEnds reads every partition's end (the lag, and idle marks); paused
// partitions may go on after it, and a drain whose partitions are all
// read to their end, with none of the queued batches left, finishes:
// done says Run is over.
func (r *Runner) checkEnds(ctx context.Context, queued int) (done bool, err error) {
	caughtUp, err := r.updateLag(ctx)
	if err != nil {
		r.cfg.Log.Warn("read partition ends", "err", err)
		return false, nil // the next check tries again
	}
	// partitions found at their end again let the watermark follow the
	// others: a paused partition may go on
	if err := r.retryPaused(ctx); err != nil {
		return false, err
	}
	if r.cfg.Drain && caughtUp && queued == 0 {
		return true, r.finishDrain(ctx)
	}
	return false, nil
}

// finishDrain ends a drain: every partition is read to its end, so all
// are idle and the watermark passes the last events; a final flush and
// checkpoint, and the wait for their writes.
func (r *Runner) finishDrain(ctx context.Context) error {
	for _, s := range r.allPartitions() {
		r.engine.SetIdle(r.source(s), true)
	}
	if err := r.flush(ctx, true); err != nil {
		return err
	}
	return r.sink.finish(ctx)
}

func (r *Runner) shutdown() error {
	// A clean stop keeps what was done: flush and checkpoint with a fresh
	// context, bounded in time.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if w := r.unsent; w != nil {
		r.unsent = nil
		if err := r.sink.send(ctx, *w); err != nil {
			return fmt.Errorf("final flush: %w", err)
		}
	}
	if err := r.flush(ctx, true); err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	if err := r.sink.finish(ctx); err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	return nil
}

func (r *Runner) checkTopics(ctx context.Context) error {
	conn, err := kafka.DialContext(ctx, "tcp", r.cfg.Brokers[0])
	if err != nil {
		return fmt.Errorf("connect to Kafka at %v: %w", r.cfg.Brokers, err)
	}
	defer conn.Close()
	count := func(topic string) (int, error) {
		parts, err := conn.ReadPartitions(topic)
		if err != nil {
			return 0, fmt.Errorf("topic %s: %w (create it, or set the topic flags)", topic, err)
		}
		return len(parts), nil
	}
	lic, err := count(r.cfg.LicenseTopic)
	if err != nil {
		return err
	}
	use, err := count(r.cfg.UsageTopic)
	if err != nil {
		return err
	}
	if lic != use {
		return fmt.Errorf("topics %s (%d partitions) and %s (%d partitions) must have the same partition count: one tenant's license and usage events must land on the same partition number (SPEC §2)",
			r.cfg.LicenseTopic, lic, r.cfg.UsageTopic, use)
	}
	r.partitions = lic
	var ids []int32
	for _, t := range r.allPartitions() {
		ids = append(ids, r.source(t))
		r.credits[t] = make(chan struct{}, batchesInFlight)
		r.spare[t] = make(chan spare, batchesInFlight+1)
	}
	r.engine.SetSources(ids...)
	return nil
}

func (r *Runner) allPartitions() []tp {
	var out []tp
	for p := 0; p < r.partitions; p++ {
		out = append(out, tp{r.cfg.LicenseTopic, p}, tp{r.cfg.UsageTopic, p})
	}
	return out
}

func (r *Runner) restore(ctx context.Context) error {
	start := time.Now()
	cp, err := r.cps.Latest(ctx)
	if errors.Is(err, clickhouse.ErrNoCheckpoint) {
		r.cfg.Log.Info("no checkpoint: starting from the beginning of the topics", "group", r.cfg.Group)
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.engine.ReadState(bytes.NewReader(cp.State)); err != nil {
		return err
	}
	r.version = cp.Version
	for _, t := range r.allPartitions() {
		if off, ok := cp.Offsets[t.String()]; ok {
			r.next[t] = off
			r.positions.set(t, off)
		}
	}
	r.cfg.Log.Info("restored state from checkpoint", "version", cp.Version, "state_bytes", len(cp.State),
		"partitions", len(cp.Offsets), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// process applies one fetched batch, or queues it behind a paused
// partition's messages.
func (r *Runner) process(ctx context.Context, b batch) error {
	t := b.tp
	if p := r.pending[t]; p != nil { // the partition is paused: keep order
		p.msgs = append(p.msgs, b.msgs...)
		p.spent = append(p.spent, b.spare)
		p.atEnd = b.atEnd
		return nil
	}
	msgs := b.msgs
	if next, ok := r.next[t]; ok {
		covered := 0 // by the restored checkpoint, or already applied
		for covered < len(msgs) && msgs[covered].offset < next {
			covered++
		}
		r.processed.Add(int64(covered))
		msgs = msgs[covered:]
	}
	n, err := r.applyRun(ctx, t, msgs, true)
	if err != nil {
		return err
	}
	if n < len(msgs) {
		r.pending[t] = &paused{msgs: msgs[n:], spent: []spare{b.spare}, atEnd: b.atEnd}
		// what this partition applied before it paused may be what
		// another paused one waits for
		return r.retryPaused(ctx)
	}
	r.release(t, 1, b.atEnd)
	r.recycle(t, b.spare)
	if r.engine.Pending() >= MaxPendingRows {
		// a backfill finds rows faster than the flush interval wants
		// them: flush early, which bounds memory and keeps inserts even
		if err := r.flush(ctx, false); err != nil {
			return err
		}
	}
	if len(r.pending) > 0 {
		return r.retryPaused(ctx)
	}
	return nil
}

// applyRun applies partition t's msgs in order until one must wait, and
// says how many went.
func (r *Runner) applyRun(ctx context.Context, t tp, msgs []message, flushIfAhead bool) (n int, err error) {
	// The run's offset and counts are recorded once at its end: per
	// message, a map write and a counter lookup were a tenth of the
	// apply loop. (A flush within the run writes no checkpoint, so it
	// does not read r.next.)
	var consumed [event.Usage + 1]int64
	defer func() {
		if n > 0 {
			r.next[t] = msgs[n-1].offset + 1
		}
		r.processed.Add(int64(n))
		for k, c := range consumed {
			if c > 0 {
				r.consumed[consumedKey{t.topic, event.Kind(k)}].Add(float64(c))
			}
		}
	}()
	src := r.source(t)
	for ; n < len(msgs); n++ {
		done, err := r.apply(ctx, t, src, &msgs[n], flushIfAhead, &consumed)
		if err != nil {
			return n, err
		}
		if !done {
			break
		}
	}
	return n, nil
}

// release gives back the credits of t's applied batches; a partition
// whose last batch reached its end turns idle now rather than at the next
// lag check, since with watermark alignment the others may wait for it.
func (r *Runner) release(t tp, batches int, atEnd bool) {
	for range batches {
		<-r.credits[t]
	}
	if atEnd {
		r.engine.SetIdle(r.source(t), true)
	}
}

// apply applies one decoded message; false means it is too far ahead of
// the watermark (even after a flush, with flushIfAhead) or of the slowest
// partition, and its partition pauses.
func (r *Runner) apply(ctx context.Context, t tp, src int32, m *message, flushIfAhead bool, consumed *[event.Usage + 1]int64) (bool, error) {
	if m.rej != nil {
		r.reject(t, m, m.rej)
		return true, nil
	}
	ev := &m.ev
	outcome, rej, err := r.engine.Apply(src, ev)
	if errors.Is(err, figures.ErrAhead) && flushIfAhead {
		// a flush may let the bitmaps slide
		if err := r.flush(ctx, false); err != nil {
			return false, err
		}
		outcome, rej, err = r.engine.Apply(src, ev)
	}
	if errors.Is(err, figures.ErrAhead) || errors.Is(err, figures.ErrSkew) {
		return false, nil // the partition pauses
	}
	if err != nil {
		return false, err
	}
	consumed[ev.Kind]++
	if rej != nil {
		if rej.Reason == event.TooLate {
			r.cfg.Metrics.Late.WithLabelValues("rejected").Inc()
		}
		r.reject(t, m, rej)
		return true, nil
	}
	if outcome == figures.Restated {
		r.cfg.Metrics.Late.WithLabelValues("restated").Inc()
	}
	return true, nil
}

// retryPaused applies what paused partitions hold, as far as each may go,
// and goes round again while any went on: one partition going on moves
// the watermark or the slowest mark another waits for. Otherwise, with
// every partition paused, each step waited for the next lag check (a
// 1M-event drain took 12 s instead of 2).
func (r *Runner) retryPaused(ctx context.Context) error {
	for progress := true; progress && len(r.pending) > 0; {
		progress = false
		for t, p := range r.pending {
			n, err := r.applyRun(ctx, t, p.msgs, false)
			if err != nil {
				return err
			}
			progress = progress || n > 0
			p.msgs = p.msgs[n:]
			if len(p.msgs) == 0 {
				delete(r.pending, t)
				r.release(t, len(p.spent), p.atEnd)
				for _, s := range p.spent {
					r.recycle(t, s)
				}
			}
		}
	}
	return nil
}

// spare is what an applied batch leaves for its partition's reader to
// fill again: its array of messages and the arena their keys and values
// were in. A batch of 5000 messages is about 1 MB of each: allocating and
// zeroing them for every fetch was a fifth of all the pipeline allocated,
// and of its GC cycles. Nothing keeps a pointer
// into them once the batch is applied: the engine copies what it keeps,
// and so does a dead letter.
type spare struct {
	msgs  []message
	arena []byte
}

// recycle hands s back to its partition's reader, unless it has enough.
func (r *Runner) recycle(t tp, s spare) {
	s.msgs = s.msgs[:0]
	select {
	case r.spare[t] <- s:
	default:
	}
}

func (r *Runner) reject(t tp, m *message, rej *event.Rejection) {
	r.cfg.Metrics.Rejected.WithLabelValues(string(rej.Reason)).Inc()
	src := kafka.Message{Topic: t.topic, Partition: t.partition, Offset: m.offset,
		Key: bytes.Clone(m.key), Value: bytes.Clone(m.value)} // not the whole fetch they alias
	r.dead = append(r.dead, deadletter.Entry{Source: src, Reason: string(rej.Reason), Detail: rej.Detail})
}

// flush takes the changed rows and dead letters (and, with checkpoint, the
// state and offsets) and queues them for the sink.
func (r *Runner) flush(ctx context.Context, checkpoint bool) error {
	w := write{start: time.Now()}
	r.version = max(r.version+1, uint64(time.Now().UnixNano()))
	w.version = r.version
	w.rows = r.engine.Flush(r.version)
	w.dead, r.dead = r.dead, nil
	m := r.cfg.Metrics
	if wm := r.engine.Watermark(); wm > 0 {
		m.Watermark.Set(float64(wm) / 1e9)
	}
	m.StateUsers.Set(float64(r.engine.Users()))
	m.StateTenants.Set(float64(r.engine.Tenants()))
	m.StateSKUs.Set(float64(r.engine.TenantSKUs()))
	st := r.engine.Stats()
	m.Unknown.WithLabelValues("sku").Add(float64(st.UnknownSKUEvents - r.stats.UnknownSKUEvents))
	m.Unknown.WithLabelValues("workload").Add(float64(st.UnknownWorkloadEvents - r.stats.UnknownWorkloadEvents))
	r.stats = st
	if checkpoint {
		start := time.Now()
		var state bytes.Buffer
		if err := r.engine.WriteState(&state); err != nil {
			return err
		}
		offsets := map[string]int64{}
		for t, off := range r.next {
			offsets[t.String()] = off
		}
		w.checkpoint = &clickhouse.Checkpoint{Version: r.version, Offsets: offsets, State: state.Bytes()}
		w.stateTime = time.Since(start)
	}
	err := r.sink.send(ctx, w)
	if err != nil && ctx.Err() != nil {
		// the rows left the engine: a clean stop still writes them
		r.unsent = &w
	}
	return err
}

// updateLag reads every partition's end, sets the lag gauges, marks
// caught-up partitions idle, and says whether all are caught up.
func (r *Runner) updateLag(ctx context.Context) (bool, error) {
	// the end a read_committed fetch reaches: the last stable offset
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: kafka.ReadCommitted}
	for _, t := range r.allPartitions() {
		req.Topics[t.topic] = append(req.Topics[t.topic], kafka.LastOffsetOf(t.partition))
	}
	resp, err := r.kafka.ListOffsets(ctx, req)
	if err != nil {
		return false, err
	}
	all := true
	var total int64
	defer func() { r.lag.Store(total) }()
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return false, p.Error
			}
			t := tp{topic, p.Partition}
			lag := p.LastOffset - r.next[t]
			if _, ok := r.next[t]; !ok {
				lag = p.LastOffset // nothing read yet: offsets start at 0
			}
			r.cfg.Metrics.Lag.WithLabelValues(topic, strconv.Itoa(p.Partition)).Set(float64(max(lag, 0)))
			total += max(lag, 0)
			if lag <= 0 && r.pending[t] == nil {
				r.engine.SetIdle(r.source(t), true)
			} else {
				all = false
			}
		}
	}
	return all, nil
}
