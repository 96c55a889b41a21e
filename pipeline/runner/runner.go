// Package runner is the running pipeline: one member of a Kafka consumer
// group. It works the units the group gives it (a unit is partition p of
// both event topics, with its own figure state, watermark and checkpoint),
// decodes and applies their events to the figure core, writes rows to
// ClickHouse and rejects to the dead-letter topic, and checkpoints each
// unit's state with the offsets it covers. Offsets are committed to Kafka
// only after everything they produced is in ClickHouse.
package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/sinks/deadletter"
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
// 130 MB at this bound), and fewer, larger flushes recompute fewer days.
const MaxPendingRows = 3_000_000

// Runner is one member of the pipeline's consumer group.
type Runner struct {
	cfg    Config
	ch     driver.Conn
	writer *clickhouse.Writer
	cps    *clickhouse.Checkpoints
	skips  *clickhouse.Skips
	dlq    *deadletter.Writer
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
	// without a checkpoint (startedBefore); nil until first needed
	usedBefore map[int]string
	worked     atomic.Bool // every unit of assigned is worked
	consumed   map[consumedKey]prometheus.Counter
	flushSeq   uint64 // names each write, for the sink's deduplication tokens

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
		return nil, errors.New("no Kafka brokers given")
	}
	if _, err := figures.New(figures.Config{Catalog: cfg.Catalog, Lateness: cfg.Lateness, Horizon: cfg.Horizon, MaxSkew: cfg.MaxSkew,
		NoUserActivity: cfg.NoUserActivity, Limits: cfg.Limits}); err != nil {
		return nil, err // the units' engines are made with it later
	}
	var id [6]byte
	rand.Read(id[:])
	r := &Runner{
		cfg: cfg, ch: ch, member: hex.EncodeToString(id[:]),
		writer:    clickhouse.NewWriter(ch, cfg.Database),
		cps:       clickhouse.NewCheckpoints(ch, cfg.Database, cfg.Group),
		skips:     clickhouse.NewSkips(ch, cfg.Database, cfg.Group),
		units:     map[int]*unit{},
		positions: positions{next: map[topicPartition]int64{}}, credits: map[topicPartition]chan struct{}{}, spare: map[topicPartition]chan spare{},
		consumed: map[consumedKey]prometheus.Counter{},
		control:  make(chan func(context.Context) error), loopDone: make(chan struct{}), rejoin: make(chan struct{}, 1),
		kafka: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second, Transport: transport(cfg.TLS, cfg.SASL)},
	}
	r.owned.Store(&[]int{})
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
	dlq, err := deadletter.Open(ctx, deadletter.Config{Brokers: r.cfg.Brokers, Topic: r.cfg.DeadLetterTopic, Log: r.cfg.Log, Transport: transport(r.cfg.TLS, r.cfg.SASL),
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

// checkEnds reads the ends of the units' partitions (the lag, and idle
// marks); paused sides may go on after it, and a drain whose units are all
// read to their end, with none of the queued batches left, finishes: done
// says Run is over.
func (r *Runner) checkEnds(ctx context.Context, queued int) (done bool, err error) {
	caughtUp, err := r.updateLag(ctx)
	if err != nil {
		r.cfg.Log.Warn("read partition ends", "err", err)
		return false, nil // the next check tries again
	}
	for _, u := range r.units {
		if err := r.retryPaused(ctx, u); err != nil {
			return false, err
		}
	}
	// a drain is the group's only member: it ends once it works every unit
	if r.cfg.Drain && caughtUp && queued == 0 && len(r.units) == r.partitions {
		return true, r.finishDrain(ctx)
	}
	return false, nil
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

// checkTopics refuses topics whose partition counts differ: partition p
// of both must hold the same tenants.
func (r *Runner) checkTopics(ctx context.Context) error {
	lic, use, err := r.partitionCounts(ctx)
	if err != nil {
		return err
	}
	if lic != use {
		return fmt.Errorf("topics %s (%d partitions) and %s (%d partitions) must have the same partition count: one tenant's license and usage events must land on the same partition number (SPEC §2)",
			r.cfg.LicenseTopic, lic, r.cfg.UsageTopic, use)
	}
	r.partitions = lic
	for p := range r.partitions {
		for _, t := range r.partitionsOf(p) {
			r.credits[t] = make(chan struct{}, batchesInFlight)
			r.spare[t] = make(chan spare, batchesInFlight+1)
		}
	}
	return nil
}

// checkPartitionCounts stops the run when a topic has grown: tenants
// would hash to other partitions than their state's.
func (r *Runner) checkPartitionCounts(ctx context.Context) error {
	lic, use, err := r.partitionCounts(ctx)
	if err != nil {
		r.cfg.Log.Warn("read partition counts", "err", err)
		return nil // the next check tries again
	}
	if lic != r.partitions || use != r.partitions {
		return fmt.Errorf("topics %s and %s now have %d and %d partitions, not %d: tenants' events would move to other units than their figures. Stop every replica and follow \"Growing partitions\" in docs/operations.md",
			r.cfg.LicenseTopic, r.cfg.UsageTopic, lic, use, r.partitions)
	}
	return nil
}

func (r *Runner) partitionCounts(ctx context.Context) (license, usage int, err error) {
	meta, err := r.kafka.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{r.cfg.LicenseTopic, r.cfg.UsageTopic}})
	if err != nil {
		return 0, 0, fmt.Errorf("connect to Kafka at %v: %w", r.cfg.Brokers, err)
	}
	counts := map[string]int{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return 0, 0, fmt.Errorf("topic %s: %w (create it, or set the topic flags)", t.Name, t.Error)
		}
		counts[t.Name] = len(t.Partitions)
	}
	for _, topic := range []string{r.cfg.LicenseTopic, r.cfg.UsageTopic} {
		if counts[topic] == 0 {
			return 0, 0, fmt.Errorf("topic %s: %w (create it, or set the topic flags)", topic, kafka.UnknownTopicOrPartition)
		}
	}
	return counts[r.cfg.LicenseTopic], counts[r.cfg.UsageTopic], nil
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
		w.rows.Append(u.engine.Flush(u.version()))
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

// updateLag reads the ends of the units' partitions, sets the lag gauges,
// marks caught-up sides idle, and says whether all are caught up.
func (r *Runner) updateLag(ctx context.Context) (bool, error) {
	if len(r.units) == 0 {
		r.lag.Store(0)
		return true, nil
	}
	// the end a read_committed fetch reaches: the last stable offset
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: kafka.ReadCommitted}
	for p := range r.units {
		for _, t := range r.partitionsOf(p) {
			req.Topics[t.topic] = append(req.Topics[t.topic], kafka.LastOffsetOf(t.partition))
		}
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
			t := topicPartition{topic, p.Partition}
			u := r.units[t.partition]
			if u == nil {
				continue
			}
			side := r.side(t)
			var done int64 // nothing read yet: offsets start at 0
			if u.known[side] {
				done = u.next[side]
			}
			// with nothing of it waiting to be applied, the partition is
			// read as far as its reader fetched: past transaction markers
			// and aborted records, which apply nothing
			if pos, ok := r.positions.get(t); ok && len(r.credits[t]) == 0 && u.pending[side] == nil {
				done = max(done, pos)
			}
			lag := p.LastOffset - done
			r.cfg.Metrics.Lag.WithLabelValues(topic, strconv.Itoa(p.Partition)).Set(float64(max(lag, 0)))
			total += max(lag, 0)
			if lag <= 0 && u.pending[side] == nil {
				u.engine.SetIdle(int32(side), true)
			} else {
				all = false
			}
		}
	}
	return all, nil
}
