package runner

import (
	"context"
	"strconv"

	"github.com/segmentio/kafka-go"
)

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
