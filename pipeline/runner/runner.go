// Package runner is the running pipeline: one member of a Kafka consumer
// group. It works the units the group gives it (a unit is partition p of
// both event topics, with its own figure state, watermark and checkpoint),
// decodes and applies their events to the figure core, writes rows to
// ClickHouse and rejects to the dead-letter topic, and checkpoints each
// unit's state with the offsets it covers. Offsets are committed to Kafka
// only after everything they produced is in ClickHouse.
package runner

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
)

// Config configures a Runner.
type Config struct {
	Brokers []string
	// TLS and SASL, when set, secure every connection to Kafka: the
	// group, the partition readers, dead letters, offsets and metadata.
	TLS                                       *tls.Config
	SASL                                      sasl.Mechanism
	LicenseTopic, UsageTopic, DeadLetterTopic string
	Group                                     string
	Database                                  string
	FlushInterval                             time.Duration // default 5 s
	CheckpointInterval                        time.Duration // default 1 min
	Lateness, Horizon                         time.Duration
	MaxSkew                                   time.Duration // see figures.Config
	NoUserActivity                            bool          // see figures.Config
	Limits                                    figures.Limits
	Drain                                     bool // stop once every unit's partitions are read to their end
	// AllowReset lets a unit with no checkpoint start from nothing where
	// it was worked before (see ErrResetRefused).
	AllowReset bool
	Catalog    *catalog.Catalog
	Log        *slog.Logger
	Metrics    *Metrics
	// Now is the processing clock (future timestamps are judged by it);
	// the partition readers call it concurrently.
	Now func() time.Time
}

// MaxPendingRows triggers a flush before the interval: the activity log
// holds a pending user_activity row in 20 bytes plus its user ID (about
// 45 MB at this bound). In a backlog, a flush at this bound writes while
// events go on being applied, where one at the end of the interval made
// ClickHouse wait, then made the loop wait for it; a much lower bound
// recomputes the same days too often (bench/README.md).
const MaxPendingRows = 1_000_000

// Runner is one member of the pipeline's consumer group.
type Runner struct {
	cfg    Config
	writer RowStore
	cps    CheckpointStore
	skips  SkipStore
	dlq    DeadLetterSink
	member string // this process, in unit claims
	ready  atomic.Bool
	// progress, for people watching: messages processed, total lag, flushes
	processed, lag, flushes atomic.Int64

	partitions int
	// units this member works, by partition number; only the loop's
	// goroutine touches them
	units    map[int]*unit
	assigned assignment // what the group gave this member last
	// usedBefore: why each unit of assigned was worked before, for units
	// without a checkpoint (startedBefore); nil until first needed. Units
	// are acquired at once, so it has a lock of its own.
	usedBeforeMu sync.Mutex
	usedBefore   map[int]string
	worked       atomic.Bool // every unit of assigned is worked
	consumed     map[consumedKey]prometheus.Counter
	flushSeq     uint64 // names each write, for the sink's deduplication tokens

	// membership (membership.go)
	gen         atomic.Pointer[kafka.Generation] // the current one, for commits
	owned       atomic.Pointer[[]int]            // units worked, for the group balancer
	groupMu     sync.Mutex
	group       *kafka.ConsumerGroup
	groupClosed bool
	control     chan func(context.Context) error // run on the loop's goroutine
	loopDone    chan struct{}
	rejoin      chan struct{} // the loop asks follow to leave and join the group again
	stall       stallWatch

	// reading (consume.go)
	positions positions
	stuck     stuckReaders                     // partitions at a batch that cannot be read (corrupt.go)
	credits   map[topicPartition]chan struct{} // batches handed over and not yet applied
	spare     map[topicPartition]chan spare    // applied batches' arrays and arenas, for the reader to fill again

	sink *sink // writes flushes (sink.go)
	// unsent is a flush whose rows left the engines while Run's context
	// ended before the sink took them: the clean stop sends it first.
	unsent *write
	kafka  *kafka.Client // partition ends, for lag
}

// paused holds a side's messages while it waits for the watermark
// (ErrAhead) or for the unit's other side (ErrSkew), and the batch
// credits they hold.
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

// topicPartition is one partition of an input topic: a side of a unit.
type topicPartition struct {
	topic     string
	partition int
}

func (t topicPartition) String() string { return t.topic + "/" + strconv.Itoa(t.partition) }

// New checks the configuration and prepares a runner writing to ports.
func New(cfg Config, ports Ports) (*Runner, error) {
	if err := ports.check(); err != nil {
		return nil, err
	}
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
		return nil, errors.New("no Kafka brokers given")
	}
	if _, err := figures.New(figures.Config{Catalog: cfg.Catalog, Lateness: cfg.Lateness, Horizon: cfg.Horizon, MaxSkew: cfg.MaxSkew,
		NoUserActivity: cfg.NoUserActivity, Limits: cfg.Limits}); err != nil {
		return nil, err // the units' engines are made with it later
	}
	var id [6]byte
	rand.Read(id[:])
	r := &Runner{
		cfg: cfg, member: hex.EncodeToString(id[:]),
		writer: ports.Rows, cps: ports.Checkpoints, skips: ports.Skips, dlq: ports.DeadLetters,
		units:     map[int]*unit{},
		positions: positions{next: map[topicPartition]int64{}}, credits: map[topicPartition]chan struct{}{}, spare: map[topicPartition]chan spare{},
		consumed: map[consumedKey]prometheus.Counter{},
		control:  make(chan func(context.Context) error), loopDone: make(chan struct{}), rejoin: make(chan struct{}, 1),
		kafka: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second, Transport: transport(cfg.TLS, cfg.SASL)},
	}
	r.owned.Store(&[]int{})
	if ports.hooks != nil {
		ports.hooks.r.Store(r)
	}
	for _, topic := range []string{cfg.LicenseTopic, cfg.UsageTopic} {
		for _, k := range []event.Kind{event.Subscription, event.Assignment, event.Usage} {
			r.consumed[consumedKey{topic, k}] = cfg.Metrics.Consumed.WithLabelValues(topic, k.String())
		}
	}
	return r, nil
}

// transport is kafka-go's default, or one with TLS or SASL.
func transport(tlsConfig *tls.Config, mechanism sasl.Mechanism) kafka.RoundTripper {
	if tlsConfig == nil && mechanism == nil {
		return nil
	}
	return &kafka.Transport{TLS: tlsConfig, SASL: mechanism}
}

// Progress reports messages processed, the total lag, and the flushes done.
func (r *Runner) Progress() (processed, lag, flushes int64) {
	return r.processed.Load(), r.lag.Load(), r.flushes.Load()
}

// Ready reports whether this member works every unit the group gave it,
// its last write reached ClickHouse and no partition's reader is stuck.
func (r *Runner) Ready() bool { return len(r.NotReady()) == 0 }

// NotReady says why the member is not ready, if it is not.
func (r *Runner) NotReady() []string {
	var why []string
	if !r.worked.Load() {
		why = append(why, "a unit given to this replica is not worked yet (restoring)")
	}
	if !r.ready.Load() {
		why = append(why, "writes to ClickHouse or to the dead-letter topic are failing (retried)")
	}
	return append(why, r.stuck.describe()...)
}

// Units lists the units this member works.
func (r *Runner) Units() []int { return slices.Clone(*r.owned.Load()) }

// Run consumes until ctx ends (or, with Drain, until every unit it was
// given is read to its end), then flushes and checkpoints.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.checkTopics(ctx); err != nil {
		return err
	}
	r.ready.Store(true)
	group, err := r.newGroup()
	if err != nil {
		return err
	}
	// Readers are stopped by closing the group, after the final flush has
	// committed through it, and after the loop is known to be over: the
	// generation's end then does not wait for it (handBack).
	defer r.closeGroup()
	defer close(r.loopDone)
	batches := make(chan batch, 2*r.partitions*batchesInFlight)
	go r.consume(ctx, group, batches)
	r.sink = r.startSink(ctx)
	defer r.sink.stop() // on errors: the last checkpoints hold what was not written

	err = r.loop(ctx, batches)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) && !r.sink.finished {
		// stopped, perhaps while a flush waited for the sink: a clean
		// stop all the same
		return r.shutdown()
	}
	return err
}

// loop applies batches, runs membership's requests, flushes and watches
// the lag until ctx ends (it then returns ctx.Err()), an error, or the end
// of a drain.
func (r *Runner) loop(ctx context.Context, batches chan batch) error {
	flushT := time.NewTicker(r.cfg.FlushInterval)
	defer flushT.Stop()
	lagT := time.NewTicker(500 * time.Millisecond)
	defer lagT.Stop()
	lastCheckpoint := time.Now()
	lagTicks := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.sink.ended:
			return r.sink.failure()
		case fn := <-r.control:
			if err := fn(ctx); err != nil {
				return err
			}
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
			// the flush may have let the bitmaps slide: paused sides may go on
			for _, u := range r.units {
				if err := r.retryPaused(ctx, u); err != nil {
					return err
				}
			}
		case <-lagT.C:
			if r.assigned.gen != nil && !r.worked.Load() {
				if err := r.acquireMissing(ctx, batches); err != nil {
					return err
				}
			}
			if r.stalled(ctx) {
				select {
				case r.rejoin <- struct{}{}:
				default:
				}
			}
			if lagTicks++; lagTicks%20 == 0 {
				if err := r.checkPartitionCounts(ctx); err != nil {
					return err
				}
			}
			if done, err := r.checkEnds(ctx, len(batches)); done || err != nil {
				return err
			}
		}
	}
}

// finishDrain ends a drain: every unit is read to its end, so all sides
// are idle and the watermarks pass the last events; a final flush and
// checkpoint, and the wait for their writes.
func (r *Runner) finishDrain(ctx context.Context) error {
	for _, u := range r.units {
		u.engine.SetIdle(0, true)
		u.engine.SetIdle(1, true)
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

// release gives back the credits of t's applied batches.
func (r *Runner) release(t topicPartition, batches int) {
	for range batches {
		<-r.credits[t]
	}
}

// spare is what an applied batch leaves for its partition's reader to
// fill again: its array of messages and the arena their keys and values
// were in. Allocating and zeroing them for every fetch was a fifth of all
// the pipeline allocated. Nothing keeps a pointer into them once the
// batch is applied: the engine copies what it keeps, and so does a dead
// letter.
type spare struct {
	msgs  []message
	arena []byte
}

// recycle hands s back to its partition's reader, unless it has enough.
func (r *Runner) recycle(t topicPartition, s spare) {
	s.msgs = s.msgs[:0]
	select {
	case r.spare[t] <- s:
	default:
	}
}
