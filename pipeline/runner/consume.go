package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/fetch"
)

// Reading tuned for throughput: kafka-go's Reader hands over one message
// at a time through a channel and resets deadlines per message, which costs
// about a core per 0.5M messages here, and its Batch still about 800 ns a
// message. Each partition's reader fetches with package fetch and hands
// the whole fetch over as one batch.
const (
	fetchMaxBytes = 256 << 10 // compressed: about 1 MB, 5000 events, when lz4-compressed
	fetchMaxWait  = 500 * time.Millisecond
	// batches a partition may have handed over but not yet applied: this
	// bounds memory while a partition is paused (ErrAhead, ErrSkew).
	batchesInFlight = 2
)

// batch is one fetch of one partition, in offset order, decoded by the
// partition's reader: decoding there runs beside the apply loop, which
// otherwise spent about a third of its time on it.
type batch struct {
	tp    tp
	spare // the messages, and the arena of their keys, values and events' strings
	// atEnd: the fetch reached the partition's high-water mark. The
	// partition turns idle once the batch is applied, at once instead of
	// at the next lag check: with watermark alignment, the others may be
	// waiting for it.
	atEnd bool
}

// message is what the pipeline keeps of a Kafka message (its partition is
// the batch's; a dead letter needs key, value and offset) and what decoding
// it gave. A whole kafka.Message would add about 100 bytes an event to
// every batch array.
type message struct {
	offset     int64
	key, value []byte
	ev         event.Event // its strings alias value
	rej        *event.Rejection
}

// positions are where each partition's reader goes on after a rebalance:
// the offset after the last message it handed over. They start at the
// restored checkpoint's offsets.
type positions struct {
	mu   sync.Mutex
	next map[tp]int64
}

func (p *positions) get(t tp) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	off, ok := p.next[t]
	return off, ok
}

func (p *positions) set(t tp, off int64) {
	p.mu.Lock()
	p.next[t] = off
	p.mu.Unlock()
}

// Group membership. A member killed while holding partitions is expired
// by the coordinator within sessionTimeout, and the rebalance that follows
// ends within rebalanceTimeout: together they bound how long a restart
// after a kill -9 waits before consuming again. Heartbeats go every 2 s
// from kafka-go's own goroutine, so a long flush does not miss them.
const (
	sessionTimeout   = 6 * time.Second
	rebalanceTimeout = 6 * time.Second
	// partialLimit is how long a generation that gives this member only
	// some partitions may stand before it rejoins as a new member. With
	// a live broker the next generation comes within a session and a
	// rebalance timeout. The dev broker (kfake) never expires a member
	// whose JoinGroup answer it could not deliver (a process killed while
	// joining): it arms a member's session timer only on a delivered
	// answer. Leaving and joining again makes it drop that member at the
	// next rebalance.
	partialLimit = sessionTimeout + rebalanceTimeout + 5*time.Second
)

// newGroup joins the consumer group; nil once closeGroup has run.
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
		StartOffset: kafka.FirstOffset, SessionTimeout: sessionTimeout, HeartbeatInterval: 2 * time.Second,
		RebalanceTimeout: rebalanceTimeout, JoinGroupBackoff: time.Second, Timeout: 10 * time.Second,
		Logger: logf(slog.LevelDebug), ErrorLogger: logf(slog.LevelWarn),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer group %s: %w", r.cfg.Group, err)
	}
	r.group = group
	return group, nil
}

// closeGroup leaves the group for good: readers stop, and consume ends.
func (r *Runner) closeGroup() {
	r.groupMu.Lock()
	defer r.groupMu.Unlock()
	r.groupClosed = true
	if r.group != nil {
		r.group.Close()
	}
}

// consume follows the consumer group, joining it again as a new member
// when a partial generation stands too long (see partialLimit).
func (r *Runner) consume(ctx context.Context, group *kafka.ConsumerGroup, out chan<- batch) {
	for group != nil && r.follow(ctx, group, out) {
		group.Close()
		var err error
		if group, err = r.newGroup(); err != nil { // the config was good a moment ago
			r.cfg.Log.Error("rejoin consumer group", "err", err)
			return
		}
	}
}

// follow follows group's generations and, in each one that assigns this
// member every partition, runs a reader per partition. The figures need
// both topics' partitions of a tenant in one process, so a partial
// assignment (another member still in the group, e.g. one killed before
// its session expired) waits for the next generation. It reports whether
// to rejoin, after a partial generation stood longer than partialLimit.
func (r *Runner) follow(ctx context.Context, group *kafka.ConsumerGroup, out chan<- batch) (rejoin bool) {
	partial := false
	for {
		next, cancel := ctx, context.CancelFunc(func() {})
		if partial {
			next, cancel = context.WithTimeout(ctx, partialLimit)
		}
		gen, err := group.Next(next)
		cancel()
		if err != nil {
			switch {
			case ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed):
				return false
			case next.Err() != nil:
				r.cfg.Log.Warn("no new generation after a partial one; leaving the group and joining again",
					"group", r.cfg.Group, "waited", partialLimit)
				return true
			}
			r.cfg.Log.Warn("join consumer group; retrying", "group", r.cfg.Group, "err", err)
			continue
		}
		r.gen.Store(gen)
		n := 0
		for _, parts := range gen.Assignments {
			n += len(parts)
		}
		if partial = n < 2*r.partitions; partial {
			r.cfg.Log.Warn("consumer group gave this member only some partitions; waiting for all (seatflow runs one consumer per group; another member may still hold a session)",
				"group", r.cfg.Group, "generation", gen.ID, "assigned", n, "partitions", 2*r.partitions)
			continue
		}
		r.cfg.Log.Info("consuming", "group", r.cfg.Group, "generation", gen.ID, "partitions", n)
		for topic, parts := range gen.Assignments {
			for _, p := range parts {
				t := tp{topic, p.ID}
				gen.Start(func(ctx context.Context) { r.readPartition(ctx, t, out) })
			}
		}
	}
}

// readPartition reads one partition until ctx ends, reconnecting with
// backoff on errors.
func (r *Runner) readPartition(ctx context.Context, t tp, out chan<- batch) {
	for attempt := 0; ; attempt++ {
		err := r.readFrom(ctx, t, out)
		if ctx.Err() != nil {
			return
		}
		r.cfg.Log.Warn("read partition; reconnecting", "partition", t.String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		}
	}
}

func (r *Runner) readFrom(ctx context.Context, t tp, out chan<- batch) error {
	conn, err := fetch.DialLeader(ctx, r.cfg.Brokers, t.topic, t.partition)
	if err != nil {
		return err
	}
	defer conn.Close()

	offset, ok := r.positions.get(t)
	if !ok {
		if offset, _, err = conn.Offsets(ctx, t.topic, int32(t.partition)); err != nil {
			return fmt.Errorf("first offset: %w", err)
		}
	}
	credit := r.credits[t]
	size := 64
	var dec event.Decoder
	for ctx.Err() == nil {
		var s spare
		select {
		case s = <-r.spare[t]:
			// Entries past len still point at old values until they are
			// written again: at most a few batches' worth per partition.
		default:
		}
		msgs := s.msgs
		if msgs == nil {
			msgs = make([]message, 0, size)
		}
		// One clock reading a fetch: it only bounds future timestamps, by
		// minutes, and the fetch waits at most fetchMaxWait.
		now := r.cfg.Now().UnixNano()
		res, err := conn.Fetch(ctx, fetch.Request{Topic: t.topic, Partition: int32(t.partition), Offset: offset,
			MaxBytes: fetchMaxBytes, MaxWait: fetchMaxWait, Arena: s.arena}, func(rec fetch.Record) {
			// decoded as it is sliced out, while the batch is in cache
			msgs = append(msgs, message{offset: rec.Offset, key: rec.Key, value: rec.Value})
			m := &msgs[len(msgs)-1]
			if rec.Err != nil {
				m.rej = &event.Rejection{Reason: event.BatchTooLarge, Detail: rec.Err.Error()}
			} else if m.rej = dec.Decode(m.value, now, &m.ev); m.rej == nil {
				m.rej = event.CheckKey(m.key, &m.ev)
			}
		})
		size = max(size, len(msgs)) // the largest fetch so far: no regrowth
		if len(msgs) > 0 {
			select {
			case credit <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case out <- batch{tp: t, spare: spare{msgs, res.Arena}, atEnd: res.Next >= res.HighWatermark}:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			r.recycle(t, spare{msgs, res.Arena}) // an empty fetch: keep them for the next
		}
		if res.Next > offset { // past what was handed over, and past control records
			offset = res.Next
			r.positions.set(t, offset)
		}
		switch {
		case err == nil:
		case errors.Is(err, kafka.OffsetOutOfRange):
			first, end, oerr := conn.Offsets(ctx, t.topic, int32(t.partition))
			if oerr != nil {
				return fmt.Errorf("offset %d out of range, and reading the range: %w", offset, oerr)
			}
			if offset < first {
				// Retention deleted events the figures never saw; they
				// cannot be had back. Say so loudly and go on.
				r.cfg.Log.Error("events deleted by retention before they were read: figures miss them",
					"partition", t.String(), "from", offset, "to", first)
				offset = first
				r.positions.set(t, offset)
			} else if offset > end {
				return fmt.Errorf("offset %d is past the end %d (was the topic recreated?)", offset, end)
			}
		default:
			return err
		}
	}
	return ctx.Err()
}
