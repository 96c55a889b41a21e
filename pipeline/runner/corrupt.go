package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/fetch"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/sinks/deadletter"
)

// Unreadable record batches. A batch whose CRC fails on the broker fails
// on every retry, so its partition's reader stops there (its unit's other
// partition and every other unit go on). The operator decides what it
// costs: `seatflow skip-batch` sends the batch to the dead-letter topic
// and records its offsets in skipped_offsets; the stuck reader looks
// there on each retry and reads on after the range. An owner that restores
// an older checkpoint later meets the same batch and skips the same range,
// so every owner reads the same events.

// stuckReaders are the partitions whose readers stand at a batch they
// cannot read: for /readyz and seatflow_corrupt_batches. Readers write it,
// the HTTP handler reads it.
type stuckReaders struct {
	mu sync.Mutex
	at map[topicPartition]*fetch.CorruptBatchError
}

func (s *stuckReaders) set(t topicPartition, err *fetch.CorruptBatchError) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[topicPartition]*fetch.CorruptBatchError{}
	}
	old := s.at[t]
	s.at[t] = err
	return old == nil || old.FirstOffset != err.FirstOffset
}

func (s *stuckReaders) clear(t topicPartition) (was bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, was = s.at[t]
	delete(s.at, t)
	return was
}

// describe says where each stuck reader stands, in partition order.
func (s *stuckReaders) describe() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, t := range slices.SortedFunc(maps.Keys(s.at), func(a, b topicPartition) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	}) {
		e := s.at[t]
		out = append(out, fmt.Sprintf("%s is stuck at a record batch that cannot be read (offsets %d-%d: %s); "+
			"to send it to the dead-letter topic and read on: seatflow skip-batch --topic %s --partition %d --offset %d",
			t, e.FirstOffset, e.LastOffset, e.Cause, t.topic, t.partition, e.FirstOffset))
	}
	return out
}

// readPast decides what a reader at offset does about a batch it cannot
// read: the offset to read on from, when an operator skipped a range
// holding it, or the error to wait on.
func (r *Runner) readPast(ctx context.Context, t topicPartition, offset int64, cb *fetch.CorruptBatchError) (int64, error) {
	at := max(offset, cb.FirstOffset) // the batch may follow records compacted away
	skip, ok, err := r.skips.Covering(ctx, t.topic, int32(t.partition), at)
	if err != nil {
		return offset, fmt.Errorf("%w (and looking up skipped offsets: %w)", cb, err)
	}
	gauge := r.cfg.Metrics.CorruptBatches.WithLabelValues(t.topic, strconv.Itoa(t.partition))
	if !ok {
		if r.stuck.set(t, cb) {
			gauge.Set(1)
			r.cfg.Log.Error("record batch cannot be read; its partition waits for an operator (see /readyz)",
				"partition", t.String(), "from", cb.FirstOffset, "to", cb.LastOffset, "cause", cb.Cause)
		}
		return offset, errStuck
	}
	r.stuck.clear(t)
	gauge.Set(0)
	r.cfg.Log.Warn("reading past offsets an operator skipped", "partition", t.String(), "from", skip.From, "to", skip.To, "cause", skip.Cause)
	return skip.To + 1, nil
}

// errStuck: the reader waits at a batch it cannot read; it was logged once.
var errStuck = errors.New("stuck at a record batch that cannot be read")

// SkipUnreadable is what `seatflow skip-batch` does: it sends the run of
// record batches that cannot be read at offset from of topic's partition
// (up to offset to, or the first batch's last when to is negative) to the
// dead-letter topic, whole, then records the skip, so that the group's
// readers read on after it. cfg gives the brokers, topics, group and
// database. A record that reads fine in the range refuses the skip.
func SkipUnreadable(ctx context.Context, cfg Config, ch driver.Conn, topic string, partition int32, from, to int64) (clickhouse.Skip, error) {
	skip := clickhouse.Skip{Topic: topic, Partition: partition, From: from, To: to}
	if topic != cfg.LicenseTopic && topic != cfg.UsageTopic {
		return skip, fmt.Errorf("topic %q is neither the license topic (%s) nor the usage topic (%s)", topic, cfg.LicenseTopic, cfg.UsageTopic)
	}
	if to >= 0 && to < from {
		return skip, fmt.Errorf("the last offset to skip (%d) is before the first (%d)", to, from)
	}
	conn, err := fetch.DialLeader(ctx, cfg.Brokers, topic, int(partition), fetch.Security{TLS: cfg.TLS, SASL: cfg.SASL})
	if err != nil {
		return skip, err
	}
	defer conn.Close()
	run, err := conn.Unreadable(ctx, topic, partition, from, to)
	if err != nil {
		return skip, err
	}
	if skip.Cause = run[0].Cause; to < 0 {
		skip.To = run[len(run)-1].LastOffset
	}
	if _, err := clickhouse.Migrate(ctx, ch, cfg.Database); err != nil {
		return skip, err
	}
	dlq, err := deadletter.Open(ctx, deadletter.Config{Brokers: cfg.Brokers, Topic: cfg.DeadLetterTopic, Log: cfg.Log, Transport: transport(cfg.TLS, cfg.SASL)})
	if err != nil {
		return skip, err
	}
	defer dlq.Close()
	entries := make([]deadletter.Entry, len(run))
	for i, b := range run {
		entries[i] = deadletter.Entry{Reason: string(event.CorruptBatch), Detail: b.Error(),
			Source: kafka.Message{Topic: topic, Partition: int(partition), Offset: b.FirstOffset, Value: b.Raw}}
	}
	report, err := dlq.Write(ctx, entries)
	if err != nil {
		return skip, err
	}
	if report.Failed > 0 {
		return skip, fmt.Errorf("the dead-letter topic %s refused %d of the %d batches (see the log); nothing skipped", cfg.DeadLetterTopic, report.Failed, len(run))
	}
	return skip, clickhouse.NewSkips(ch, cfg.Database, cfg.Group).Add(ctx, skip)
}
