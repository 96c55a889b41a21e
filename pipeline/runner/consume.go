package runner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/fetch"
)

// Reading tuned for throughput: kafka-go's Reader hands over one message
// at a time through a channel and resets deadlines per message, and its
// Batch reads each record through layers of readers (package fetch says
// more). Each partition's reader fetches with package fetch and hands the
// whole fetch over as one batch.
const (
	fetchMaxBytes = 256 << 10 // compressed: about 1 MB, 5000 events, when lz4-compressed
	fetchMaxWait  = 500 * time.Millisecond
	// batches a partition may have handed over but not yet applied: this
	// bounds memory while a partition is paused (ErrAhead, ErrSkew). The
	// reader fetches and decodes its next batch meanwhile, so one keeps
	// the apply loop fed; a second only added memory to touch.
	batchesInFlight = 1
)

// batch is one fetch of one partition, in offset order, decoded by the
// partition's reader: decoding there runs beside the apply loop instead
// of taking its time.
type batch struct {
	part  topicPartition
	unit  *unit // read for: a unit let go and taken again is another
	spare       // the messages, and the arena of their keys, values and events' strings
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
	next map[topicPartition]int64
}

func (p *positions) get(t topicPartition) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	off, ok := p.next[t]
	return off, ok
}

func (p *positions) set(t topicPartition, off int64) {
	p.mu.Lock()
	p.next[t] = off
	p.mu.Unlock()
}

// forget makes t's next reader start at the partition's beginning.
func (p *positions) forget(t topicPartition) {
	p.mu.Lock()
	delete(p.next, t)
	p.mu.Unlock()
}

// readPartition reads one partition until ctx ends, reconnecting with
// backoff on errors.
func (r *Runner) readPartition(ctx context.Context, t topicPartition, u *unit, out chan<- batch) {
	// a series per partition read, at 0 until stuck; its next owner's
	// replica serves it once the unit moves
	labels := []string{t.topic, strconv.Itoa(t.partition)}
	r.cfg.Metrics.CorruptBatches.WithLabelValues(labels...).Set(0)
	defer func() {
		r.stuck.clear(t)
		r.cfg.Metrics.CorruptBatches.DeleteLabelValues(labels...)
	}()
	for attempt := 0; ; attempt++ {
		err := r.readFrom(ctx, t, u, out)
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, errStuck) {
			r.cfg.Log.Warn("read partition; reconnecting", "partition", t.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		}
	}
}

func (r *Runner) readFrom(ctx context.Context, t topicPartition, u *unit, out chan<- batch) error {
	conn, err := fetch.DialLeader(ctx, r.cfg.Brokers, t.topic, t.partition, fetch.Security{TLS: r.cfg.TLS, SASL: r.cfg.SASL})
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
			case out <- batch{part: t, unit: u, spare: spare{msgs, res.Arena}, atEnd: res.Next >= res.HighWatermark}:
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
		var cb *fetch.CorruptBatchError
		switch {
		case err == nil:
		case errors.As(err, &cb):
			if offset, err = r.readPast(ctx, t, offset, cb); err != nil {
				return err
			}
			r.positions.set(t, offset)
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
